// Editing and deleting one's own messages. The server answers with message.updated for
// everyone in the room; the page changes nothing until then.
import { el } from "./dom.js";
import { strings } from "./strings.js";

// entry: {data, el} of a shown message; send(frame) -> bool; notice(text).
export function beginEdit(entry, seq, { maxChars, send, notice }) {
  if (!entry || entry.el.querySelector(".msg-editor")) return;
  const body = entry.el.querySelector(".msg-body");
  const editor = el("form", "msg-editor");
  const area = document.createElement("textarea");
  area.value = entry.data.body || "";
  area.maxLength = maxChars;
  area.rows = 2;
  area.setAttribute("aria-label", strings.editLabel);
  const save = el("button", "primary", strings.save);
  save.type = "submit";
  const cancel = el("button", "", strings.cancel);
  cancel.type = "button";
  editor.append(area, save, cancel);
  body.hidden = true;
  body.after(editor);
  area.focus();
  const finish = () => {
    editor.remove();
    body.hidden = false;
  };
  cancel.addEventListener("click", finish);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") finish();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text) {
      notice(strings.editEmpty);
      return;
    }
    if (text === (entry.data.body || "")) {
      finish();
      return;
    }
    if (!send({ type: "message.edit", seq, body: text })) {
      notice(strings.editNotSent);
      return;
    }
    finish();
  });
}

export function deleteMessage(seq, { send, notice }) {
  if (!window.confirm(strings.confirmDelete)) return;
  if (!send({ type: "message.delete", seq })) notice(strings.deleteNotSent);
}
