// Bearings in the message list: where a new day starts (in the reader's zone and language),
// which messages continue the one before (same sender, within five minutes), where the
// "New messages" line goes, and how much of the record to load so the reader finds it.
// No DOM: testable on its own.
import { validZone } from "./format.js";
import { strings } from "./strings.js";

export const GROUP_WITHIN_MS = 5 * 60 * 1000;
// On return, the page loads from the first unread message, but never more than this many pages.
export const MAX_UNREAD_PAGES = 4;
// Kinds that stand on their own: an alert or a system notice is never folded into a run.
const GROUPABLE_KINDS = new Set(["text", "attachment"]);

function localeOf(language) {
  return language === "zh-hans" ? "zh-Hans" : "en-GB";
}

// "2026-03-30" -> "2026-03-29": calendar arithmetic on the key, free of any zone's DST.
export function dayBefore(key) {
  const [year, month, day] = key.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day - 1)).toISOString().slice(0, 10);
}

// Days as the reader counts them: keys to compare ("2026-03-29"), labels to show ("Today",
// "Sunday 29 March", "2025年3月29日星期六").
export function makeDays({ timeZone, language, now = () => new Date() }) {
  const zone = validZone(timeZone) || "UTC";
  const locale = localeOf(language);
  const keyFormat = new Intl.DateTimeFormat("en-CA", { timeZone: zone, dateStyle: "short" });
  const yearFormat = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric" });
  const thisYear = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    weekday: "long",
    day: "numeric",
    month: "long",
  });
  const otherYear = new Intl.DateTimeFormat(locale, {
    timeZone: zone,
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  });
  const key = (iso) => {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : keyFormat.format(date);
  };
  return {
    zone,
    key,
    label(iso) {
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return "";
      const today = now();
      const day = keyFormat.format(date);
      if (day === keyFormat.format(today)) return strings.today;
      if (day === dayBefore(keyFormat.format(today))) return strings.yesterday;
      const sameYear = yearFormat.format(date) === yearFormat.format(today);
      return (sameYear ? thisYear : otherYear).format(date);
    },
  };
}

// messages: [{seq, senderId, createdAt, kind}] in seq order. Returns one entry per message:
// {seq, day: label when a new day starts here (else null), unread: the "New messages" line
// goes before it, grouped: it continues the run of the message before}.
export function arrange(messages, { days, unreadFrom = null, userId = null }) {
  const result = [];
  let previous = null;
  let previousDay = null;
  let unreadPlaced = false;
  for (const message of messages) {
    const dayKey = days.key(message.createdAt);
    const newDay = dayKey !== previousDay;
    const unread =
      !unreadPlaced &&
      unreadFrom !== null &&
      message.seq >= unreadFrom &&
      message.senderId !== userId;
    if (unread) unreadPlaced = true;
    const gap = previous ? Date.parse(message.createdAt) - Date.parse(previous.createdAt) : NaN;
    const grouped =
      previous !== null &&
      !newDay &&
      !unread &&
      message.senderId != null &&
      message.senderId === previous.senderId &&
      GROUPABLE_KINDS.has(message.kind || "text") &&
      GROUPABLE_KINDS.has(previous.kind || "text") &&
      gap >= 0 &&
      gap <= GROUP_WITHIN_MS;
    result.push({ seq: message.seq, day: newDay ? days.label(message.createdAt) : null, unread, grouped });
    previous = message;
    previousDay = dayKey;
  }
  return result;
}

// The seq the page's first sync starts after: the newest page, or, for a reader coming back to
// unread messages, from the one before the first unread (within MAX_UNREAD_PAGES pages).
export function initialAfterSeq({ lastSeq, lastReadSeq, pageSize }) {
  const newestPage = lastSeq - pageSize;
  const fromUnread = Math.min(newestPage, lastReadSeq - 1);
  return Math.max(0, lastSeq - MAX_UNREAD_PAGES * pageSize, fromUnread);
}
