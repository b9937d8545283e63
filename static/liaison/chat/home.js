// The home page: live unread, mention and acknowledgement counts per room and exercise, the last
// activity of each room, the tab title, and desktop notifications, from the attention socket.
import { AttentionSocket, CountsView, Tally } from "./attention.js";
import { makeClock } from "./format.js";
import { Notifier } from "./notify.js";

const root = document.getElementById("home-attention");
if (root) start(root);

function start(root) {
  const userId = Number(root.dataset.userId);
  const clock = makeClock({
    timeZone: root.dataset.timeZone || "UTC",
    language: root.dataset.language || undefined,
  });
  const tally = new Tally(userId);
  const view = new CountsView({ tally, clock });
  const titles = new Map();
  document.querySelectorAll("[data-room-link]").forEach((link) => {
    titles.set(Number(link.dataset.roomLink), link.textContent.trim().replace(/^#\s*/, ""));
  });
  const notifier = new Notifier({ userId, tally, titles: (id) => titles.get(id), host: root });
  new AttentionSocket({
    tally,
    onFrame: (frame) => {
      notifier.consider(frame);
      view.paint();
      if (frame.type === "counts") document.body.dataset.attention = "live";
    },
  }).start();
}
