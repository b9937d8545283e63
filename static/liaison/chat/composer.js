// The composer and the visible outbox: what the user writes is shown at once as "sending…",
// goes out through the outbox (outbox.js) and leaves the outbox list when the server
// acknowledges it, or stays there marked "not sent" with the server's reason.
import { cssEscape, el } from "./dom.js";
import { sendFrame } from "./outbox.js";
import { appendLinkified, renderAttachments } from "./render.js";
import { strings } from "./strings.js";

const TYPING_SEND_EVERY_MS = 3000;

export class Composer {
  // outbox: an Outbox; list: the MessageList; uploads: Uploads; send(frame) -> bool;
  // access.canPost is turned off here when the room becomes read-only.
  // drafting (optional): asks(text) -> what the next message asks besides being read
  // (reply_to, mentions, ack, kind, marking), sent() after it went into the outbox.
  constructor({ cfg, ui, clock, outbox, list, uploads, access, send, notice, drafting = null }) {
    this.cfg = cfg;
    this.ui = ui;
    this.clock = clock;
    this.outbox = outbox;
    this.list = list;
    this.uploads = uploads;
    this.access = access;
    this.send = send;
    this.notice = notice;
    this.drafting = drafting;
    this.typingSentAt = 0;
  }

  start() {
    const { composer, input } = this.ui;
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      const now = Date.now();
      if (this.access.canPost && input.value && now - this.typingSentAt > TYPING_SEND_EVERY_MS) {
        if (this.send({ type: "typing" })) this.typingSentAt = now;
      }
    });
    this.outbox.entries.forEach((entry) => this.renderPending(entry));
  }

  submit() {
    if (!this.access.canPost) return;
    const input = this.ui.input;
    const text = input.value.replace(/\s+$/, "");
    const ready = this.uploads.ready();
    if (this.uploads.busy()) {
      this.notice(strings.waitForUploads);
      return;
    }
    if (!text.trim() && ready.length === 0) return;
    if (text.length > this.cfg.maxChars) {
      this.notice(strings.tooLong(this.cfg.maxChars));
      return;
    }
    const entry = this.outbox.add({
      body: text.trim() ? text : "",
      attachments: ready.map((upload) => upload.attachment.id),
      attachmentMeta: ready.map((upload) => upload.attachment),
      asks: this.drafting ? this.drafting.asks(text) : null,
    });
    if (this.drafting) this.drafting.sent();
    this.renderPending(entry);
    ready.forEach((upload) => this.uploads.remove(upload));
    input.value = "";
    input.focus(); // after a tap or click on Send too: the next message starts here
    this.list.scrollToBottom();
    this.flush();
  }

  // Oldest first, a few at a time; each answer (ack or error) lets the next one go.
  flush() {
    for (const entry of this.outbox.due()) {
      if (!this.send(sendFrame(entry))) return;
      this.outbox.sent(entry.client_id);
    }
  }

  pendingNode(clientId) {
    return this.ui.outbox.querySelector(`[data-client-id="${cssEscape(clientId)}"]`);
  }

  // message.ack: the message is stored as `seq`. Shown as sent at once; the broadcast (or the
  // next sync) brings the stored copy.
  acknowledged(clientId, seq) {
    if (typeof clientId !== "string") return;
    const entry = this.outbox.remove(clientId);
    this.outbox.answered(clientId);
    const pending = this.pendingNode(clientId);
    if (typeof seq === "number") {
      if (!this.list.has(seq) && entry) {
        const cfg = this.cfg;
        const provisional = {
          seq,
          body: entry.body,
          kind: "text",
          sender: { id: cfg.userId, display_name: cfg.userName, agency: cfg.userAgency },
          created_at: entry.created_at,
          edited_at: null,
          deleted: false,
          attachments: entry.attachmentMeta || [],
          provisional: true,
        };
        this.list.upsert(provisional, { clientId });
      } else {
        this.list.tagClient(seq, clientId);
      }
    }
    if (pending) pending.remove();
    this.flush();
  }

  // An error frame about one of our messages: busy or rate-limited ones go again a little
  // later; anything else is marked "not sent" with the reason.
  // retryAfter: seconds the server asked us to wait (a busy server stored nothing), or null.
  refused(clientId, text, retryLater, retryAfter = null) {
    this.outbox.answered(clientId);
    if (!this.outbox.find(clientId)) return;
    if (retryLater) {
      const waitMs =
        typeof retryAfter === "number" && retryAfter > 0
          ? retryAfter * 1000 * (1 + Math.random() * 0.5)
          : 5000 + Math.random() * 5000;
      setTimeout(() => this.flush(), waitMs);
      return;
    }
    this.renderPending(this.outbox.fail(clientId, text));
  }

  renderPending(entry) {
    let li = this.pendingNode(entry.client_id);
    const fresh = !li;
    if (fresh) li = el("li", "msg mine pending");
    li.replaceChildren();
    li.dataset.clientId = entry.client_id;
    li.dataset.state = entry.failed ? "failed" : "sending";
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-sender", this.cfg.userName));
    if (this.cfg.userAgency) meta.append(el("span", "msg-agency", this.cfg.userAgency));
    const time = el("time", "msg-time", this.clock.short(entry.created_at));
    time.dateTime = entry.created_at;
    meta.append(time);
    meta.append(el("span", "msg-state", entry.failed ? strings.notSent : strings.sending));
    li.append(meta);
    const body = el("div", "msg-body");
    appendLinkified(body, entry.body);
    li.append(body);
    if (entry.attachmentMeta && entry.attachmentMeta.length) {
      li.append(renderAttachments(entry.attachmentMeta));
    }
    if (entry.failed) li.append(this.failureActions(entry, li));
    if (fresh) this.ui.outbox.append(li);
  }

  failureActions(entry, li) {
    const actions = el("div", "msg-actions");
    actions.append(el("span", "msg-failure", entry.failed));
    const retry = el("button", "link", strings.retry);
    retry.type = "button";
    retry.addEventListener("click", () => {
      this.outbox.retry(entry.client_id);
      this.renderPending(entry);
      this.flush();
    });
    const discard = el("button", "link", strings.discard);
    discard.type = "button";
    discard.addEventListener("click", () => {
      this.outbox.remove(entry.client_id);
      li.remove();
    });
    actions.append(retry, discard);
    return actions;
  }

  // The room became read-only (the exercise closed, access ended): nothing more can be posted.
  disable(reason) {
    const ui = this.ui;
    this.access.canPost = false;
    ui.composer.classList.add("is-disabled");
    ui.input.disabled = true;
    ui.send.disabled = true;
    ui.file.disabled = true;
    ui.input.placeholder = strings.readOnly;
    ui.readonly.textContent = reason;
    ui.readonly.hidden = false;
    this.list.removeActions();
  }
}
