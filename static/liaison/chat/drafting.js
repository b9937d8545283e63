// What the next message asks besides being read, chosen beside the composer: a reply (replies.js),
// mentions (mentions.js), an alert, an acknowledgement request (from everyone or one agency,
// within a chosen time) and its handling marking. Composer.submit() takes `asks(text)` into the
// outbox entry.
import { el } from "./dom.js";
import { wording } from "./wording.js";

let controlIds = 0;

function labelled(control, text, className) {
  controlIds += 1;
  control.id = control.id || `chat-draft-${controlIds}`;
  const label = el("label", className);
  label.htmlFor = control.id;
  label.append(control, el("span", "", text));
  return label;
}

export class Drafting {
  // markings: the exercise's markings, lowest first; agencies: [{code, name}].
  constructor({ composer, markings, defaultMarking, agencies, reply, mentions }) {
    this.reply = reply;
    this.mentions = mentions;
    this.defaultMarking = defaultMarking;
    const bar = el("div", "chat-draft-options");
    bar.id = "chat-draft-options";

    this.alert = el("input");
    this.alert.type = "checkbox";
    this.alert.className = "chat-draft-alert";
    bar.append(labelled(this.alert, wording.sendAsAlert, "chat-draft-toggle"));

    this.ask = el("input");
    this.ask.type = "checkbox";
    this.ask.className = "chat-draft-ack";
    bar.append(labelled(this.ask, wording.askAck, "chat-draft-toggle"));
    this.askFrom = el("select", "chat-draft-ack-from");
    this.askFrom.setAttribute("aria-label", wording.askAckFrom);
    this.askFrom.append(new Option(wording.everyone, ""));
    agencies.forEach((agency) => this.askFrom.append(new Option(agency.name, agency.code)));
    this.askWithin = el("select", "chat-draft-ack-within");
    this.askWithin.setAttribute("aria-label", wording.askAckWithin);
    wording.ackWithinChoices.forEach(([minutes, label]) =>
      this.askWithin.append(new Option(label, String(minutes))),
    );
    this.askOff();
    this.ask.addEventListener("change", () => {
      this.askFrom.disabled = !this.ask.checked;
      this.askWithin.disabled = !this.ask.checked;
    });
    bar.append(this.askFrom, this.askWithin);

    this.marking = el("select", "chat-draft-marking");
    this.marking.setAttribute("aria-label", wording.marking);
    this.marking.title = wording.marking;
    markings.forEach((name) => this.marking.append(new Option(name, name)));
    if (defaultMarking) this.marking.value = defaultMarking;
    this.marking.hidden = markings.length < 2;
    this.marking.addEventListener("change", () => this.showMarking());
    bar.append(this.marking);
    // After the text box: the keyboard reaches the message first, its options next.
    composer.querySelector(".chat-compose-row").after(bar);
    this.bar = bar;
    this.showMarking();
  }

  showMarking() {
    this.bar.dataset.marking = this.marking.value;
  }

  asks(text) {
    const asks = {};
    const replyTo = this.reply ? this.reply.value() : null;
    if (replyTo) asks.reply_to = replyTo;
    const mentions = this.mentions ? this.mentions.spec(text) : null;
    if (mentions) asks.mentions = mentions;
    if (this.alert.checked) asks.kind = "alert";
    if (this.ask.checked) {
      asks.ack = this.askFrom.value ? { agencies: [this.askFrom.value] } : {};
      asks.ack.due_minutes = Number(this.askWithin.value);
    }
    if (this.marking.value && this.marking.value !== this.defaultMarking) {
      asks.marking = this.marking.value;
    }
    return asks;
  }

  sent() {
    if (this.reply) this.reply.clear();
    if (this.mentions) this.mentions.sent();
    this.alert.checked = false;
    this.askOff();
  }

  // No acknowledgement asked: its choices (kept for the next request) disabled.
  askOff() {
    this.ask.checked = false;
    this.askFrom.disabled = true;
    this.askWithin.disabled = true;
  }

  disable() {
    this.bar.hidden = true;
  }
}
