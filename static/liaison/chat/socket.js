// The room's WebSocket: connecting, a heartbeat that notices a silently lost network,
// reconnecting with backoff, and what each close code means for the page. Catching up on what
// was missed meanwhile is sync.js.
import { strings } from "./strings.js";

const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;
const RATE_LIMIT_BACKOFF_MS = 15000;

// Exponential backoff with full jitter, so a server restart is not met by a stampede.
export function reconnectDelay(attempt, minimumMs = 0, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.max(minimumMs, Math.round(ceiling / 2 + (random() * ceiling) / 2));
}

export class RoomSocket {
  // handlers: open(), frame(frame), lost() when a connection ends, and readOnly(reason) when
  // the page may no longer post.
  constructor({ path, loginUrl, status, handlers }) {
    this.path = path;
    this.loginUrl = loginUrl;
    this.status = status;
    this.handlers = handlers;
    this.socket = null;
    this.connected = false;
    this.everConnected = false;
    this.stopped = false; // a close code that forbids reconnecting (4401, 4403)
    this.readOnlyRetried = false; // after 4409 the socket may come back once, to read
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
  }

  start() {
    window.addEventListener("offline", () => {
      this.status.set("offline", strings.offline);
      this.drop();
    });
    window.addEventListener("online", () => {
      this.attempt = 0;
      if (!this.socket) this.connect();
    });
    this.connect();
  }

  connect() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (navigator.onLine === false) {
      this.status.set("offline", strings.offline);
      return;
    }
    this.status.set("connecting", this.everConnected ? strings.reconnecting : strings.connecting);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => this.onOpen(socket));
    socket.addEventListener("message", (event) => this.onMessage(socket, event));
    socket.addEventListener("close", (event) => this.onClose(socket, event));
  }

  // Sends a frame if the connection is open; false if it is not.
  send(frame) {
    if (!this.connected || !this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  onOpen(socket) {
    if (socket !== this.socket) return;
    this.connected = true;
    this.everConnected = true;
    this.attempt = 0;
    this.status.set("syncing", strings.catchingUp);
    this.handlers.open();
    this.startHeartbeat();
  }

  onMessage(socket, event) {
    if (socket !== this.socket) return;
    clearTimeout(this.pongTimer); // any frame proves the connection is alive
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this.handlers.frame(frame);
  }

  onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.connected = false;
    this.stopHeartbeat();
    this.handlers.lost();
    const code = event.code;
    if (code === 4401) {
      this.stop(strings.sessionEnded, { login: true });
    } else if (code === 4403) {
      this.status.accessEnded();
      this.stop(strings.accessEnded);
    } else if (code === 4409) {
      this.status.exerciseClosed();
      this.handlers.readOnly(strings.roomClosed);
      this.status.banner(strings.roomClosed);
      if (this.readOnlyRetried) {
        this.stop(strings.roomClosed, { readOnly: true });
      } else {
        this.readOnlyRetried = true;
        this.scheduleReconnect();
      }
    } else if (code === 4429) {
      this.status.notice(strings.rateLimited);
      this.scheduleReconnect(RATE_LIMIT_BACKOFF_MS);
    } else if (code === 1012) {
      // The server is restarting: another worker takes over, reconnect at once.
      this.attempt = 0;
      this.scheduleReconnect();
    } else if (code === 1009) {
      this.status.notice(strings.frameTooLarge);
      this.scheduleReconnect();
    } else {
      this.scheduleReconnect();
    }
  }

  stop(text, { login = false, readOnly = false } = {}) {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.status.set(
      readOnly ? "readonly" : "closed",
      readOnly ? strings.readOnly : strings.disconnected,
    );
    this.status.banner(text, login ? this.loginUrl : null);
    if (!readOnly) this.handlers.readOnly(text);
  }

  scheduleReconnect(minimumMs = 0) {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const delay = reconnectDelay(this.attempt, minimumMs);
    this.attempt += 1;
    if (navigator.onLine === false) {
      this.status.set("offline", strings.offline);
      return; // the "online" event reconnects
    }
    this.status.set("reconnecting", strings.retryingIn(Math.ceil(delay / 1000)));
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  // Closes a socket the network has silently lost; onClose schedules the reconnect.
  drop() {
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.close(4000, "client reconnect");
    } catch (error) {
      // already closing
    }
    this.onClose(socket, { code: 1006 });
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.drop(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}
