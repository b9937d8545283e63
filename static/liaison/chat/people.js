// The people of the exercise: who is online, who is typing, and what the page knows of each
// sender (name, agency, time zone).
import { strings } from "./strings.js";

const TYPING_SHOW_MS = 5000;

export function agencyName(sender) {
  const agency = sender.agency;
  if (!agency) return "";
  if (typeof agency === "string") return agency;
  return agency.name || agency.code || "";
}

export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return strings.typingOne(names[0]);
  if (names.length === 2) return strings.typingTwo(names[0], names[1]);
  return strings.typingMany;
}

// Presence frames list user ids (or user objects).
export function onlineIds(entries) {
  return new Set(entries.map((id) => (typeof id === "object" && id ? id.id : id)));
}

// Who is online after a presence frame: the full list (`online`, sent when the socket joins),
// or a change to the list held (`joined`, `left`).
export function onlineAfter(current, frame) {
  if (Array.isArray(frame.online)) return onlineIds(frame.online);
  const next = new Set(current);
  if (Array.isArray(frame.joined)) onlineIds(frame.joined).forEach((id) => next.add(id));
  if (Array.isArray(frame.left)) onlineIds(frame.left).forEach((id) => next.delete(id));
  return next;
}

export class People {
  constructor({ list, onlineCount, typing, userId }) {
    this.list = list; // the #chat-people list, or null
    this.onlineCount = onlineCount;
    this.typing = typing;
    this.userId = userId;
    this.known = this.readList(); // user id -> {name, agency, timeZone}
    this.typers = new Map(); // user id -> {name, timer}
    this.online = new Set();
  }

  readList() {
    const people = new Map();
    if (!this.list) return people;
    this.list.querySelectorAll("li[data-person]").forEach((li) => {
      people.set(Number(li.dataset.person), {
        name: li.dataset.name,
        agency: li.dataset.agency,
        timeZone: li.dataset.timeZone,
      });
    });
    return people;
  }

  remember(sender) {
    if (!this.known.has(sender.id) && sender.display_name) {
      this.known.set(sender.id, {
        name: sender.display_name,
        agency: agencyName(sender),
        timeZone: sender.time_zone || "",
      });
    }
  }

  timeZoneOf(sender) {
    if (typeof sender.time_zone === "string" && sender.time_zone) return sender.time_zone;
    const known = this.known.get(sender.id);
    return known && known.timeZone ? known.timeZone : null;
  }

  presence(frame) {
    this.showOnline(onlineAfter(this.online, frame));
  }

  setOnline(entries) {
    this.showOnline(onlineIds(entries));
  }

  showOnline(ids) {
    this.online = ids;
    if (!this.list) return;
    let count = 0;
    this.list.querySelectorAll("li[data-person]").forEach((li) => {
      const online = this.online.has(Number(li.dataset.person));
      li.classList.toggle("online", online);
      const label = li.querySelector(".presence-label");
      if (label) label.textContent = online ? strings.online : strings.offlinePerson;
      if (online) count += 1;
    });
    this.onlineCount.textContent = count ? strings.onlineCount(count) : "";
  }

  // Someone else is typing: shown for a few seconds after each typing frame.
  onTyping(user) {
    const id = typeof user === "object" && user !== null ? user.id : user;
    if (id == null || id === this.userId) return;
    const known = this.known.get(id);
    const name =
      (typeof user === "object" && user !== null && user.display_name) ||
      (known && known.name) ||
      strings.someone;
    const current = this.typers.get(id);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      this.typers.delete(id);
      this.renderTypers();
    }, TYPING_SHOW_MS);
    this.typers.set(id, { name, timer });
    this.renderTypers();
  }

  clearTypers() {
    this.typers.forEach((typer) => clearTimeout(typer.timer));
    this.typers.clear();
    this.renderTypers();
  }

  renderTypers() {
    this.typing.textContent = typingText(Array.from(this.typers.values(), (t) => t.name));
  }
}
