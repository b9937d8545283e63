// Seizure reports in the room: a `report` message's body is the report as JSON
// (liaison/exchange/reports.py); it is shown as a card of labelled fields. A body that is not a
// report (edited into plain text) is left to the ordinary text rendering.
import { el } from "./dom.js";

function gettext(text) {
  return typeof globalThis.gettext === "function" ? globalThis.gettext(text) : text;
}

const FIELDS = [
  ["date", gettext("Date")],
  ["place", gettext("Place")],
  ["container_no", gettext("Container number")],
  ["hs_code", gettext("HS code")],
  ["commodity", gettext("Commodity")],
  ["quantity", gettext("Quantity")],
  ["concealment", gettext("Concealment")],
  ["agencies", gettext("Agencies")],
  ["notes", gettext("Notes")],
];

export function parseReport(text) {
  if (typeof text !== "string" || !text.startsWith("{")) return null;
  try {
    const report = JSON.parse(text);
    return report && report.type === "seizure_report" ? report : null;
  } catch {
    return null;
  }
}

function shown(report, name) {
  if (name === "quantity") return `${report.quantity} ${report.unit || ""}`.trim();
  if (name === "agencies") return Array.isArray(report.agencies) ? report.agencies.join(", ") : "";
  const value = report[name];
  return typeof value === "string" || typeof value === "number" ? String(value) : "";
}

// Fill `body` with the report's card; false when `text` holds no report.
export function renderReport(body, text) {
  const report = parseReport(text);
  if (!report) return false;
  const card = el("section", "report-card");
  card.append(el("h3", "report-title", gettext("Seizure report")));
  const list = el("dl", "report-fields");
  for (const [name, label] of FIELDS) {
    const value = shown(report, name);
    if (!value) continue;
    list.append(el("dt", "", label), el("dd", `report-${name}`, value));
  }
  card.append(list);
  body.append(card);
  return true;
}
