// The connection status line, the banner (why the page stopped) and passing notices.
import { strings } from "./strings.js";

const NOTICE_SHOWN_MS = 10000;

export class StatusLine {
  constructor({ status, banner, notice }) {
    this.statusEl = status;
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
