// Replies: a message that answers another shows its parent quoted above its text (the quote
// comes from the server, decrypted for whoever reads the room), with a link that brings the
// parent into view; every message offers "Reply", which the composer carries as reply_to.
import { el } from "./dom.js";
import { wording } from "./wording.js";

// The quoted parent of message.reply ({seq, sender, excerpt, deleted}), or null.
export function renderQuote(reply, { onJump }) {
  if (!reply || typeof reply.seq !== "number") return null;
  const quote = el("blockquote", "msg-reply");
  const link = el("a", "msg-reply-link");
  link.href = `#msg-${reply.seq}`;
  link.title = wording.jumpToParent;
  const name = reply.sender && reply.sender.display_name ? reply.sender.display_name : null;
  link.append(el("span", "msg-reply-sender", wording.inReplyTo(name || wording.someone)));
  link.addEventListener("click", (event) => {
    event.preventDefault();
    onJump(reply.seq);
  });
  quote.append(link);
  let text = reply.excerpt;
  if (reply.deleted) text = wording.parentDeleted;
  else if (typeof text !== "string") text = wording.parentUnavailable;
  quote.append(el("span", "msg-reply-excerpt", text));
  if (reply.deleted || typeof reply.excerpt !== "string") quote.classList.add("is-gone");
  return quote;
}

// The composer's "Replying to …" bar: holds the message being answered until the next send.
export class ReplyTarget {
  constructor({ composer, input }) {
    this.input = input;
    this.target = null;
    this.bar = el("div", "chat-reply-bar");
    this.bar.id = "chat-reply-bar";
    this.bar.hidden = true;
    this.label = el("span", "chat-reply-label");
    this.excerpt = el("span", "chat-reply-excerpt");
    const cancel = el("button", "link chat-reply-cancel", wording.cancelReply);
    cancel.type = "button";
    cancel.addEventListener("click", () => this.clear());
    this.bar.append(this.label, this.excerpt, cancel);
    composer.prepend(this.bar);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.target) this.clear();
    });
  }

  set(message) {
    if (!message || typeof message.seq !== "number") return;
    const name = message.sender && message.sender.display_name;
    this.target = message.seq;
    this.label.textContent = wording.replyingTo(name || wording.someone);
    const text = typeof message.body === "string" ? message.body.replace(/\s+/g, " ") : "";
    this.excerpt.textContent = text.length > 120 ? `${text.slice(0, 119)}…` : text;
    this.bar.hidden = false;
    this.input.focus();
  }

  clear() {
    this.target = null;
    this.bar.hidden = true;
  }

  // The seq being answered, or null.
  value() {
    return this.target;
  }
}

// Bring message `seq` into view, loading earlier pages first when it is not on the page yet.
export async function revealMessage(seq, { list, loadEarlier, seqs, tries = 40 }) {
  for (let attempt = 0; attempt < tries && !list.has(seq); attempt += 1) {
    if (!seqs.hasEarlier() || seqs.minSeq <= seq) break;
    const before = seqs.minSeq;
    loadEarlier();
    await until(() => seqs.minSeq !== before, 5000);
  }
  const entry = list.get(seq);
  if (!entry) return false;
  entry.el.scrollIntoView({ block: "center" });
  entry.el.classList.add("is-target");
  entry.el.tabIndex = -1;
  entry.el.focus({ preventScroll: true });
  setTimeout(() => entry.el.classList.remove("is-target"), 2500);
  return true;
}

function until(condition, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const check = () => {
      if (condition() || Date.now() - started > timeoutMs) resolve();
      else setTimeout(check, 50);
    };
    check();
  });
}
