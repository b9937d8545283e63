// Desktop notifications: asked for from a clear button, never on page load. Shown for
// mentions, acknowledgement requests, direct replies and alerts, and for every message of a
// room the reader chose so; never for a muted room, never for the reader's own messages, and
// not for the room the reader is looking at. They name who and where, not the text.
import { el } from "./dom.js";
import { wording } from "./wording.js";

export function notificationText(frame, roomTitle) {
  const name = frame.sender && frame.sender.display_name ? frame.sender.display_name : "";
  switch (frame.reason) {
    case "mention":
      return wording.notifyMentioned(name, roomTitle);
    case "ack":
      return wording.notifyAck(name, roomTitle);
    case "reply":
      return wording.notifyReply(name, roomTitle);
    default:
      return frame.kind === "alert" ? wording.notifyAlert(roomTitle) : wording.notifyMessage(roomTitle);
  }
}

export class Notifier {
  // rooms(id) -> {title, muted, notify_all} or null; currentRoom: the room on screen, or null.
  constructor({ userId, tally, titles, currentRoom = null, host = null }) {
    this.userId = userId;
    this.tally = tally;
    this.titles = titles;
    this.currentRoom = currentRoom;
    this.shown = new Set();
    this.button = null;
    if (host) this.offer(host);
  }

  supported() {
    return typeof window.Notification === "function";
  }

  offer(host) {
    if (!this.supported()) return;
    const button = el("button", "link notify-toggle");
    button.type = "button";
    button.id = "notify-toggle";
    host.append(button);
    this.button = button;
    button.addEventListener("click", async () => {
      if (Notification.permission === "default") await Notification.requestPermission();
      this.label();
    });
    this.label();
  }

  label() {
    if (!this.button) return;
    const permission = Notification.permission;
    this.button.textContent =
      permission === "granted"
        ? wording.notificationsOn
        : permission === "denied"
          ? wording.notificationsBlocked
          : wording.enableNotifications;
    this.button.disabled = permission !== "default";
  }

  // An attention frame: should it become a notification?
  consider(frame) {
    if (!this.supported() || Notification.permission !== "granted") return;
    if (frame.type !== "notice" && frame.type !== "activity") return;
    if (frame.sender === this.userId || (frame.sender && frame.sender.id === this.userId)) return;
    const row = this.tally.rooms.get(frame.room);
    if (!row || row.muted || frame.seq <= row.read_seq) return;
    if (frame.room === this.currentRoom && document.visibilityState === "visible") return;
    if (frame.type === "activity" && frame.kind !== "alert" && !row.notify_all) return;
    const key = `${frame.room}:${frame.seq}`;
    if (this.shown.has(key)) return;
    this.shown.add(key);
    const title = frame.room_title || this.titles(frame.room) || "";
    const notification = new Notification(notificationText(frame, title), {
      tag: key,
      body: frame.exercise_code || "",
    });
    notification.addEventListener("click", () => {
      window.focus();
      location.assign(`/rooms/${frame.room}/#msg-${frame.seq}`);
    });
  }
}

// The room page's own settings: mute, and notify on every message.
export class RoomSettings {
  constructor({ host, roomId, csrfToken, tally, onChange }) {
    this.roomId = roomId;
    this.csrfToken = csrfToken;
    this.tally = tally;
    this.onChange = onChange;
    this.mute = el("button", "link room-mute");
    this.mute.type = "button";
    this.mute.id = "room-mute";
    this.all = el("input");
    this.all.type = "checkbox";
    this.all.id = "room-notify-all";
    const label = el("label", "room-notify-all");
    label.htmlFor = this.all.id;
    label.append(this.all, el("span", "", wording.notifyAll));
    host.append(this.mute, label);
    this.mute.addEventListener("click", () => this.save({ muted: !this.row().muted }));
    this.all.addEventListener("change", () => this.save({ notify_all: this.all.checked }));
    this.paint();
  }

  row() {
    return this.tally.rooms.get(this.roomId) || { muted: false, notify_all: false };
  }

  paint() {
    const row = this.row();
    this.mute.textContent = row.muted ? wording.unmute : wording.mute;
    this.mute.setAttribute("aria-pressed", String(Boolean(row.muted)));
    this.all.checked = Boolean(row.notify_all);
  }

  async save(change) {
    try {
      const response = await fetch(`/api/v1/rooms/${this.roomId}/preferences`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
        body: JSON.stringify(change),
      });
      if (!response.ok) return;
      const stored = await response.json();
      const row = this.tally.rooms.get(this.roomId);
      if (row) Object.assign(row, { muted: stored.muted, notify_all: stored.notify_all });
    } catch (error) {
      return;
    }
    this.paint();
    this.onChange();
  }
}
