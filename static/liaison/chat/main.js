// Liaison room page: the live message list, composer, outbox and attachments.
//
// Native ES modules served as static files, no build step (the CSP allows no inline script;
// the settings come from the data-* attributes of #chat). The server is the record: every
// message carries a per-room seq, and the page asks `sync {after_seq}` for anything it missed
// (sync.js). Messages the user wrote wait in an outbox until acknowledged (outbox.js). User text
// only ever reaches the page through textContent or DOM-built links (render.js).
import { initialAfterSeq, makeDays } from "./bearings.js";
import { WallClocks } from "./clocks.js";
import { Announcer } from "./announce.js";
import { Composer } from "./composer.js";
import { Conversation } from "./conversation.js";
import { readConfig } from "./config.js";
import { beginEdit, deleteMessage } from "./editing.js";
import { makeClock } from "./format.js";
import { Outbox, outboxKey } from "./outbox.js";
import { People } from "./people.js";
import { MessageList } from "./render.js";
import { SeqTracker } from "./sequence.js";
import { RoomSocket } from "./socket.js";
import { StatusLine } from "./status.js";
import { strings } from "./strings.js";
import { Catchup } from "./sync.js";
import { FirstUnread, ReadMarker } from "./unread.js";
import { Uploads } from "./uploads.js";

const root = document.getElementById("chat");
if (root) start(root);

function elements() {
  const $ = (id) => document.getElementById(id);
  return {
    status: $("chat-status"),
    banner: $("chat-banner"),
    log: $("chat-log"),
    list: $("chat-messages"),
    outbox: $("chat-outbox"),
    earlier: $("chat-load-earlier"),
    startNote: $("chat-start"),
    typing: $("chat-typing"),
    notice: $("chat-notice"),
    composer: $("chat-composer"),
    readonly: $("chat-readonly"),
    input: $("chat-input"),
    send: $("chat-send"),
    file: $("chat-file"),
    uploads: $("chat-uploads"),
    dropHint: $("chat-drop-hint"),
    people: $("chat-people"),
    onlineCount: $("chat-online-count"),
    announcer: $("chat-announcer"),
    exerciseBadge: $("chat-exercise-status"),
    roleBadge: $("chat-role"),
    jumpUnread: $("chat-jump-unread"),
    welcome: $("chat-welcome"),
    welcomeClose: $("chat-welcome-close"),
  };
}

function sessionStore() {
  try {
    return window.sessionStorage;
  } catch (error) {
    return null; // storage disabled: the outbox lives in memory only
  }
}

function start(root) {
  const cfg = readConfig(root.dataset);
  const ui = elements();
  const access = { canPost: cfg.canPost };
  const status = new StatusLine(ui);
  const notice = (text) => status.notice(text);
  const announcer = new Announcer({ node: ui.announcer, userId: cfg.userId });
  const clock = makeClock(cfg);
  const days = makeDays(cfg);
  const people = new People({
    list: ui.people,
    onlineCount: ui.onlineCount,
    typing: ui.typing,
    userId: cfg.userId,
  });
  const seqs = new SeqTracker(initialAfterSeq(cfg));
  const outbox = new Outbox({ storage: sessionStore(), key: outboxKey(cfg.userId, cfg.roomId) });

  const socket = new RoomSocket({
    path: cfg.wsPath,
    loginUrl: cfg.loginUrl,
    status,
    handlers: { open: onOpen, frame: onFrame, lost: onLost, readOnly: (r) => composer.disable(r) },
  });
  const send = (frame) => socket.send(frame);
  const conversation = new Conversation({ cfg, ui, clock, access, send, notice });

  const list = new MessageList({
    ui,
    cfg,
    clock,
    days,
    people,
    seqs,
    access,
    unreadFrom: cfg.lastReadSeq < cfg.lastSeq ? cfg.lastReadSeq + 1 : null,
    onEdit: (seq) => beginEdit(list.get(seq), seq, { maxChars: cfg.maxChars, send, notice }),
    onDelete: (seq) => deleteMessage(seq, { send, notice }),
    decorate: (li, message) => conversation.decorate(li, message),
  });
  const catchup = new Catchup({
    seqs,
    list,
    send,
    pageSize: cfg.pageSize,
    caughtUp() {
      if (status.state === "syncing") {
        status.set("online", access.canPost ? strings.connected : strings.connectedReadOnly);
      }
    },
  });
  const firstUnread = new FirstUnread({
    button: ui.jumpUnread,
    list,
    log: ui.log,
    seqs,
    loadEarlier: () => catchup.loadEarlier(),
  });
  const reads = new ReadMarker({ roomId: cfg.roomId, seqs, list, log: ui.log, send });
  const dropArea = root.querySelector(".chat-main");
  const uploads = new Uploads({ cfg, ui, dropArea, access, notice });
  const composer = new Composer({
    cfg,
    ui,
    clock,
    outbox,
    list,
    uploads,
    access,
    send,
    notice,
    drafting: conversation.drafting,
  });
  conversation.attach({ list, seqs, loadEarlier: () => catchup.loadEarlier(), uploads });

  function onOpen() {
    catchup.connected();
    composer.flush();
  }

  function onLost() {
    catchup.lost();
    outbox.connectionLost();
    people.clearTypers();
    people.setOnline([]);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "message.new":
        if (frame.message && typeof frame.message.seq === "number") {
          catchup.received(frame.message);
          announcer.message(frame.message);
          conversation.stoppedTyping(people, frame.message);
          list.arrivedLive(frame.message);
          reads.schedule();
        }
        break;
      case "message.updated":
        if (frame.message) list.upsert(frame.message);
        break;
      case "message.ack":
        composer.acknowledged(frame.client_id, frame.seq);
        break;
      case "sync.batch":
        (frame.messages || []).forEach((message) => list.upsert(message));
        break;
      case "sync.done":
        catchup.syncDone(frame.last_seq);
        reads.schedule();
        break;
      case "history.batch":
        catchup.history(frame.messages || []);
        break;
      case "presence":
        people.presence(frame);
        conversation.presence(frame, people);
        break;
      case "ack.updated":
      case "reaction.updated":
        conversation.onFrame(frame);
        break;
      case "typing":
        people.onTyping(frame.user);
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // pong, and read receipts of others (not shown yet)
    }
  }

  function onError(frame) {
    const code = typeof frame.code === "string" ? frame.code : "invalid";
    const detail = typeof frame.detail === "string" ? frame.detail : "";
    const title = strings.errorTitle(code);
    const text = detail && detail !== title ? strings.errorWithDetail(title, detail) : title;
    if (code === "room_closed") {
      composer.disable(strings.roomClosed);
      status.exerciseClosed();
    }
    const clientId = typeof frame.client_id === "string" ? frame.client_id : null;
    if (clientId === null) catchup.refused();
    if (clientId !== null) {
      const retryLater = code === "rate_limited" || code === "unavailable";
      const retryAfter = typeof frame.retry_after === "number" ? frame.retry_after : null;
      composer.refused(clientId, text, retryLater, retryAfter);
      // A busy server's refusal is routine back-pressure: the outbox resends it quietly.
      if (retryAfter !== null) return;
    }
    notice(text);
  }

  ui.earlier.addEventListener("click", () => catchup.loadEarlier());
  if (ui.welcomeClose) ui.welcomeClose.addEventListener("click", () => ui.welcome.remove());
  new WallClocks({
    root,
    hours: { opens: cfg.officeOpens, closes: cfg.officeCloses },
  }).start();
  list.watchAway();
  firstUnread.start();
  uploads.start();
  composer.start();
  list.updateEarlier();
  conversation.startAttention();
  conversation.revealFromAddress();
  socket.start();
}
