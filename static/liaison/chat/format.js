// Times and sizes as the reader sees them. No DOM: testable on its own.
import { strings } from "./strings.js";

export function validZone(zone) {
  if (typeof zone !== "string" || !zone) return null;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return zone;
  } catch (error) {
    return null;
  }
}

// Times in the reader's time zone (from the account, not the browser); the full form (a
// message's tooltip) gives the reader's time, the sender's local time and UTC.
export function makeClock({ timeZone, language, now = () => new Date() }) {
  // The interface language, not the browser's: a 24-hour clock in both, like the server pages.
  const locale = language === "zh-hans" ? "zh-Hans" : "en-GB";
  const zone = validZone(timeZone) || "UTC";
  const timeOnly = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    hour: "2-digit",
    hourCycle: "h23",
    minute: "2-digit",
  });
  const dateTime = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    day: "numeric",
    month: "short",
    hour: "2-digit",
    hourCycle: "h23",
    minute: "2-digit",
  });
  const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: zone, dateStyle: "short" });
  const full = (z) =>
    new Intl.DateTimeFormat(locale, {
      timeZone: z,
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      hourCycle: "h23",
      minute: "2-digit",
      timeZoneName: "short",
    });
  const fullReader = full(zone);
  const fullUtc = full("UTC");
  const senderFormats = new Map();
  return {
    zone,
    // The time alone, for a list whose day separators already say the day.
    time(iso) {
      const date = new Date(iso);
      return Number.isNaN(date.getTime()) ? "" : timeOnly.format(date);
    },
    short(iso) {
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return "";
      const sameDay = dayKey.format(date) === dayKey.format(now());
      return sameDay ? timeOnly.format(date) : dateTime.format(date);
    },
    full(iso, senderZone) {
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return "";
      const other = validZone(senderZone);
      const lines = [];
      if (other === zone) {
        lines.push(strings.yourAndSendersTime(fullReader.format(date), zone));
      } else {
        lines.push(strings.yourTime(fullReader.format(date), zone));
        if (other) {
          if (!senderFormats.has(other)) senderFormats.set(other, full(other));
          lines.push(strings.sendersTime(senderFormats.get(other).format(date), other));
        }
      }
      if (zone !== "UTC") lines.push(strings.utcTime(fullUtc.format(date)));
      return lines.join("\n");
    },
  };
}

export function formatSize(bytes) {
  const size = Number(bytes);
  if (!Number.isFinite(size) || size < 0) return "";
  if (size < 1024) return `${size} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
