// The room page's conversation features, wired in one place: replies, mentions,
// acknowledgements, alerts and markings on each message (decorate), what the composer sends
// besides the text (drafting), live counts and notifications (attention.js, notify.js), the
// image viewer and pasted images, and landing on a message named in the address (#msg-N).
import { applyAckUpdate, renderAck, watchOverdue } from "./acks.js";
import { AttentionSocket, CountsView, Tally } from "./attention.js";
import { el } from "./dom.js";
import { Drafting } from "./drafting.js";
import { Lightbox } from "./lightbox.js";
import { markMentions, MentionPicker, readMembers } from "./mentions.js";
import { Notifier, RoomSettings } from "./notify.js";
import { watchPaste } from "./paste.js";
import { applyReactions, renderReactions, sendReaction, REACTIONS } from "./reactions.js";
import { renderQuote, ReplyTarget, revealMessage } from "./replies.js";
import { wording } from "./wording.js";

function roomTitles(doc = document) {
  const titles = new Map();
  doc.querySelectorAll("[data-room-link]").forEach((link) => {
    const name = link.querySelector(".room-name");
    const text = (name ? name.textContent : link.textContent).trim().replace(/^#\s*/, "");
    titles.set(Number(link.dataset.roomLink), text);
  });
  return titles;
}

export class Conversation {
  constructor({ cfg, ui, clock, access, send, notice }) {
    this.cfg = cfg;
    this.ui = ui;
    this.clock = clock;
    this.access = access;
    this.send = send;
    this.notice = notice;
    this.list = null;
    const members = readMembers(ui.people, cfg.userId);
    this.names = new Map(members.map((m) => [m.id, m.name]));
    this.agencies = new Map();
    members.forEach((m) => m.agencyCode && this.agencies.set(m.agencyCode, m.agency));
    this.reply = new ReplyTarget({ composer: ui.composer, input: ui.input });
    this.mentions = new MentionPicker({ input: ui.input, members });
    this.drafting = new Drafting({
      composer: ui.composer,
      markings: cfg.markings,
      defaultMarking: cfg.defaultMarking,
      agencies: [...this.agencies].map(([code, name]) => ({ code, name })),
      reply: this.reply,
      mentions: this.mentions,
    });
    if (!cfg.canPost) this.drafting.disable();
    this.lightbox = new Lightbox();
    this.tally = new Tally(cfg.userId);
    this.titles = roomTitles();
  }

  // Called by MessageList.render for every message shown.
  decorate(li, message) {
    const body = li.querySelector(".msg-body");
    if (message.kind === "alert") {
      li.querySelector(".msg-meta")?.prepend(el("span", "badge alert-badge", wording.alert));
    }
    if (message.marking && message.marking !== this.cfg.defaultMarking) {
      li.querySelector(".msg-meta")?.append(el("span", "badge marking-badge", message.marking));
    }
    const quote = renderQuote(message.reply, { onJump: (seq) => this.reveal(seq) });
    if (quote && body) body.before(quote);
    markMentions(li, message, { userId: this.cfg.userId, names: this.names, agencies: this.agencies });
    const ack = renderAck(message, {
      userId: this.cfg.userId,
      clock: this.clock,
      canAcknowledge: () => this.access.canPost,
      onAcknowledge: (seq) => {
        const sent = this.send({ type: "ack", seq });
        if (!sent) this.notice(wording.ackNotSent);
        return sent;
      },
    });
    if (ack) li.append(ack);
    const reactions = renderReactions(message, {
      userId: this.cfg.userId,
      names: (id) => this.names.get(id),
      canReact: () => this.access.canPost,
      onToggle: (seq, emoji, on) => this.react(seq, emoji, on),
    });
    if (reactions) li.append(reactions);
    const files = new Map((message.attachments || []).map((a) => [a.id, a]));
    this.lightbox.bind(li, (id) => String(files.get(id)?.content_type || "").startsWith("image/"));
    li.querySelectorAll(".attachment[data-attachment-id]").forEach((item) => {
      const marking = files.get(Number(item.dataset.attachmentId))?.marking;
      if (marking && marking !== this.cfg.defaultMarking) {
        item.querySelector(".attachment-info")?.append(
          el("span", "badge marking-badge attachment-marking", marking),
        );
      }
    });
    const usable = !message.deleted && !message.provisional && !message.error;
    if (usable && this.access.canPost && typeof message.seq === "number") {
      const tools = el("div", "msg-tools");
      const reply = el("button", "link msg-reply-button", wording.reply);
      reply.type = "button";
      // Out of the Tab order (one stop per message would bury the composer): keyboard users
      // reach messages with the arrow keys in the list and reply with R (keyboardReplies).
      reply.tabIndex = -1;
      reply.title = wording.replyKey;
      reply.addEventListener("click", () => this.reply.set(message));
      tools.append(reply);
      li.append(tools);
    }
  }

  attach({ list, seqs, loadEarlier, uploads }) {
    this.list = list;
    this.seqs = seqs;
    this.loadEarlier = loadEarlier;
    if (this.cfg.canPost) {
      this.mentions.start();
      watchPaste(this.ui.input, uploads);
    }
    watchOverdue(this.ui.list);
    this.keyboardReplies();
  }

  // In the message list, Up and Down move between messages and R answers the one in focus.
  keyboardReplies() {
    const log = this.ui.log;
    log.addEventListener("keydown", (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const items = Array.from(this.ui.list.querySelectorAll(":scope > li.msg"));
      const current = event.target.closest ? event.target.closest("li.msg") : null;
      const at = current ? items.indexOf(current) : items.length;
      let next = null;
      if (event.key === "ArrowUp") next = items[Math.max(0, at - 1)];
      else if (event.key === "ArrowDown" && current) next = items[Math.min(items.length - 1, at + 1)];
      else if (["1", "2", "3"].includes(event.key) && current && this.access.canPost) {
        const entry = this.list && this.list.get(Number(current.dataset.seq));
        const emoji = REACTIONS[Number(event.key) - 1];
        if (entry && !entry.data.deleted) {
          event.preventDefault();
          const mine = (entry.data.reactions?.[emoji] || []).includes(this.cfg.userId);
          this.react(entry.data.seq, emoji, !mine).then(() => this.list.get(entry.data.seq)?.el.focus());
        }
        return;
      } else if ((event.key === "r" || event.key === "R") && current && this.access.canPost) {
        const entry = this.list && this.list.get(Number(current.dataset.seq));
        if (entry && !entry.data.deleted) {
          event.preventDefault();
          this.reply.set(entry.data);
        }
        return;
      }
      if (!next) return;
      event.preventDefault();
      next.tabIndex = -1;
      next.focus();
    });
  }

  reveal(seq) {
    if (!this.list) return Promise.resolve(false);
    return revealMessage(seq, { list: this.list, seqs: this.seqs, loadEarlier: this.loadEarlier });
  }

  // After each presence frame: when each offline person was last seen (now, for one who just
  // left), from data-last-seen on the people list.
  presence(frame, people) {
    if (!this.ui.people) return;
    const left = new Set(Array.isArray(frame.left) ? frame.left : []);
    const now = new Date().toISOString();
    this.ui.people.querySelectorAll("li[data-person]").forEach((li) => {
      const id = Number(li.dataset.person);
      const seen = li.querySelector(".person-last-seen");
      if (!seen) return;
      if (left.has(id)) seen.dataset.lastSeen = now;
      const at = seen.dataset.lastSeen;
      const online = people.online.has(id);
      seen.textContent = !online && at ? wording.lastSeen(this.clock.short(at)) : "";
    });
  }

  // A person's message arrived: they are no longer typing it.
  stoppedTyping(people, message) {
    const id = message && message.sender ? message.sender.id : null;
    const typer = id == null ? null : people.typers.get(id);
    if (!typer) return;
    clearTimeout(typer.timer);
    people.typers.delete(id);
    people.renderTypers();
  }

  async react(seq, emoji, on) {
    const { roomId, csrfToken } = this.cfg;
    const reactions = await sendReaction({ roomId, seq, emoji, on, csrfToken });
    if (reactions && this.list) applyReactions(this.list, seq, reactions);
  }

  onFrame(frame) {
    if (frame.type === "ack.updated" && this.list) applyAckUpdate(this.list, frame);
    if (frame.type === "reaction.updated" && this.list) {
      applyReactions(this.list, frame.seq, frame.reactions);
    }
  }

  // Live counts and notifications for every room of the reader.
  startAttention() {
    const roomId = this.cfg.roomId;
    const view = new CountsView({ tally: this.tally, currentRoom: roomId, clock: this.clock });
    const sidebar = document.querySelector(".chat-rooms");
    const notifier = new Notifier({
      userId: this.cfg.userId,
      tally: this.tally,
      titles: (id) => this.titles.get(id),
      currentRoom: roomId,
      host: sidebar,
    });
    let settings = null;
    if (sidebar && this.cfg.isMember) {
      const host = el("p", "chat-room-settings");
      sidebar.append(host);
      settings = new RoomSettings({
        host,
        roomId,
        csrfToken: this.cfg.csrfToken,
        tally: this.tally,
        onChange: () => view.paint(),
      });
    }
    new AttentionSocket({
      tally: this.tally,
      onFrame: (frame) => {
        notifier.consider(frame);
        view.paint();
        if (settings && frame.type === "counts") settings.paint();
      },
    }).start();
  }

  // The address names a message (#msg-N, from search or a notification): bring it into view
  // once the page has caught up.
  revealFromAddress() {
    const match = /^#msg-(\d+)$/.exec(location.hash);
    if (!match) return;
    const seq = Number(match[1]);
    const started = Date.now();
    const wait = () => {
      if (this.seqs && this.seqs.caughtUp && this.list && this.seqs.minSeq !== null) {
        this.reveal(seq);
      } else if (Date.now() - started < 15000) {
        setTimeout(wait, 100);
      }
    };
    wait();
  }
}
