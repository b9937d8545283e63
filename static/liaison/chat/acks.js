// Acknowledgement requests: under the message, who was asked and who has acknowledged, with
// times ("acknowledged by Li Wei 16:34"), live from `ack.updated`; an Acknowledge button for
// each addressee who has not yet; overdue requests highlighted (re-checked every half minute).
import { el } from "./dom.js";
import { wording } from "./wording.js";

const OVERDUE_CHECK_MS = 30000;

// {done: [{name, at}], waiting: [names], mine: "waiting" | "done" | null, overdue}
export function ackState(ack, userId, now = Date.now()) {
  const rows = Array.isArray(ack && ack.by) ? ack.by : [];
  const done = [];
  const waiting = [];
  let mine = null;
  for (const row of rows) {
    const user = row.user || {};
    const name = user.display_name || wording.someone;
    if (row.at) done.push({ name, at: row.at });
    else waiting.push(name);
    if (user.id === userId) mine = row.at ? "done" : "waiting";
  }
  const due = Date.parse(ack && ack.due_at);
  return { done, waiting, mine, overdue: waiting.length > 0 && Number.isFinite(due) && now > due };
}

// The block under a message asking for acknowledgement, or null.
export function renderAck(message, { userId, clock, onAcknowledge, canAcknowledge }) {
  const ack = message.ack;
  if (!ack || typeof ack !== "object" || message.deleted) return null;
  const state = ackState(ack, userId);
  const box = el("div", "msg-ack");
  box.dataset.due = ack.due_at || "";
  box.dataset.waiting = String(state.waiting.length);
  box.classList.toggle("is-overdue", state.overdue);
  box.classList.toggle("is-complete", state.waiting.length === 0);
  const requested = ack.requested || {};
  const named = (requested.agencies || []).length + (requested.users || []).length > 0;
  const head = el("p", "msg-ack-head");
  head.append(el("span", "msg-ack-title", wording.ackRequested));
  if (ack.due_at) head.append(el("span", "msg-ack-due", wording.ackDue(clock.short(ack.due_at))));
  head.append(el("span", "msg-ack-overdue", wording.ackOverdue));
  if (named && state.waiting.length + state.done.length) head.title = wording.ackRequestedFrom(
    [...state.done.map((d) => d.name), ...state.waiting].join(", "),
  );
  box.append(head);
  const status = el("p", "msg-ack-status");
  status.setAttribute("aria-live", "polite");
  const parts = state.done.map((d) => wording.acknowledgedBy(d.name, clock.short(d.at)));
  if (state.waiting.length) parts.push(wording.waitingFor(state.waiting.join(", ")));
  else parts.push(wording.allAcknowledged);
  status.textContent = parts.join(" · ");
  box.append(status);
  if (state.mine === "waiting" && canAcknowledge()) {
    const button = el("button", "msg-ack-button", wording.acknowledge);
    button.type = "button";
    button.addEventListener("click", () => {
      button.disabled = true;
      if (!onAcknowledge(message.seq)) button.disabled = false;
    });
    box.append(button);
  }
  return box;
}

// Overdue marks follow the clock, not only the frames.
export function watchOverdue(list) {
  setInterval(() => {
    const now = Date.now();
    list.querySelectorAll(".msg-ack[data-due]").forEach((box) => {
      const due = Date.parse(box.dataset.due);
      const waiting = Number(box.dataset.waiting) > 0;
      box.classList.toggle("is-overdue", waiting && Number.isFinite(due) && now > due);
    });
  }, OVERDUE_CHECK_MS);
}

// `ack.updated {room, seq, ack}`: the message is shown again with its new acknowledgements.
export function applyAckUpdate(list, frame) {
  if (!frame || typeof frame.seq !== "number") return;
  const entry = list.get(frame.seq);
  if (!entry) return;
  list.upsert({ ...entry.data, ack: frame.ack, provisional: false });
}
