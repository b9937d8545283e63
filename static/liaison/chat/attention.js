// Live attention: unread, mention and acknowledgement counts for every room of the reader,
// pushed over the attention socket (/ws/attention/, docs/api/websocket.md), never polled.
// Shown on the room page's sidebar, the home page and the tab title; notices and alerts go to
// notify.js. The server sends exact counts on connect and after each read; between them new
// activity adds one, once per seq.
import { reconnectDelay } from "./socket.js";
import { strings } from "./strings.js";
import { wording } from "./wording.js";

const PING_EVERY_MS = 25000;

// What the page keeps of the counts frames (pure; the tests run the same rules on the server).
export class Tally {
  constructor(userId) {
    this.userId = userId;
    this.rooms = new Map(); // room id -> {unread, mentions, acks, read_seq, last_seq, ...}
    this.noticed = new Set();
  }

  apply(frame) {
    if (!frame || typeof frame !== "object") return false;
    if (frame.type === "counts" && frame.rooms && typeof frame.rooms === "object") {
      if (frame.full) this.rooms.clear();
      for (const [id, row] of Object.entries(frame.rooms)) this.rooms.set(Number(id), { ...row });
      return true;
    }
    const row = this.rooms.get(frame.room);
    if (!row || typeof frame.seq !== "number") return false;
    if (frame.type === "activity") {
      if (frame.seq <= row.last_seq) return false;
      row.last_seq = frame.seq;
      if (frame.at) row.last_at = frame.at;
      if (frame.sender !== this.userId && frame.seq > row.read_seq) row.unread += 1;
      return true;
    }
    if (frame.type === "notice") {
      const key = `${frame.room}:${frame.seq}:${frame.reason}`;
      if (this.noticed.has(key) || frame.seq <= row.read_seq) return false;
      this.noticed.add(key);
      if (frame.reason === "mention") row.mentions += 1;
      if (frame.reason === "ack") row.acks += 1;
      return true;
    }
    return false;
  }

  // This page's own room is being read: what arrives in it counts as read.
  read(roomId, seq) {
    const row = this.rooms.get(roomId);
    if (!row || seq <= row.read_seq) return;
    row.read_seq = seq;
    row.unread = 0;
    row.mentions = 0;
  }

  totals() {
    let unread = 0;
    let mentions = 0;
    for (const row of this.rooms.values()) {
      if (row.muted) continue;
      unread += row.unread;
      mentions += row.mentions;
    }
    return { unread, mentions };
  }
}

// The tab title with the counts in front: "(2@ · 5) General · CFE-2026-07".
export function titleWith(base, { unread, mentions }) {
  if (!unread && !mentions) return base;
  const prefix = mentions ? `(${mentions}@ · ${unread})` : `(${unread})`;
  return `${prefix} ${base}`;
}

function setBadge(node, row, hide) {
  if (!node) return;
  const show = !hide && row && (row.unread > 0 || row.mentions > 0);
  node.hidden = !show;
  node.classList.toggle("has-mentions", Boolean(show && row.mentions > 0));
  node.classList.toggle("is-muted", Boolean(row && row.muted));
  if (!show) {
    node.textContent = "";
    node.title = "";
    return;
  }
  node.textContent = row.mentions > 0 ? `@${row.mentions} · ${row.unread}` : String(row.unread);
  const parts = [strings.unreadCount(row.unread)];
  if (row.mentions) parts.push(wording.unreadMentions(row.mentions));
  if (row.acks) parts.push(wording.acksWaiting(row.acks));
  node.title = parts.join(" · ");
}

// Paints the counts wherever the page shows them: [data-unread-for], [data-acks-for],
// [data-last-at-for] (with a clock), [data-exercise-unread] and the tab title.
export class CountsView {
  constructor({ tally, currentRoom = null, clock = null, doc = document }) {
    this.tally = tally;
    this.currentRoom = currentRoom;
    this.clock = clock;
    this.doc = doc;
    this.baseTitle = doc.title;
  }

  paint() {
    const exercises = new Map();
    for (const [id, row] of this.tally.rooms) {
      setBadge(this.doc.querySelector(`[data-unread-for="${id}"]`), row, id === this.currentRoom);
      const acks = this.doc.querySelector(`[data-acks-for="${id}"]`);
      if (acks) {
        acks.hidden = !row.acks;
        acks.textContent = row.acks ? wording.acksWaiting(row.acks) : "";
      }
      const last = this.doc.querySelector(`[data-last-at-for="${id}"]`);
      if (last && row.last_at && this.clock) {
        last.dateTime = row.last_at;
        last.textContent = this.clock.short(row.last_at);
      }
      const total = exercises.get(row.exercise) || { unread: 0, mentions: 0, acks: 0 };
      if (!row.muted) {
        total.unread += row.unread;
        total.mentions += row.mentions;
      }
      total.acks += row.acks;
      exercises.set(row.exercise, total);
    }
    for (const [id, total] of exercises) {
      setBadge(this.doc.querySelector(`[data-exercise-unread="${id}"]`), total, false);
    }
    this.doc.title = titleWith(this.baseTitle, this.tally.totals());
  }
}

export class AttentionSocket {
  // onFrame(frame): every frame after the tally took it in.
  constructor({ tally, onFrame, path = "/ws/attention/" }) {
    this.tally = tally;
    this.onFrame = onFrame;
    this.path = path;
    this.attempt = 0;
    this.socket = null;
    this.pinger = null;
    this.stopped = false;
  }

  start() {
    this.connect();
    window.addEventListener("online", () => this.connect());
  }

  connect() {
    if (this.socket || this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    } catch (error) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      this.tally.apply(frame);
      this.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(this.pinger);
      this.socket = null;
      if (event.code === 4401 || event.code === 4403) {
        this.stopped = true; // the room socket or the next page load says why
        return;
      }
      this.retry();
    });
  }

  retry() {
    this.attempt += 1;
    setTimeout(() => this.connect(), reconnectDelay(this.attempt));
  }
}
