// Messages the user wrote that the server has not acknowledged yet.
//
// Kept in memory and in sessionStorage (a reload or a lost connection loses nothing) and resent
// oldest first with the same client_id, which the server uses to store each message once. No
// DOM: composer.js shows the entries.

// Unanswered sends at once, so a long outbox stays under the server's rate limit.
export const OUTBOX_WINDOW = 8;

export function outboxKey(userId, roomId) {
  return `liaison.outbox.${userId}.${roomId}`;
}

export function newClientId(source = globalThis.crypto) {
  if (source.randomUUID) return source.randomUUID();
  const bytes = source.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The frame that sends (or resends) an entry.
export function sendFrame(entry) {
  const frame = { type: "message.send", client_id: entry.client_id, body: entry.body };
  if (entry.attachments && entry.attachments.length) frame.attachments = entry.attachments;
  // What the message asks besides being read: reply_to, mentions, ack, kind, marking.
  if (entry.asks && typeof entry.asks === "object") Object.assign(frame, entry.asks);
  return frame;
}

export class Outbox {
  // storage: a Web Storage object (sessionStorage) or null to keep entries in memory only.
  constructor({ storage = null, key, window = OUTBOX_WINDOW, makeId = newClientId } = {}) {
    this.storage = storage;
    this.key = key;
    this.window = window;
    this.makeId = makeId;
    this.inFlight = new Set(); // client_ids sent on this connection and not yet answered
    this.entries = this.load();
  }

  load() {
    if (!this.storage) return [];
    try {
      const saved = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(saved) ? saved.filter((entry) => entry && entry.client_id) : [];
    } catch (error) {
      return [];
    }
  }

  save() {
    if (!this.storage) return;
    try {
      if (this.entries.length) this.storage.setItem(this.key, JSON.stringify(this.entries));
      else this.storage.removeItem(this.key);
    } catch (error) {
      // storage full or disabled: the in-memory outbox still resends while the page is open
    }
  }

  get size() {
    return this.entries.length;
  }

  find(clientId) {
    return this.entries.find((entry) => entry.client_id === clientId) || null;
  }

  add({
    body,
    attachments = [],
    attachmentMeta = [],
    asks = null,
    createdAt = new Date().toISOString(),
  }) {
    const entry = {
      client_id: this.makeId(),
      body,
      attachments,
      attachmentMeta,
      created_at: createdAt,
      failed: null,
    };
    if (asks && Object.keys(asks).length) entry.asks = asks;
    this.entries.push(entry);
    this.save();
    return entry;
  }

  // What may be sent now: oldest first, never a failed one or one already on its way, and no
  // more than the window allows. The caller reports each one it sends with sent().
  due() {
    const room = this.window - this.inFlight.size;
    if (room <= 0) return [];
    return this.entries
      .filter((entry) => !entry.failed && !this.inFlight.has(entry.client_id))
      .slice(0, room);
  }

  sent(clientId) {
    this.inFlight.add(clientId);
  }

  // The server answered (ack or error): the window has room again.
  answered(clientId) {
    this.inFlight.delete(clientId);
  }

  // The connection is gone: nothing is in flight, everything unacknowledged is due again.
  connectionLost() {
    this.inFlight.clear();
  }

  // Acknowledged or discarded: forget the entry. Returns it, or null if it was not held.
  remove(clientId) {
    const entry = this.find(clientId);
    if (!entry) return null;
    this.entries = this.entries.filter((item) => item !== entry);
    this.save();
    return entry;
  }

  // Refused for good: kept, marked, and not resent until the user retries.
  fail(clientId, reason) {
    const entry = this.find(clientId);
    if (!entry) return null;
    entry.failed = reason;
    this.save();
    return entry;
  }

  retry(clientId) {
    const entry = this.find(clientId);
    if (!entry) return null;
    entry.failed = null;
    this.save();
    return entry;
  }
}
