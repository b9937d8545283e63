// Unread counts of the reader's other rooms, and the read marker of this one.

import { strings } from "./strings.js";

const REFRESH_EVERY_MS = 30000;
const READ_AFTER_MS = 400;

// GET /api/v1/unread answers {"rooms": {"<room id>": <unread count>, ...}}.
export function unreadEntries(payload) {
  const rooms = payload && typeof payload.rooms === "object" ? payload.rooms : null;
  if (!rooms) return [];
  return Object.entries(rooms)
    .map(([id, count]) => [Number(id), Number(count)])
    .filter(([id, count]) => Number.isFinite(id) && Number.isFinite(count));
}

function badgeFor(roomId) {
  return document.querySelector(`[data-unread-for="${roomId}"]`);
}

export class UnreadCounts {
  constructor({ url, roomId }) {
    this.url = url;
    this.roomId = roomId;
  }

  start() {
    setInterval(() => this.refresh(), REFRESH_EVERY_MS);
    window.addEventListener("focus", () => this.refresh());
    this.refresh();
  }

  async refresh() {
    if (!this.url) return;
    let payload;
    try {
      const response = await fetch(this.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      payload = await response.json();
    } catch (error) {
      return;
    }
    for (const [roomId, count] of unreadEntries(payload)) {
      const badge = badgeFor(roomId);
      if (!badge) continue;
      const show = count > 0 && roomId !== this.roomId;
      badge.hidden = !show;
      badge.textContent = show ? String(count) : "";
      badge.title = show ? strings.unreadCount(count) : "";
    }
  }
}

// Moves the read marker to the newest contiguous message once the reader can see it: the page
// is visible and focused and the list is scrolled to the bottom.
export class ReadMarker {
  constructor({ roomId, seqs, list, log, send }) {
    this.roomId = roomId;
    this.seqs = seqs;
    this.list = list;
    this.send = send;
    this.sentSeq = 0;
    this.timer = null;
    window.addEventListener("focus", () => this.schedule());
    document.addEventListener("visibilitychange", () => this.schedule());
    log.addEventListener("scroll", () => {
      if (list.isNearBottom()) this.schedule();
    });
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.mark(), READ_AFTER_MS);
  }

  mark() {
    if (document.visibilityState !== "visible" || !document.hasFocus()) return;
    if (!this.list.isNearBottom()) return;
    const seq = this.seqs.lastSeq;
    if (seq > this.sentSeq && this.send({ type: "read", seq })) {
      this.sentSeq = seq;
      const badge = badgeFor(this.roomId);
      if (badge) {
        badge.hidden = true;
        badge.textContent = "";
      }
    }
  }
}

// The "Jump to the first unread message" button: shown while the "New messages" line is above
// the visible part of the list, or not loaded yet; a click loads earlier pages as needed (a few
// at most) and brings the line into view.
const JUMP_LOADS_AT_MOST = 10;

export class FirstUnread {
  constructor({ button, list, log, seqs, loadEarlier }) {
    this.button = button;
    this.list = list;
    this.log = log;
    this.seqs = seqs;
    this.loadEarlier = loadEarlier;
    this.loadsLeft = 0; // earlier pages still to load for a jump in progress
  }

  start() {
    if (!this.button) return;
    this.button.addEventListener("click", () => this.jump());
    this.log.addEventListener("scroll", () => this.update());
    this.list.onArranged = () => this.arranged();
    this.update();
  }

  // Is the line (or the first unread message, not loaded yet) above what the reader sees?
  isAbove() {
    const from = this.list.unreadFrom;
    if (from === null) return false;
    const line = this.list.unreadLine();
    if (!line) return this.seqs.minSeq !== null && from < this.seqs.minSeq;
    return line.getBoundingClientRect().bottom <= this.log.getBoundingClientRect().top + 1;
  }

  update() {
    if (this.button) this.button.hidden = !this.isAbove();
  }

  arranged() {
    if (this.loadsLeft > 0 && !this.list.unreadLine()) {
      this.loadsLeft -= 1;
      if (this.loadsLeft > 0 && this.seqs.hasEarlier()) this.loadEarlier();
    } else if (this.loadsLeft > 0) {
      this.loadsLeft = 0;
      this.reveal();
    }
    this.update();
  }

  jump() {
    if (this.list.unreadLine()) {
      this.reveal();
    } else if (this.seqs.hasEarlier()) {
      this.loadsLeft = JUMP_LOADS_AT_MOST;
      this.loadEarlier();
    }
  }

  reveal() {
    const line = this.list.unreadLine();
    if (!line) return;
    line.scrollIntoView({ block: "start" });
    const first = line.nextElementSibling;
    if (first) {
      first.tabIndex = -1;
      first.focus({ preventScroll: true });
    }
    this.update();
  }
}
