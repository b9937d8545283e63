// Tells a screen reader about each new message from someone else, once and politely. The
// message list itself is not a live region: loading the history would read the room aloud.
import { strings } from "./strings.js";

const MAX_CHARS = 200;

export function announcement(message, userId) {
  const sender = (message && message.sender) || {};
  if (!message || sender.id === userId) return "";
  const name = sender.display_name || strings.unknownSender;
  let text = typeof message.body === "string" && !message.error ? message.body.trim() : "";
  if (text.length > MAX_CHARS) text = `${text.slice(0, MAX_CHARS)}…`;
  return text ? strings.announceMessage(name, text) : strings.announceWithoutText(name);
}

export class Announcer {
  constructor({ node, userId }) {
    this.node = node; // the visually hidden aria-live="polite" element, or null
    this.userId = userId;
  }

  message(message) {
    const text = announcement(message, this.userId);
    if (this.node && text) this.node.textContent = text;
  }
}
