// Mentions: `@` in the composer offers the room's members, their agencies and `@room`; what is
// picked is sent as ids (`mentions: {users, agencies, room}`), never worked out from the text
// later. Received messages show each mention highlighted, and one that reaches the reader is
// marked as such.
import { el } from "./dom.js";
import { wording } from "./wording.js";

const MAX_SUGGESTIONS = 8;
const ROOM = "room";

// The exercise's members from the people list (#chat-people li[data-person]).
export function readMembers(list, userId) {
  const members = [];
  if (!list) return members;
  list.querySelectorAll("li[data-person]").forEach((li) => {
    const id = Number(li.dataset.person);
    if (!Number.isFinite(id) || id === userId) return;
    members.push({
      id,
      name: li.dataset.name || "",
      agency: li.dataset.agency || "",
      agencyCode: li.dataset.agencyCode || "",
    });
  });
  return members;
}

// Everything that can be mentioned: people, agencies (by name), and the whole room.
export function candidates(members) {
  const people = members.map((m) => ({ kind: "user", id: m.id, label: m.name, hint: m.agency }));
  const agencies = new Map();
  members.forEach((m) => {
    if (m.agencyCode && !agencies.has(m.agencyCode)) {
      agencies.set(m.agencyCode, {
        kind: "agency",
        id: m.agencyCode,
        label: m.agency || m.agencyCode,
        hint: wording.mentionAgency(m.agency || m.agencyCode),
      });
    }
  });
  return [
    ...people,
    ...agencies.values(),
    { kind: ROOM, id: ROOM, label: ROOM, hint: wording.mentionRoom },
  ];
}

// The `@word` being typed just before the caret, or null.
export function activeToken(text, caret) {
  const before = text.slice(0, caret);
  const at = before.lastIndexOf("@");
  if (at < 0 || (at > 0 && !/\s/.test(before[at - 1]))) return null;
  const token = before.slice(at + 1);
  if (token.length > 40 || /[\n@]/.test(token) || /\s\s/.test(token)) return null;
  return { start: at, query: token };
}

export function matching(all, query) {
  const q = query.trim().toLowerCase();
  return all
    .filter((c) => {
      const label = c.label.toLowerCase();
      return !q || label.startsWith(q) || label.split(/\s+/).some((word) => word.startsWith(q));
    })
    .slice(0, MAX_SUGGESTIONS);
}

// The `mentions` field for a text: what was picked and is still in the text, and `@room`.
export function mentionSpec(text, picked) {
  const users = [];
  const agencies = [];
  let room = /(^|\s)@room\b/.test(text);
  for (const choice of picked) {
    if (!text.includes(`@${choice.label}`)) continue;
    if (choice.kind === "user" && !users.includes(choice.id)) users.push(choice.id);
    if (choice.kind === "agency" && !agencies.includes(choice.id)) agencies.push(choice.id);
    if (choice.kind === ROOM) room = true;
  }
  if (!users.length && !agencies.length && !room) return null;
  return { users, agencies, room };
}

export class MentionPicker {
  constructor({ input, members }) {
    this.input = input;
    this.all = candidates(members);
    this.picked = [];
    this.shown = [];
    this.active = 0;
    this.token = null;
    this.box = el("ul", "mention-suggestions");
    this.box.id = "chat-mention-suggestions";
    this.box.setAttribute("role", "listbox");
    this.box.setAttribute("aria-label", wording.suggestions);
    this.box.hidden = true;
    input.setAttribute("aria-controls", this.box.id);
    input.setAttribute("aria-autocomplete", "list");
    input.parentElement.append(this.box);
  }

  start() {
    this.input.addEventListener("input", () => this.update());
    this.input.addEventListener("click", () => this.update());
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    // Capture: the picker answers Enter and the arrows before the composer sends.
    this.input.addEventListener("keydown", (event) => this.key(event), true);
  }

  update() {
    const token = activeToken(this.input.value, this.input.selectionStart ?? 0);
    this.token = token;
    this.shown = token ? matching(this.all, token.query) : [];
    this.active = 0;
    this.render();
  }

  render() {
    this.box.replaceChildren();
    this.box.hidden = this.shown.length === 0;
    this.input.setAttribute("aria-expanded", String(!this.box.hidden));
    this.shown.forEach((choice, index) => {
      const item = el("li", "mention-suggestion");
      item.id = `mention-option-${index}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(index === this.active));
      item.append(el("span", "mention-label", `@${choice.label}`));
      if (choice.hint) item.append(el("span", "mention-hint", choice.hint));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.choose(choice);
      });
      this.box.append(item);
    });
    if (!this.box.hidden) this.input.setAttribute("aria-activedescendant", `mention-option-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  key(event) {
    if (this.box.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.shown.length) % this.shown.length;
      this.render();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
      this.choose(this.shown[this.active]);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  choose(choice) {
    if (!choice || !this.token) return;
    const value = this.input.value;
    const caret = this.input.selectionStart ?? value.length;
    const inserted = `@${choice.label} `;
    this.input.value = value.slice(0, this.token.start) + inserted + value.slice(caret);
    const at = this.token.start + inserted.length;
    this.input.setSelectionRange(at, at);
    this.picked.push(choice);
    this.close();
    this.input.focus();
  }

  close() {
    this.shown = [];
    this.token = null;
    this.render();
  }

  spec(text) {
    return mentionSpec(text, this.picked);
  }

  sent() {
    this.picked = [];
  }
}

// Highlight "@Name", "@Agency" and "@room" in a rendered body, and mark a message that
// mentions the reader. names: user id -> display name; agencies: code -> name.
export function markMentions(li, message, { userId, names, agencies }) {
  const mentions = message.mentions;
  if (!mentions || typeof mentions !== "object") return;
  if (Array.isArray(mentions.all) && mentions.all.includes(userId)) {
    li.classList.add("mentions-me");
    li.querySelector(".msg-meta")?.append(el("span", "badge mention-badge", wording.mentionsYou));
  }
  const labels = [];
  (mentions.users || []).forEach((id) => names.get(id) && labels.push(`@${names.get(id)}`));
  (mentions.agencies || []).forEach((code) => labels.push(`@${agencies.get(code) || code}`));
  if (mentions.room) labels.push("@room");
  const body = li.querySelector(".msg-body");
  if (body && labels.length) highlight(body, labels);
}

function highlight(root, labels) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  const sorted = [...labels].sort((a, b) => b.length - a.length);
  for (const node of nodes) {
    const text = node.nodeValue;
    const parts = [];
    let index = 0;
    let last = 0;
    while (index < text.length) {
      const label = sorted.find((l) => text.startsWith(l, index));
      if (label) {
        if (index > last) parts.push(document.createTextNode(text.slice(last, index)));
        parts.push(el("mark", "mention", label));
        index += label.length;
        last = index;
      } else {
        index += 1;
      }
    }
    if (!parts.length) continue;
    if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
    node.replaceWith(...parts);
  }
}
