// Liaison room page: the live message list, composer, outbox and attachments.
//
// Dependency-free ES module, served as a static file (the CSP allows no inline script). The
// server is the record: every message carries a per-room seq, the client keeps the highest
// contiguous seq it holds and asks `sync {after_seq}` for anything it missed (after a reconnect
// or when a live message jumps ahead). Messages the user wrote wait in an outbox (memory and
// sessionStorage) until the server acknowledges them, and are resent with the same client_id.
// User text only ever reaches the page through textContent or DOM-built links.

const root = document.getElementById("chat");
if (root) {
  start(root);
}

function start(root) {
  const cfg = readConfig(root);
  const $ = (id) => document.getElementById(id);
  const ui = {
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
  };

  const TYPING_SEND_EVERY_MS = 3000;
  const TYPING_SHOW_MS = 5000;
  const PING_EVERY_MS = 20000;
  const PONG_WITHIN_MS = 10000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const RATE_LIMIT_BACKOFF_MS = 15000;
  const OUTBOX_WINDOW = 8; // unanswered sends at once, so a long outbox stays under the rate limit

  const state = {
    socket: null,
    connected: false,
    everConnected: false,
    stopped: false, // a close code that forbids reconnecting (4401, 4403, 4404)
    readOnlyRetried: false, // after 4409 the socket may come back once, to read
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    pongTimer: null,
    messages: new Map(), // seq -> {data, el}
    lastSeq: Math.max(0, cfg.lastSeq - cfg.pageSize), // highest contiguous seq held
    minSeq: null, // lowest seq held
    syncing: false,
    resyncWanted: false,
    historyPending: false,
    historyQueue: [], // what each history request on this socket was for: "earlier" | "refresh"
    caughtUp: false, // a sync has completed at least once
    outbox: loadOutbox(),
    inFlight: new Set(), // client_ids sent on this socket and not yet answered
    syncFrom: 0,
    readSent: 0,
    readTimer: null,
    typingSentAt: 0,
    typers: new Map(), // user id -> {name, timer}
    online: new Set(),
    canPost: cfg.canPost,
    uploads: [], // {key, file, state, progress, attachment, el, xhr}
    people: readPeople(),
  };

  const clock = makeClock(cfg);

  // --- the socket ------------------------------------------------------------------------

  function connect() {
    if (state.stopped || state.socket) return;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (navigator.onLine === false) {
      setStatus("offline", "Offline · waiting for the network");
      return;
    }
    setStatus("connecting", state.everConnected ? "Reconnecting…" : "Connecting…");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${cfg.wsPath}`);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.addEventListener("open", () => onOpen(socket));
    socket.addEventListener("message", (event) => onFrame(socket, event));
    socket.addEventListener("close", (event) => onClose(socket, event));
  }

  function onOpen(socket) {
    if (socket !== state.socket) return;
    state.connected = true;
    state.everConnected = true;
    state.attempt = 0;
    setStatus("syncing", "Catching up…");
    state.syncing = false;
    state.historyQueue = [];
    requestSync();
    if (state.caughtUp) {
      // sync replays by seq only; the newest page again brings edits and deletions missed.
      if (send({ type: "history", limit: cfg.pageSize })) state.historyQueue.push("refresh");
    }
    flushOutbox();
    startHeartbeat();
  }

  function onClose(socket, event) {
    if (socket !== state.socket) return;
    state.socket = null;
    state.connected = false;
    state.syncing = false;
    state.inFlight.clear();
    historyDone();
    stopHeartbeat();
    clearTypers();
    setOnline([]);
    const code = event.code;
    if (code === 4401) {
      stop("Your session has ended. Sign in again to continue.", { login: true });
    } else if (code === 4403) {
      stop("You no longer have access to this room.");
    } else if (code === 4404) {
      stop("This room does not exist or is no longer available to you.");
    } else if (code === 4409) {
      const reason = "The exercise is closed: this room is read-only.";
      disableComposer(reason);
      showBanner(reason, null);
      if (state.readOnlyRetried) {
        stop(reason, { readOnly: true });
      } else {
        state.readOnlyRetried = true;
        scheduleReconnect();
      }
    } else if (code === 4429) {
      showNotice("Too many messages in a short time. Reconnecting in a moment…");
      scheduleReconnect(RATE_LIMIT_BACKOFF_MS);
    } else if (code === 1009) {
      showNotice("The last message was too large for the connection and was not sent.");
      scheduleReconnect();
    } else {
      scheduleReconnect();
    }
  }

  function stop(text, { login = false, readOnly = false } = {}) {
    state.stopped = true;
    clearTimeout(state.reconnectTimer);
    setStatus(readOnly ? "readonly" : "closed", readOnly ? "Read-only" : "Disconnected");
    showBanner(text, login ? cfg.loginUrl : null);
    if (!readOnly) disableComposer(text);
  }

  function scheduleReconnect(minimumMs = 0) {
    if (state.stopped) return;
    clearTimeout(state.reconnectTimer);
    // Exponential backoff with full jitter, so a server restart is not met by a stampede.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    const delay = Math.max(minimumMs, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
    state.attempt += 1;
    if (navigator.onLine === false) {
      setStatus("offline", "Offline · waiting for the network");
      return; // the "online" event reconnects
    }
    setStatus("reconnecting", `Connection lost · retrying in ${Math.ceil(delay / 1000)} s`);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function send(frame) {
    if (!state.connected || !state.socket || state.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function dropSocket() {
    // Close a socket the network has silently lost; onClose schedules the reconnect.
    const socket = state.socket;
    if (!socket) return;
    try {
      socket.close(4000, "client reconnect");
    } catch (error) {
      // already closing
    }
    onClose(socket, { code: 1006 });
  }

  function startHeartbeat() {
    stopHeartbeat();
    state.pingTimer = setInterval(() => {
      if (!send({ type: "ping" })) return;
      clearTimeout(state.pongTimer);
      state.pongTimer = setTimeout(dropSocket, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  function stopHeartbeat() {
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
  }

  window.addEventListener("offline", () => {
    setStatus("offline", "Offline · waiting for the network");
    dropSocket();
  });
  window.addEventListener("online", () => {
    state.attempt = 0;
    if (!state.socket) connect();
  });

  // --- frames from the server --------------------------------------------------------------

  function onFrame(socket, event) {
    if (socket !== state.socket) return;
    clearTimeout(state.pongTimer); // any frame proves the connection is alive
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "message.new":
        onMessageNew(frame.message);
        break;
      case "message.updated":
        if (frame.message) upsertMessage(frame.message);
        break;
      case "message.ack":
        onAck(frame.client_id, frame.seq);
        break;
      case "sync.batch":
        (frame.messages || []).forEach(upsertMessage);
        break;
      case "sync.done":
        onSyncDone(frame.last_seq);
        break;
      case "history.batch":
        onHistory(frame.messages || []);
        break;
      case "presence":
        setOnline(frame.online || []);
        break;
      case "typing":
        onTyping(frame.user);
        break;
      case "read":
        break; // read receipts of others are not shown yet
      case "pong":
        break;
      case "error":
        onError(frame);
        break;
      default:
        break;
    }
  }

  function onMessageNew(message) {
    if (!message || typeof message.seq !== "number") return;
    const jumped = message.seq > state.lastSeq + 1;
    upsertMessage(message);
    if (jumped) requestSync(); // the layer dropped something: fetch the gap from the record
    scheduleRead();
  }

  function requestSync() {
    if (state.syncing) {
      state.resyncWanted = true;
      return;
    }
    if (send({ type: "sync", after_seq: state.lastSeq })) {
      state.syncing = true;
      state.resyncWanted = false;
      state.syncFrom = state.lastSeq;
    }
  }

  function onSyncDone(lastSeq) {
    state.syncing = false;
    state.caughtUp = true;
    if (ui.status.dataset.state === "syncing") {
      setStatus("online", state.canPost ? "Connected" : "Connected · read-only");
    }
    const serverLast = Number(lastSeq);
    const progressed = state.lastSeq > state.syncFrom;
    const behind = Number.isFinite(serverLast) && serverLast > state.lastSeq;
    // Ask again for what is still missing, but never loop on a sync that brought nothing.
    if (state.resyncWanted || (behind && progressed)) requestSync();
    updateEarlier();
    scheduleRead();
  }

  function loadEarlier() {
    if (state.historyPending || state.minSeq === null || state.minSeq <= 1) return;
    if (send({ type: "history", before_seq: state.minSeq, limit: cfg.pageSize })) {
      state.historyQueue.push("earlier");
      state.historyPending = true;
      ui.earlier.disabled = true;
      ui.earlier.textContent = "Loading…";
    }
  }

  function historyDone() {
    state.historyPending = false;
    ui.earlier.disabled = false;
    ui.earlier.textContent = "Load earlier messages";
  }

  function onHistory(messages) {
    if (state.historyQueue.shift() === "refresh") {
      messages.forEach((message) => upsertMessage(message));
      return;
    }
    historyDone();
    const before = ui.log.scrollHeight - ui.log.scrollTop;
    messages.forEach((message) => upsertMessage(message));
    ui.log.scrollTop = ui.log.scrollHeight - before;
    updateEarlier();
  }

  function updateEarlier() {
    const more = state.minSeq !== null && state.minSeq > 1;
    const empty = state.messages.size === 0 && cfg.lastSeq === 0;
    ui.earlier.hidden = !more;
    ui.startNote.hidden = more || !(state.minSeq === 1 || empty);
    if (empty) ui.startNote.textContent = "No messages yet. Say hello.";
    else ui.startNote.textContent = "This is the beginning of the room.";
  }

  function onAck(clientId, seq) {
    if (typeof clientId !== "string") return;
    const item = state.outbox.find((entry) => entry.client_id === clientId);
    removeFromOutbox(clientId);
    state.inFlight.delete(clientId);
    const pending = ui.outbox.querySelector(`[data-client-id="${cssEscape(clientId)}"]`);
    if (typeof seq === "number") {
      if (!state.messages.has(seq) && item) {
        // Shown as sent at once; the broadcast (or the next sync) brings the stored copy.
        upsertMessage(
          {
            seq,
            body: item.body,
            kind: "text",
            sender: { id: cfg.userId, display_name: cfg.userName, agency: cfg.userAgency },
            created_at: item.created_at,
            edited_at: null,
            deleted: false,
            attachments: item.attachmentMeta || [],
            provisional: true,
          },
          { clientId },
        );
      } else if (state.messages.has(seq)) {
        state.messages.get(seq).el.dataset.clientId = clientId;
      }
    }
    if (pending) pending.remove();
    flushOutbox();
  }

  const ERROR_TEXT = {
    too_large: "Too large",
    forbidden: "Not allowed",
    room_closed: "The exercise is closed: this room is read-only",
    rate_limited: "You are sending too fast; slow down a little",
    invalid: "Not accepted",
    not_found: "Not found",
    unavailable: "The service is busy; it will be retried",
  };

  function onError(frame) {
    const code = typeof frame.code === "string" ? frame.code : "invalid";
    const detail = typeof frame.detail === "string" ? frame.detail : "";
    const title = ERROR_TEXT[code] || "Error";
    const text = detail && detail !== title ? `${title}: ${detail}` : title;
    if (code === "room_closed") disableComposer(ERROR_TEXT.room_closed + ".");
    if (typeof frame.client_id !== "string") {
      // Possibly the answer to our sync or history request: let them be asked again.
      if (state.syncing) {
        state.syncing = false;
        setTimeout(requestSync, 3000);
      }
      if (state.historyPending) historyDone();
    }
    if (code === "forbidden" && !frame.client_id) {
      showNotice(text);
      return;
    }
    if (typeof frame.client_id === "string") {
      state.inFlight.delete(frame.client_id);
      const retry = code === "rate_limited" || code === "unavailable";
      markOutboxFailed(frame.client_id, text, retry);
    }
    showNotice(text);
  }

  // --- rendering messages ------------------------------------------------------------------

  function upsertMessage(message, { clientId = null } = {}) {
    if (!message || typeof message.seq !== "number" || message.seq < 1) return;
    const seq = message.seq;
    const existing = state.messages.get(seq);
    if (existing && message.provisional) return;
    if (existing && sameMessage(existing.data, message)) return; // a duplicate: keep the node
    const atBottom = isNearBottom();
    const el = renderMessage(message);
    const knownClient = clientId || (existing && existing.el.dataset.clientId);
    if (knownClient) el.dataset.clientId = knownClient;
    if (existing) {
      existing.el.replaceWith(el);
    } else {
      insertInOrder(el, seq);
    }
    state.messages.set(seq, { data: message, el });
    if (message.sender && message.sender.id != null) rememberPerson(message.sender);
    if (state.minSeq === null || seq < state.minSeq) state.minSeq = seq;
    // A provisional copy (shown at ack time) does not count as held: sync fetches the record.
    for (;;) {
      const next = state.messages.get(state.lastSeq + 1);
      if (!next || next.data.provisional) break;
      state.lastSeq += 1;
    }
    if (!existing && atBottom) scrollToBottom();
    updateEarlier();
  }

  function sameMessage(a, b) {
    return (
      !a.provisional &&
      a.body === b.body &&
      a.edited_at === b.edited_at &&
      a.deleted === b.deleted &&
      a.shredded === b.shredded &&
      a.error === b.error &&
      JSON.stringify(a.attachments || []) === JSON.stringify(b.attachments || [])
    );
  }

  function insertInOrder(el, seq) {
    let after = ui.list.lastElementChild;
    while (after && Number(after.dataset.seq) > seq) after = after.previousElementSibling;
    if (after) after.after(el);
    else ui.list.prepend(el);
  }

  function renderMessage(message) {
    const sender = message.sender || {};
    const mine = sender.id === cfg.userId;
    const li = el("li", "msg");
    li.dataset.seq = String(message.seq);
    li.dataset.state = "sent";
    li.id = `msg-${message.seq}`;
    if (mine) li.classList.add("mine");
    if (message.kind && message.kind !== "text") li.classList.add(`kind-${message.kind}`);
    if (message.deleted) li.classList.add("deleted");

    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-sender", sender.display_name || "Unknown"));
    const agency = agencyName(sender);
    if (agency) meta.append(el("span", "msg-agency", agency));
    const time = el("time", "msg-time");
    if (message.created_at) {
      time.dateTime = message.created_at;
      time.textContent = clock.short(message.created_at);
      time.title = clock.full(message.created_at, senderTimeZone(sender));
    }
    meta.append(time);
    if (message.edited_at && !message.deleted) {
      const edited = el("span", "msg-edited", "edited");
      edited.title = clock.full(message.edited_at, null);
      meta.append(edited);
    }
    if (mine && !message.deleted) meta.append(el("span", "msg-state", "sent"));
    li.append(meta);

    const body = el("div", "msg-body");
    const text = typeof message.body === "string" ? message.body : null;
    if (message.error === "integrity") {
      li.classList.add("broken");
      body.textContent = "This message failed its integrity check and is not shown.";
    } else if (message.error) {
      li.classList.add("broken");
      body.textContent = "This message cannot be opened right now.";
    } else if (message.deleted && text === null) {
      body.textContent = "This message was deleted.";
    } else {
      if (message.deleted) li.append(el("div", "msg-deleted-note", "Deleted (visible to auditors)"));
      appendLinkified(body, text || "");
    }
    li.append(body);

    if (!message.deleted && Array.isArray(message.attachments) && message.attachments.length) {
      li.append(renderAttachments(message.attachments));
    }

    const editable = !message.deleted && !message.shredded && !message.error;
    if (mine && editable && state.canPost && !message.provisional) {
      const actions = el("div", "msg-actions");
      const edit = el("button", "link msg-edit", "Edit");
      edit.type = "button";
      edit.addEventListener("click", () => beginEdit(message.seq));
      const del = el("button", "link msg-delete", "Delete");
      del.type = "button";
      del.addEventListener("click", () => deleteMessage(message.seq));
      actions.append(edit, del);
      li.append(actions);
    }
    return li;
  }

  function renderAttachments(attachments) {
    const list = el("ul", "msg-attachments");
    for (const attachment of attachments) {
      if (!attachment || typeof attachment !== "object") continue;
      const item = el("li", "attachment");
      item.dataset.attachmentId = String(attachment.id);
      const name = typeof attachment.name === "string" ? attachment.name : "file";
      const download = safeSameOriginUrl(attachment.download_url);
      const thumb = attachment.has_thumbnail ? safeSameOriginUrl(attachment.thumbnail_url) : null;
      if (thumb) {
        const img = document.createElement("img");
        img.className = "attachment-thumb";
        img.src = thumb;
        img.alt = name;
        img.loading = "lazy";
        if (attachment.width && attachment.height) {
          const scale = Math.min(1, 240 / attachment.width, 180 / attachment.height);
          img.width = Math.max(1, Math.round(attachment.width * scale));
          img.height = Math.max(1, Math.round(attachment.height * scale));
        }
        if (download) {
          const wrap = document.createElement("a");
          wrap.href = download;
          wrap.className = "attachment-thumb-link";
          wrap.setAttribute("download", "");
          wrap.append(img);
          item.append(wrap);
        } else {
          item.append(img);
        }
      }
      const info = el("div", "attachment-info");
      if (download) {
        const link = el("a", "attachment-download", name);
        link.href = download;
        link.setAttribute("download", "");
        info.append(link);
      } else {
        info.append(el("span", "attachment-name", name));
      }
      const details = [formatSize(attachment.size), attachment.content_type].filter(Boolean);
      info.append(el("span", "attachment-details", details.join(" · ")));
      if (typeof attachment.sha256 === "string") {
        const sha = el("span", "attachment-sha", `SHA-256 ${attachment.sha256.slice(0, 12)}…`);
        sha.title = `SHA-256 ${attachment.sha256}`;
        info.append(sha);
      }
      item.append(info);
      list.append(item);
    }
    return list;
  }

  // Links are built with DOM APIs; only http(s) URLs become links, everything else stays text.
  const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;

  function appendLinkified(parent, text) {
    let index = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      let candidate = match[0];
      const trailing = candidate.match(/[.,;:!?)\]}'"]+$/);
      if (trailing) candidate = candidate.slice(0, -trailing[0].length);
      const start = match.index;
      let url = null;
      try {
        url = new URL(candidate);
      } catch (error) {
        url = null;
      }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
      if (start > index) parent.append(document.createTextNode(text.slice(index, start)));
      const link = document.createElement("a");
      link.href = url.href;
      link.textContent = candidate;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      parent.append(link);
      index = start + candidate.length;
    }
    if (index < text.length) parent.append(document.createTextNode(text.slice(index)));
  }

  function safeSameOriginUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, location.origin);
      if (url.origin !== location.origin) return null;
      return url.pathname + url.search;
    } catch (error) {
      return null;
    }
  }

  // --- editing and deleting one's own messages -----------------------------------------------

  function beginEdit(seq) {
    const entry = state.messages.get(seq);
    if (!entry || entry.el.querySelector(".msg-editor")) return;
    const body = entry.el.querySelector(".msg-body");
    const editor = el("form", "msg-editor");
    const area = document.createElement("textarea");
    area.value = entry.data.body || "";
    area.maxLength = cfg.maxChars;
    area.rows = 2;
    area.setAttribute("aria-label", "Edit message");
    const save = el("button", "primary", "Save");
    save.type = "submit";
    const cancel = el("button", "", "Cancel");
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
        showNotice("A message cannot be empty; use Delete to remove it.");
        return;
      }
      if (text === (entry.data.body || "")) {
        finish();
        return;
      }
      if (!send({ type: "message.edit", seq, body: text })) {
        showNotice("Not connected: the edit was not sent. Try again when the connection is back.");
        return;
      }
      finish();
    });
  }

  function deleteMessage(seq) {
    if (!window.confirm("Delete this message? Other members will see that it was deleted.")) {
      return;
    }
    if (!send({ type: "message.delete", seq })) {
      showNotice("Not connected: the message was not deleted. Try again when the connection is back.");
    }
  }

  // --- the composer and the outbox ---------------------------------------------------------

  function outboxKey() {
    return `liaison.outbox.${cfg.userId}.${cfg.roomId}`;
  }

  function loadOutbox() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(outboxKey()) || "[]");
      return Array.isArray(saved) ? saved.filter((entry) => entry && entry.client_id) : [];
    } catch (error) {
      return [];
    }
  }

  function saveOutbox() {
    try {
      if (state.outbox.length) sessionStorage.setItem(outboxKey(), JSON.stringify(state.outbox));
      else sessionStorage.removeItem(outboxKey());
    } catch (error) {
      // storage full or disabled: the in-memory outbox still resends while the page is open
    }
  }

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function submitComposer() {
    if (!state.canPost) return;
    const text = ui.input.value.replace(/\s+$/, "");
    const ready = state.uploads.filter((upload) => upload.state === "done");
    const busy = state.uploads.some((upload) => upload.state === "uploading");
    if (busy) {
      showNotice("Wait for the uploads to finish, then send.");
      return;
    }
    if (!text.trim() && ready.length === 0) return;
    if (text.length > cfg.maxChars) {
      showNotice(`That message is too long: the limit is ${cfg.maxChars.toLocaleString()} characters.`);
      return;
    }
    const entry = {
      client_id: newClientId(),
      body: text.trim() ? text : "",
      attachments: ready.map((upload) => upload.attachment.id),
      attachmentMeta: ready.map((upload) => upload.attachment),
      created_at: new Date().toISOString(),
      failed: null,
    };
    state.outbox.push(entry);
    saveOutbox();
    renderPending(entry);
    ready.forEach((upload) => removeUpload(upload));
    ui.input.value = "";
    scrollToBottom();
    flushOutbox();
  }

  function sendEntry(entry) {
    const frame = { type: "message.send", client_id: entry.client_id, body: entry.body };
    if (entry.attachments && entry.attachments.length) frame.attachments = entry.attachments;
    if (!send(frame)) return false;
    state.inFlight.add(entry.client_id);
    return true;
  }

  function flushOutbox() {
    // Oldest first, a few at a time; each answer (ack or error) lets the next one go.
    for (const entry of state.outbox) {
      if (state.inFlight.size >= OUTBOX_WINDOW) return;
      if (!entry.failed && !state.inFlight.has(entry.client_id)) sendEntry(entry);
    }
  }

  function removeFromOutbox(clientId) {
    const before = state.outbox.length;
    state.outbox = state.outbox.filter((entry) => entry.client_id !== clientId);
    if (state.outbox.length !== before) saveOutbox();
  }

  function renderPending(entry) {
    let li = ui.outbox.querySelector(`[data-client-id="${cssEscape(entry.client_id)}"]`);
    const fresh = !li;
    if (fresh) li = el("li", "msg mine pending");
    li.replaceChildren();
    li.dataset.clientId = entry.client_id;
    li.dataset.state = entry.failed ? "failed" : "sending";
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-sender", cfg.userName));
    if (cfg.userAgency) meta.append(el("span", "msg-agency", cfg.userAgency));
    const time = el("time", "msg-time", clock.short(entry.created_at));
    time.dateTime = entry.created_at;
    meta.append(time);
    meta.append(el("span", "msg-state", entry.failed ? "not sent" : "sending…"));
    li.append(meta);
    const body = el("div", "msg-body");
    appendLinkified(body, entry.body);
    li.append(body);
    if (entry.attachmentMeta && entry.attachmentMeta.length) {
      li.append(renderAttachments(entry.attachmentMeta));
    }
    if (entry.failed) {
      const actions = el("div", "msg-actions");
      actions.append(el("span", "msg-failure", entry.failed));
      const retry = el("button", "link", "Retry");
      retry.type = "button";
      retry.addEventListener("click", () => {
        entry.failed = null;
        saveOutbox();
        renderPending(entry);
        flushOutbox();
      });
      const discard = el("button", "link", "Discard");
      discard.type = "button";
      discard.addEventListener("click", () => {
        removeFromOutbox(entry.client_id);
        li.remove();
      });
      actions.append(retry, discard);
      li.append(actions);
    }
    if (fresh) ui.outbox.append(li);
  }

  function markOutboxFailed(clientId, text, retryLater) {
    const entry = state.outbox.find((item) => item.client_id === clientId);
    if (!entry) return;
    if (retryLater) {
      setTimeout(flushOutbox, 5000 + Math.random() * 5000);
      return;
    }
    entry.failed = text;
    saveOutbox();
    renderPending(entry);
  }

  function disableComposer(reason) {
    state.canPost = false;
    ui.composer.classList.add("is-disabled");
    ui.input.disabled = true;
    ui.send.disabled = true;
    ui.file.disabled = true;
    ui.input.placeholder = "Read-only";
    ui.readonly.textContent = reason;
    ui.readonly.hidden = false;
    ui.list.querySelectorAll(".msg-actions").forEach((node) => node.remove());
  }

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });

  ui.input.addEventListener("input", () => {
    const now = Date.now();
    if (state.canPost && ui.input.value && now - state.typingSentAt > TYPING_SEND_EVERY_MS) {
      if (send({ type: "typing" })) state.typingSentAt = now;
    }
  });

  // --- typing and presence -----------------------------------------------------------------

  function onTyping(user) {
    const id = typeof user === "object" && user !== null ? user.id : user;
    if (id == null || id === cfg.userId) return;
    const known = state.people.get(id);
    const name =
      (typeof user === "object" && user !== null && user.display_name) ||
      (known && known.name) ||
      "Someone";
    const current = state.typers.get(id);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      state.typers.delete(id);
      renderTypers();
    }, TYPING_SHOW_MS);
    state.typers.set(id, { name, timer });
    renderTypers();
  }

  function clearTypers() {
    state.typers.forEach((typer) => clearTimeout(typer.timer));
    state.typers.clear();
    renderTypers();
  }

  function renderTypers() {
    const names = Array.from(state.typers.values(), (typer) => typer.name);
    if (names.length === 0) ui.typing.textContent = "";
    else if (names.length === 1) ui.typing.textContent = `${names[0]} is typing…`;
    else if (names.length === 2) ui.typing.textContent = `${names[0]} and ${names[1]} are typing…`;
    else ui.typing.textContent = "Several people are typing…";
  }

  function setOnline(ids) {
    state.online = new Set(ids.map((id) => (typeof id === "object" && id ? id.id : id)));
    if (!ui.people) return;
    let count = 0;
    ui.people.querySelectorAll("li[data-person]").forEach((li) => {
      const online = state.online.has(Number(li.dataset.person));
      li.classList.toggle("online", online);
      const label = li.querySelector(".presence-label");
      if (label) label.textContent = online ? "online" : "offline";
      if (online) count += 1;
    });
    ui.onlineCount.textContent = count ? `· ${count} online` : "";
  }

  function readPeople() {
    const people = new Map();
    if (!ui.people) return people;
    ui.people.querySelectorAll("li[data-person]").forEach((li) => {
      people.set(Number(li.dataset.person), {
        name: li.dataset.name,
        agency: li.dataset.agency,
        timeZone: li.dataset.timeZone,
      });
    });
    return people;
  }

  function rememberPerson(sender) {
    if (!state.people.has(sender.id) && sender.display_name) {
      state.people.set(sender.id, {
        name: sender.display_name,
        agency: agencyName(sender),
        timeZone: sender.time_zone || "",
      });
    }
  }

  function senderTimeZone(sender) {
    if (typeof sender.time_zone === "string" && sender.time_zone) return sender.time_zone;
    const known = state.people.get(sender.id);
    return known && known.timeZone ? known.timeZone : null;
  }

  function agencyName(sender) {
    const agency = sender.agency;
    if (!agency) return "";
    if (typeof agency === "string") return agency;
    return agency.name || agency.code || "";
  }

  // --- read markers ------------------------------------------------------------------------

  function scheduleRead() {
    clearTimeout(state.readTimer);
    state.readTimer = setTimeout(sendRead, 400);
  }

  function sendRead() {
    if (document.visibilityState !== "visible" || !document.hasFocus()) return;
    if (!isNearBottom()) return;
    const seq = state.lastSeq;
    if (seq > state.readSent && send({ type: "read", seq })) {
      state.readSent = seq;
      const badge = document.querySelector(`[data-unread-for="${cfg.roomId}"]`);
      if (badge) {
        badge.hidden = true;
        badge.textContent = "";
      }
    }
  }

  window.addEventListener("focus", scheduleRead);
  document.addEventListener("visibilitychange", scheduleRead);
  ui.log.addEventListener("scroll", () => {
    if (isNearBottom()) scheduleRead();
  });

  // --- unread counts of the reader's rooms -------------------------------------------------

  async function refreshUnread() {
    if (!cfg.unreadUrl) return;
    let payload;
    try {
      const response = await fetch(cfg.unreadUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      payload = await response.json();
    } catch (error) {
      return;
    }
    for (const [roomId, count] of unreadEntries(payload)) {
      const badge = document.querySelector(`[data-unread-for="${roomId}"]`);
      if (!badge) continue;
      const show = count > 0 && roomId !== cfg.roomId;
      badge.hidden = !show;
      badge.textContent = show ? String(count) : "";
      badge.title = show ? `${count} unread` : "";
    }
  }

  function unreadEntries(payload) {
    // GET /api/v1/unread answers {"rooms": {"<room id>": <unread count>, ...}}.
    const rooms = payload && typeof payload.rooms === "object" ? payload.rooms : null;
    if (!rooms) return [];
    return Object.entries(rooms)
      .map(([id, count]) => [Number(id), Number(count)])
      .filter(([id, count]) => Number.isFinite(id) && Number.isFinite(count));
  }

  setInterval(refreshUnread, 30000);
  window.addEventListener("focus", refreshUnread);

  // --- attachments: drag and drop, file picker, upload with progress ---------------------------

  function csrfToken() {
    if (cfg.csrfToken) return cfg.csrfToken;
    const match = document.cookie.match(/(?:^|;\s*)(?:__Host-)?csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function addFiles(files) {
    if (!state.canPost) {
      showNotice("You cannot share files in this room.");
      return;
    }
    for (const file of files) {
      if (cfg.maxUploadBytes && file.size > cfg.maxUploadBytes) {
        showNotice(
          `${file.name} is too large: files can be at most ${formatSize(cfg.maxUploadBytes)}.`,
        );
        continue;
      }
      const upload = { key: newClientId(), file, state: "uploading", progress: 0, attachment: null };
      state.uploads.push(upload);
      renderUpload(upload);
      startUpload(upload);
    }
  }

  function startUpload(upload) {
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open("POST", cfg.attachmentsUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        upload.progress = event.loaded / event.total;
        renderUpload(upload);
      }
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status === 201 && body && body.attachment) {
        upload.state = "done";
        upload.progress = 1;
        upload.attachment = body.attachment;
      } else {
        upload.state = "failed";
        const detail = body && body.error && body.error.detail;
        if (xhr.status === 401) upload.error = "Your session has ended; sign in again.";
        else upload.error = detail || `The upload failed (HTTP ${xhr.status}).`;
        showNotice(`${upload.file.name}: ${upload.error}`);
      }
      renderUpload(upload);
    });
    xhr.addEventListener("error", () => {
      upload.state = "failed";
      upload.error = "The upload was interrupted (network error).";
      renderUpload(upload);
    });
    xhr.addEventListener("abort", () => removeUpload(upload));
    const form = new FormData();
    form.append("file", upload.file, upload.file.name);
    xhr.send(form);
  }

  function renderUpload(upload) {
    if (!upload.el) {
      upload.el = el("li", "upload");
      ui.uploads.append(upload.el);
    }
    const li = upload.el;
    li.replaceChildren();
    li.dataset.state = upload.state;
    li.append(el("span", "upload-name", upload.file.name));
    li.append(el("span", "upload-size", formatSize(upload.file.size)));
    if (upload.state === "uploading") {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = Math.round(upload.progress * 100);
      bar.setAttribute("aria-label", `Uploading ${upload.file.name}`);
      li.append(bar);
    } else if (upload.state === "done") {
      li.append(el("span", "upload-ready", "ready to send"));
    } else {
      li.append(el("span", "upload-error", upload.error || "failed"));
    }
    const remove = el("button", "link", upload.state === "uploading" ? "Cancel" : "Remove");
    remove.type = "button";
    remove.addEventListener("click", () => {
      if (upload.state === "uploading" && upload.xhr) upload.xhr.abort();
      else removeUpload(upload);
    });
    li.append(remove);
  }

  function removeUpload(upload) {
    state.uploads = state.uploads.filter((item) => item !== upload);
    if (upload.el) upload.el.remove();
  }

  ui.file.addEventListener("change", () => {
    addFiles(Array.from(ui.file.files || []));
    ui.file.value = "";
  });

  const dropArea = root.querySelector(".chat-main");
  let dragDepth = 0;
  const hasFiles = (event) =>
    event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  dropArea.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    if (state.canPost) {
      dropArea.classList.add("dragging");
      ui.dropHint.hidden = false;
    }
  });
  dropArea.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = state.canPost ? "copy" : "none";
  });
  dropArea.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) {
      dropArea.classList.remove("dragging");
      ui.dropHint.hidden = true;
    }
  });
  dropArea.addEventListener("drop", (event) => {
    if (!event.dataTransfer || !event.dataTransfer.files || !event.dataTransfer.files.length) return;
    event.preventDefault();
    dragDepth = 0;
    dropArea.classList.remove("dragging");
    ui.dropHint.hidden = true;
    addFiles(Array.from(event.dataTransfer.files));
  });

  // --- small helpers -----------------------------------------------------------------------

  function setStatus(name, text) {
    ui.status.dataset.state = name;
    ui.status.textContent = text;
  }

  function showBanner(text, loginUrl) {
    ui.banner.replaceChildren(document.createTextNode(text));
    if (loginUrl) {
      ui.banner.append(" ");
      const link = document.createElement("a");
      link.href = loginUrl;
      link.textContent = "Sign in again";
      ui.banner.append(link);
    }
    ui.banner.hidden = false;
  }

  let noticeTimer = null;
  function showNotice(text) {
    ui.notice.querySelector(".chat-notice-text").textContent = text;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      ui.notice.hidden = true;
    }, 10000);
  }
  ui.notice.querySelector(".chat-notice-close").addEventListener("click", () => {
    ui.notice.hidden = true;
  });

  function isNearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
  }

  function scrollToBottom() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  ui.earlier.addEventListener("click", loadEarlier);

  // --- go ----------------------------------------------------------------------------------

  state.outbox.forEach(renderPending);
  updateEarlier();
  refreshUnread();
  connect();
}

function readConfig(root) {
  const data = root.dataset;
  const number = (value, fallback) => {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : fallback;
  };
  return {
    roomId: number(data.roomId, 0),
    userId: number(data.userId, 0),
    userName: data.userName || "You",
    userAgency: data.userAgency || "",
    timeZone: data.timeZone || "UTC",
    language: data.language || undefined,
    lastSeq: number(data.lastSeq, 0),
    pageSize: Math.max(1, number(data.pageSize, 50)),
    canPost: data.canPost === "true",
    maxChars: number(data.maxChars, 8000),
    maxUploadBytes: number(data.maxUploadBytes, 0),
    wsPath: data.wsPath,
    unreadUrl: data.unreadUrl || "",
    attachmentsUrl: data.attachmentsUrl,
    loginUrl: data.loginUrl || "/login/",
    csrfToken: data.csrfToken || "",
  };
}

// Times in the reader's time zone; the title adds the sender's local time when it is known.
function makeClock(cfg) {
  const locale = cfg.language === "zh-hans" ? "zh-Hans" : undefined;
  const zone = validZone(cfg.timeZone) || "UTC";
  const timeOnly = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
  });
  const dateTime = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
  const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: zone, dateStyle: "short" });
  const full = (z) =>
    new Intl.DateTimeFormat(locale, {
      timeZone: z,
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short",
    });
  const fullReader = full(zone);
  const senderFormats = new Map();
  return {
    short(iso) {
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return "";
      const sameDay = dayKey.format(date) === dayKey.format(new Date());
      return sameDay ? timeOnly.format(date) : dateTime.format(date);
    },
    full(iso, senderZone) {
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return "";
      let text = `${fullReader.format(date)} (your time, ${zone})`;
      const other = validZone(senderZone);
      if (other && other !== zone) {
        if (!senderFormats.has(other)) senderFormats.set(other, full(other));
        text += `\nSender's local time: ${senderFormats.get(other).format(date)} (${other})`;
      }
      return text;
    },
  };
}

function validZone(zone) {
  if (typeof zone !== "string" || !zone) return null;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return zone;
  } catch (error) {
    return null;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatSize(bytes) {
  const size = Number(bytes);
  if (!Number.isFinite(size) || size < 0) return "";
  if (size < 1024) return `${size} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function cssEscape(value) {
  return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
}
