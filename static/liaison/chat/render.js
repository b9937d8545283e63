// The message list: each message rendered with DOM APIs (user text only through textContent
// and DOM-built links), kept in seq order, replaced in place when edited or deleted, with its
// bearings (day separators, the "New messages" line, runs of one sender) laid out by bearings.js.
import { arrange } from "./bearings.js";
import { el } from "./dom.js";
import { formatSize } from "./format.js";
import { linkTokens, sameOriginPath } from "./linkify.js";
import { agencyName } from "./people.js";
import { renderReport } from "./reports.js";
import { strings } from "./strings.js";

const NEAR_BOTTOM_PX = 80;

export function appendLinkified(parent, text) {
  for (const token of linkTokens(text)) {
    if (!token.href) {
      parent.append(document.createTextNode(token.text));
      continue;
    }
    const link = document.createElement("a");
    link.href = token.href;
    link.textContent = token.text;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    parent.append(link);
  }
}

// Would rendering `b` change nothing shown for `a`? Then a duplicate delivery keeps its node.
export function sameMessage(a, b) {
  return (
    !a.provisional &&
    a.body === b.body &&
    a.edited_at === b.edited_at &&
    a.deleted === b.deleted &&
    a.shredded === b.shredded &&
    a.error === b.error &&
    JSON.stringify(a.attachments || []) === JSON.stringify(b.attachments || []) &&
    JSON.stringify([a.reply, a.ack, a.marking, a.reactions]) ===
      JSON.stringify([b.reply, b.ack, b.marking, b.reactions])
  );
}

export function renderAttachments(attachments) {
  const list = el("ul", "msg-attachments");
  for (const attachment of attachments) {
    if (!attachment || typeof attachment !== "object") continue;
    const item = el("li", "attachment");
    item.dataset.attachmentId = String(attachment.id);
    const name = typeof attachment.name === "string" ? attachment.name : strings.defaultFileName;
    const download = sameOriginPath(attachment.download_url, location.origin);
    const thumb = attachment.has_thumbnail
      ? sameOriginPath(attachment.thumbnail_url, location.origin)
      : null;
    if (thumb) item.append(renderThumbnail(attachment, thumb, download, name));
    const info = el("div", "attachment-info");
    if (download) {
      const link = el("a", "attachment-download", name);
      link.href = download;
      link.setAttribute("download", "");
      info.append(link);
    } else {
      info.append(el("span", "attachment-name", name));
    }
    const details = [formatSize(attachment.size), attachment.content_type].filter(Boolean);
    info.append(el("span", "attachment-details", details.join(" · ")));
    if (typeof attachment.sha256 === "string") {
      const sha = el("span", "attachment-sha", strings.sha256Short(attachment.sha256));
      sha.title = strings.sha256Full(attachment.sha256);
      info.append(sha);
    }
    item.append(info);
    list.append(item);
  }
  return list;
}

function renderThumbnail(attachment, thumb, download, name) {
  const img = document.createElement("img");
  img.className = "attachment-thumb";
  img.src = thumb;
  img.alt = name;
  img.loading = "lazy";
  if (attachment.width && attachment.height) {
    const scale = Math.min(1, 240 / attachment.width, 180 / attachment.height);
    img.width = Math.max(1, Math.round(attachment.width * scale));
    img.height = Math.max(1, Math.round(attachment.height * scale));
  }
  if (!download) return img;
  const wrap = document.createElement("a");
  wrap.href = download;
  wrap.className = "attachment-thumb-link";
  wrap.setAttribute("download", "");
  wrap.append(img);
  return wrap;
}

// A line across the list (a new day, the first unread message). A plain list item read out by
// its text: a list may hold only list items, so no separator role (axe-core checks it).
function separator(className, label) {
  const li = el("li", className);
  li.append(el("span", "separator-label", label));
  return li;
}

export class MessageList {
  // access.canPost may turn false while the page is open; onEdit/onDelete(seq) act on one's
  // own messages.
  // days: from makeDays (bearings.js); unreadFrom: the first seq the reader has not read, or
  // null for no "New messages" line.
  // decorate(li, message): adds what a message asks of its readers (replies.js, acks.js, ...).
  constructor({
    ui,
    cfg,
    clock,
    days,
    people,
    seqs,
    access,
    onEdit,
    onDelete,
    unreadFrom = null,
    decorate = () => {},
  }) {
    this.log = ui.log;
    this.list = ui.list;
    this.earlier = ui.earlier;
    this.startNote = ui.startNote;
    this.cfg = cfg;
    this.clock = clock;
    this.days = days;
    this.unreadFrom = unreadFrom;
    this.arrangePending = false;
    this.stickToBottom = false;
    this.awayArmed = false; // the page was hidden: the next live message starts the new ones
    this.onArranged = () => {};
    this.people = people;
    this.seqs = seqs;
    this.access = access;
    this.onEdit = onEdit;
    this.onDelete = onDelete;
    this.decorate = decorate;
    this.messages = new Map(); // seq -> {data, el}
  }

  has(seq) {
    return this.messages.has(seq);
  }

  get(seq) {
    return this.messages.get(seq) || null;
  }

  upsert(message, { clientId = null } = {}) {
    if (!message || typeof message.seq !== "number" || message.seq < 1) return;
    const seq = message.seq;
    const existing = this.messages.get(seq);
    if (existing && message.provisional) return;
    if (existing && sameMessage(existing.data, message)) return; // a duplicate: keep the node
    const atBottom = this.isNearBottom();
    const node = this.render(message);
    const knownClient = clientId || (existing && existing.el.dataset.clientId);
    if (knownClient) node.dataset.clientId = knownClient;
    if (existing) existing.el.replaceWith(node);
    else this.insertInOrder(node, seq);
    this.messages.set(seq, { data: message, el: node });
    if (message.sender && message.sender.id != null) this.people.remember(message.sender);
    this.seqs.hold(seq, message.provisional);
    if (!existing && atBottom) {
      this.scrollToBottom();
      this.stickToBottom = true;
    }
    this.updateEarlier();
    this.scheduleArrange();
  }

  // A live message arrived: if the reader is away (the page hidden), the "New messages" line
  // goes before the first one they will come back to.
  arrivedLive(message) {
    if (!this.awayArmed || !message.sender || message.sender.id === this.cfg.userId) return;
    this.awayArmed = false;
    this.unreadFrom = message.seq;
    this.scheduleArrange();
  }

  watchAway(doc = document) {
    doc.addEventListener("visibilitychange", () => {
      if (doc.visibilityState === "hidden") this.awayArmed = true;
    });
  }

  // Bearings are laid out once per burst of changes (a sync brings many messages at once).
  scheduleArrange() {
    if (this.arrangePending) return;
    this.arrangePending = true;
    queueMicrotask(() => this.arrange());
  }

  arrange() {
    this.arrangePending = false;
    const nodes = Array.from(this.list.children).filter((node) => node.classList.contains("msg"));
    const items = nodes.map((node) => {
      const data = this.messages.get(Number(node.dataset.seq)).data;
      const sender = data.sender || {};
      return {
        seq: data.seq,
        senderId: sender.id ?? null,
        createdAt: data.created_at,
        kind: data.kind,
      };
    });
    const placed = arrange(items, {
      days: this.days,
      unreadFrom: this.unreadFrom,
      userId: this.cfg.userId,
    });
    this.list.querySelectorAll(":scope > .day-separator, :scope > .unread-line").forEach((node) => {
      node.remove();
    });
    placed.forEach((place, index) => {
      const node = nodes[index];
      node.classList.toggle("grouped", place.grouped);
      if (place.day) node.before(separator("day-separator", place.day));
      if (place.unread) node.before(separator("unread-line", strings.newMessages));
    });
    if (this.stickToBottom) {
      this.scrollToBottom();
      this.stickToBottom = false;
    }
    this.onArranged();
  }

  unreadLine() {
    return this.list.querySelector(":scope > .unread-line");
  }

  // The stored copy is already shown: note which of our sends it was.
  tagClient(seq, clientId) {
    const entry = this.messages.get(seq);
    if (entry) entry.el.dataset.clientId = clientId;
  }

  insertInOrder(node, seq) {
    let after = this.list.lastElementChild;
    // Separators carry no seq: step over them, they are laid out again afterwards.
    while (after && (!after.dataset.seq || Number(after.dataset.seq) > seq)) {
      after = after.previousElementSibling;
    }
    if (after) after.after(node);
    else this.list.prepend(node);
  }

  render(message) {
    const sender = message.sender || {};
    const mine = sender.id === this.cfg.userId;
    const li = el("li", "msg");
    li.dataset.seq = String(message.seq);
    li.dataset.state = "sent";
    li.id = `msg-${message.seq}`;
    if (mine) li.classList.add("mine");
    if (message.kind && message.kind !== "text") li.classList.add(`kind-${message.kind}`);
    if (message.deleted) li.classList.add("deleted");

    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-sender", sender.display_name || strings.unknownSender));
    const agency = agencyName(sender);
    if (agency) meta.append(el("span", "msg-agency", agency));
    const time = el("time", "msg-time");
    if (message.created_at) {
      time.dateTime = message.created_at;
      time.textContent = this.clock.time(message.created_at);
      time.title = this.clock.full(message.created_at, this.people.timeZoneOf(sender));
    }
    meta.append(time);
    if (message.edited_at && !message.deleted) {
      const edited = el("span", "msg-edited", strings.edited);
      edited.title = this.clock.full(message.edited_at, null);
      meta.append(edited);
    }
    li.append(meta);

    const body = el("div", "msg-body");
    const text = typeof message.body === "string" ? message.body : null;
    if (message.error === "integrity") {
      li.classList.add("broken");
      body.textContent = strings.integrityFailed;
    } else if (message.error) {
      li.classList.add("broken");
      body.textContent = strings.cannotOpen;
    } else if (message.deleted && text === null) {
      body.textContent = strings.deleted;
    } else {
      if (message.deleted) li.append(el("div", "msg-deleted-note", strings.deletedForAuditors));
      if (!(message.kind === "report" && renderReport(body, text))) appendLinkified(body, text || "");
    }
    li.append(body);

    if (!message.deleted && Array.isArray(message.attachments) && message.attachments.length) {
      li.append(renderAttachments(message.attachments));
    }

    const editable = !message.deleted && !message.shredded && !message.error;
    if (mine && editable && this.access.canPost && !message.provisional) {
      const actions = el("div", "msg-actions");
      const edit = el("button", "link msg-edit", strings.edit);
      edit.type = "button";
      edit.addEventListener("click", () => this.onEdit(message.seq));
      const del = el("button", "link msg-delete", strings.delete);
      del.type = "button";
      del.addEventListener("click", () => this.onDelete(message.seq));
      actions.append(edit, del);
      li.append(actions);
    }
    this.decorate(li, message);
    return li;
  }

  // The page may no longer post: no message offers Edit or Delete.
  removeActions() {
    this.list.querySelectorAll(".msg-actions").forEach((node) => node.remove());
  }

  updateEarlier() {
    const more = this.seqs.hasEarlier();
    const empty = this.messages.size === 0 && this.cfg.lastSeq === 0;
    this.earlier.hidden = !more;
    this.startNote.hidden = more || !(this.seqs.holdsStart() || empty);
    this.startNote.textContent = empty ? strings.roomEmpty : strings.roomStart;
  }

  earlierLoading(busy) {
    this.earlier.disabled = busy;
    this.earlier.textContent = busy ? strings.loading : strings.loadEarlier;
  }

  // Older messages go in above without moving what the reader is looking at.
  keepingScroll(change) {
    const before = this.log.scrollHeight - this.log.scrollTop;
    change();
    this.arrange(); // the separators above move the view too
    this.log.scrollTop = this.log.scrollHeight - before;
  }

  isNearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
