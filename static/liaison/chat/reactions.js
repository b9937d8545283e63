// Reactions from a fixed set (seen, agreed, important) under each message: a click (or 1, 2, 3
// on a message in focus) sets or clears the reader's own; counts and names update live from
// `reaction.updated`. Set over HTTP (POST .../reactions), like the other light writes.
import { el } from "./dom.js";
import { wording } from "./wording.js";

export const REACTIONS = ["\u2713", "\u{1F44D}", "\u2757"];

// The bar under a message; `names(id)` gives a person's display name.
export function renderReactions(message, { userId, names, canReact, onToggle }) {
  if (message.deleted || message.provisional || typeof message.seq !== "number") return null;
  const given = message.reactions && typeof message.reactions === "object" ? message.reactions : {};
  const bar = el("div", "msg-reactions");
  for (const emoji of REACTIONS) {
    const who = Array.isArray(given[emoji]) ? given[emoji] : [];
    if (!who.length && !canReact()) continue;
    const button = el("button", "msg-reaction");
    button.type = "button";
    button.tabIndex = -1;
    button.dataset.emoji = emoji;
    const mine = who.includes(userId);
    button.setAttribute("aria-pressed", String(mine));
    button.append(el("span", "msg-reaction-emoji", emoji));
    if (who.length) button.append(el("span", "msg-reaction-count", String(who.length)));
    const people = who.map((id) => (id === userId ? wording.you : names(id) || wording.someone));
    button.title = who.length
      ? wording.reactedBy(wording.reactionName(emoji), people.join(", "))
      : wording.reactionName(emoji);
    button.disabled = !canReact();
    button.addEventListener("click", () => onToggle(message.seq, emoji, !mine));
    bar.append(button);
  }
  return bar.childElementCount ? bar : null;
}

// Sets or clears one reaction; the message's reactions afterwards, or null.
export async function sendReaction({ roomId, seq, emoji, on, csrfToken }) {
  try {
    const response = await fetch(`/api/v1/rooms/${roomId}/messages/${seq}/reactions`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ emoji, on }),
    });
    if (!response.ok) return null;
    return (await response.json()).reactions;
  } catch (error) {
    return null;
  }
}

// `reaction.updated {room, seq, reactions}` (or an HTTP answer): the message is shown again.
export function applyReactions(list, seq, reactions) {
  const entry = list.get(seq);
  if (!entry || !reactions) return;
  list.upsert({ ...entry.data, reactions, provisional: false });
}
