// The words of what a message asks of its readers (replies, mentions, acknowledgements, alerts,
// markings), of notifications, search and the image viewer: one place for translation, through
// Django's JavaScript catalogue like strings.js.
import { fill } from "./strings.js";

function gettext(text) {
  return typeof globalThis.gettext === "function" ? globalThis.gettext(text) : text;
}

function ngettext(singular, plural, count) {
  if (typeof globalThis.ngettext === "function") {
    return globalThis.ngettext(singular, plural, count);
  }
  return count === 1 ? singular : plural;
}

export const wording = Object.freeze({
  // replies
  reply: gettext("Reply"),
  replyKey: gettext("Reply (in the message list: arrow keys to choose a message, R to reply)"),
  replyingTo: (name) => fill(gettext("Replying to %(name)s"), { name }),
  cancelReply: gettext("Cancel reply"),
  inReplyTo: (name) => fill(gettext("In reply to %(name)s"), { name }),
  parentDeleted: gettext("The message replied to was deleted."),
  parentUnavailable: gettext("The message replied to cannot be shown."),
  jumpToParent: gettext("Show the message replied to"),
  someone: gettext("someone"),

  // reactions
  you: gettext("you"),
  reactionName: (emoji) =>
    ({ "\u2713": gettext("Seen"), "\u{1F44D}": gettext("Agreed"), "\u2757": gettext("Important") })[
      emoji
    ] || emoji,
  reactedBy: (reaction, names) => fill(gettext("%(reaction)s: %(names)s"), { reaction, names }),

  // mentions
  mentionRoom: gettext("everyone in this room"),
  mentionAgency: (name) => fill(gettext("everyone of %(name)s"), { name }),
  mentionsYou: gettext("mentions you"),
  suggestions: gettext("People to mention"),

  // acknowledgements
  askAck: gettext("Ask for acknowledgement"),
  askAckFrom: gettext("from"),
  askAckWithin: gettext("to acknowledge within"),
  // The choices of how long addressees have; the first is the server's default (60 minutes).
  ackWithinChoices: Object.freeze([
    [60, gettext("within 1 hour")],
    [15, gettext("within 15 minutes")],
    [240, gettext("within 4 hours")],
    [1440, gettext("within 1 day")],
  ]),
  everyone: gettext("everyone"),
  ackRequested: gettext("Acknowledgement requested"),
  ackRequestedFrom: (names) => fill(gettext("Acknowledgement requested from %(names)s"), { names }),
  ackDue: (time) => fill(gettext("due %(time)s"), { time }),
  ackOverdue: gettext("overdue"),
  acknowledge: gettext("Acknowledge"),
  acknowledgedBy: (name, time) =>
    fill(gettext("acknowledged by %(name)s %(time)s"), { name, time }),
  waitingFor: (names) => fill(gettext("waiting for %(names)s"), { names }),
  allAcknowledged: gettext("all acknowledged"),
  ackNotSent: gettext("Not connected: the acknowledgement was not sent. Try again."),

  // alerts and markings
  alert: gettext("Alert"),
  sendAsAlert: gettext("Send as an alert"),
  marking: gettext("Handling marking"),

  // people
  lastSeen: (time) => fill(gettext("last seen %(time)s"), { time }),

  // counts and notifications
  unreadMentions: (count) =>
    fill(ngettext("%(count)s mention", "%(count)s mentions", count), { count }),
  acksWaiting: (count) =>
    fill(ngettext("%(count)s to acknowledge", "%(count)s to acknowledge", count), { count }),
  enableNotifications: gettext("Turn on desktop notifications"),
  notificationsOn: gettext("Desktop notifications are on"),
  notificationsBlocked: gettext("Desktop notifications are blocked in this browser's settings."),
  mute: gettext("Mute this room"),
  unmute: gettext("Unmute this room"),
  notifyAll: gettext("Notify me of every message here"),
  notifyMentioned: (name, room) =>
    fill(gettext("%(name)s mentioned you in #%(room)s"), { name, room }),
  notifyAck: (name, room) =>
    fill(gettext("%(name)s asks you to acknowledge a message in #%(room)s"), { name, room }),
  notifyReply: (name, room) => fill(gettext("%(name)s replied to you in #%(room)s"), { name, room }),
  notifyAlert: (room) => fill(gettext("Alert in #%(room)s"), { room }),
  notifyMessage: (room) => fill(gettext("New message in #%(room)s"), { room }),

  // search
  searching: gettext("Searching…"),
  noResults: gettext("Nothing found."),
  moreResults: gettext("More results"),
  searchFailed: gettext("The search failed; try again."),

  // the image viewer
  zoomIn: gettext("Zoom in"),
  zoomOut: gettext("Zoom out"),
  actualSize: gettext("Actual size"),
  fitToScreen: gettext("Fit to screen"),
  close: gettext("Close"),
  download: gettext("Download"),
  imageViewer: gettext("Image viewer"),
  pastedImage: gettext("pasted-image"),
});
