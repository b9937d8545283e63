// The connection status line, the header's badges (the exercise's state, the reader's place in
// it) as they change while the page is open, the banner (why the page stopped) and passing
// notices.
import { strings } from "./strings.js";

const NOTICE_SHOWN_MS = 10000;

function setBadge(badge, state, text) {
  if (!badge) return;
  badge.className = `badge ${state}`;
  badge.textContent = text;
}

export class StatusLine {
  constructor({ status, banner, notice, exerciseBadge = null, roleBadge = null }) {
    this.statusEl = status;
    this.exerciseBadge = exerciseBadge;
    this.roleBadge = roleBadge;
    this.bannerEl = banner;
    this.noticeEl = notice;
    this.noticeTimer = null;
    notice.querySelector(".chat-notice-close").addEventListener("click", () => {
      notice.hidden = true;
    });
  }

  get state() {
    return this.statusEl.dataset.state;
  }

  set(state, text) {
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = text;
  }

  // The exercise closed while the page was open (close code 4409, or a room_closed error).
  exerciseClosed() {
    setBadge(this.exerciseBadge, "closed", strings.exerciseClosedBadge);
  }

  // The reader was removed from the exercise (close code 4403).
  accessEnded() {
    setBadge(this.roleBadge, "closed", strings.accessEndedBadge);
  }

  banner(text, loginUrl = null) {
    this.bannerEl.replaceChildren(document.createTextNode(text));
    if (loginUrl) {
      this.bannerEl.append(" ");
      const link = document.createElement("a");
      link.href = loginUrl;
      link.textContent = strings.signInAgain;
      this.bannerEl.append(link);
    }
    this.bannerEl.hidden = false;
  }

  notice(text) {
    this.noticeEl.querySelector(".chat-notice-text").textContent = text;
    this.noticeEl.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.noticeEl.hidden = true;
    }, NOTICE_SHOWN_MS);
  }
}
