// Every user-visible string of the room page, in one place for translation.
//
// The strings go through Django's JavaScript catalogue (`gettext`, `ngettext` from
// /jsi18n/, `makemessages -d djangojs` finds them here) when the page loads it, and stay as
// written otherwise. Templates use Django's named placeholders (`%(name)s`, the form
// `interpolate(fmt, obj, true)` expects), so a translated template drops in unchanged.

function gettext(text) {
  return typeof globalThis.gettext === "function" ? globalThis.gettext(text) : text;
}

function ngettext(singular, plural, count) {
  if (typeof globalThis.ngettext === "function") {
    return globalThis.ngettext(singular, plural, count);
  }
  return count === 1 ? singular : plural;
}

export function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (match, name) =>
    Object.hasOwn(values, name) ? String(values[name]) : match,
  );
}

// Answers the server gives in `error` frames, by code.
const ERRORS = {
  too_large: gettext("Too large"),
  forbidden: gettext("Not allowed"),
  room_closed: gettext("The exercise is closed: this room is read-only"),
  rate_limited: gettext("You are sending too fast; slow down a little"),
  invalid: gettext("Not accepted"),
  not_found: gettext("Not found"),
  unavailable: gettext("The service is busy; it will be retried"),
};

export const strings = Object.freeze({
  // connection status
  connecting: gettext("Connecting…"),
  reconnecting: gettext("Reconnecting…"),
  catchingUp: gettext("Catching up…"),
  connected: gettext("Connected"),
  connectedReadOnly: gettext("Connected · read-only"),
  offline: gettext("Offline · waiting for the network"),
  disconnected: gettext("Disconnected"),
  readOnly: gettext("Read-only"),
  retryingIn: (seconds) =>
    fill(gettext("Connection lost · retrying in %(seconds)s s"), { seconds }),

  // why the connection ended
  sessionEnded: gettext("Your session has ended. Sign in again to continue."),
  signInAgain: gettext("Sign in again"),
  accessEnded: gettext("You no longer have access to this room."),
  roomClosed: gettext("The exercise is closed: this room is read-only."),
  rateLimited: gettext("Too many messages in a short time. Reconnecting in a moment…"),
  frameTooLarge: gettext("The last message was too large for the connection and was not sent."),

  // server errors
  errorTitle: (code) => (Object.hasOwn(ERRORS, code) ? ERRORS[code] : gettext("Error")),
  errorWithDetail: (title, detail) => fill(gettext("%(title)s: %(detail)s"), { title, detail }),

  // the message list
  loadEarlier: gettext("Load earlier messages"),
  loading: gettext("Loading…"),
  roomStart: gettext("This is the beginning of the room."),
  roomEmpty: gettext("No messages yet. Say hello."),
  unknownSender: gettext("Unknown"),
  edited: gettext("edited"),
  sending: gettext("sending…"),
  notSent: gettext("not sent"),
  integrityFailed: gettext("This message failed its integrity check and is not shown."),
  cannotOpen: gettext("This message cannot be opened right now."),
  deleted: gettext("This message was deleted."),
  deletedForAuditors: gettext("Deleted (visible to auditors)"),
  edit: gettext("Edit"),
  delete: gettext("Delete"),
  retry: gettext("Retry"),
  discard: gettext("Discard"),

  // bearings in the message list
  today: gettext("Today"),
  yesterday: gettext("Yesterday"),
  newMessages: gettext("New messages"),

  // times: the reader's zone, the sender's, and UTC
  yourTime: (time, zone) => fill(gettext("%(time)s (your time, %(zone)s)"), { time, zone }),
  yourAndSendersTime: (time, zone) =>
    fill(gettext("%(time)s (your time and the sender's, %(zone)s)"), { time, zone }),
  sendersTime: (time, zone) =>
    fill(gettext("Sender's local time: %(time)s (%(zone)s)"), { time, zone }),
  utcTime: (time) => fill(gettext("UTC: %(time)s"), { time }),

  // the room header: each agency's clock, the exercise and the reader's place in it
  officeHours: gettext("office hours"),
  outOfHours: gettext("out of hours"),
  exerciseClosedBadge: gettext("Closed"),
  accessEndedBadge: gettext("No longer a member"),

  // attachments
  defaultFileName: gettext("file"),
  sha256Short: (hex) => fill(gettext("SHA-256 %(hex)s…"), { hex: hex.slice(0, 12) }),
  sha256Full: (hex) => fill(gettext("SHA-256 %(hex)s"), { hex }),
  cannotShareFiles: gettext("You cannot share files in this room."),
  fileTooLarge: (name, limit) =>
    fill(gettext("%(name)s is too large: files can be at most %(limit)s."), { name, limit }),
  uploadSessionEnded: gettext("Your session has ended; sign in again."),
  uploadFailed: (status) => fill(gettext("The upload failed (HTTP %(status)s)."), { status }),
  uploadProblem: (name, problem) => fill(gettext("%(name)s: %(problem)s"), { name, problem }),
  uploadInterrupted: gettext("The upload was interrupted (network error)."),
  uploading: (name) => fill(gettext("Uploading %(name)s"), { name }),
  uploadReady: gettext("ready to send"),
  uploadFailedShort: gettext("failed"),
  cancel: gettext("Cancel"),
  remove: gettext("Remove"),

  // editing and deleting
  editLabel: gettext("Edit message"),
  save: gettext("Save"),
  editEmpty: gettext("A message cannot be empty; use Delete to remove it."),
  editNotSent: gettext(
    "Not connected: the edit was not sent. Try again when the connection is back.",
  ),
  confirmDelete: gettext("Delete this message? Other members will see that it was deleted."),
  deleteNotSent: gettext(
    "Not connected: the message was not deleted. Try again when the connection is back.",
  ),

  // the composer
  waitForUploads: gettext("Wait for the uploads to finish, then send."),
  tooLong: (limit) =>
    fill(gettext("That message is too long: the limit is %(limit)s characters."), {
      limit: limit.toLocaleString(),
    }),

  // read out by screen readers when a message from someone else arrives
  announceMessage: (name, text) =>
    fill(gettext("New message from %(name)s: %(text)s"), { name, text }),
  announceWithoutText: (name) => fill(gettext("New message from %(name)s"), { name }),

  // people
  someone: gettext("Someone"),
  typingOne: (name) => fill(gettext("%(name)s is typing…"), { name }),
  typingTwo: (first, second) =>
    fill(gettext("%(first)s and %(second)s are typing…"), { first, second }),
  typingMany: gettext("Several people are typing…"),
  online: gettext("online"),
  offlinePerson: gettext("offline"),
  onlineCount: (count) =>
    fill(ngettext("· %(count)s online", "· %(count)s online", count), { count }),
  unreadCount: (count) =>
    fill(ngettext("%(count)s unread", "%(count)s unread", count), { count }),
});
