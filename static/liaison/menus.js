// Menus and drawers on every page: the top bar's menu on a phone, and the room page's rooms and
// people drawers. A button with `data-panel-toggle` and `aria-controls` opens and closes its
// panel; a button with `data-panel-close` inside a panel closes it. One panel is open at a time.
// Opening moves focus into the panel; Escape, a click outside or a second press closes it and
// gives focus back to the button. On a wide screen the panels are always shown (CSS) and the
// buttons are hidden, so none of this is in the way.
//
// Also: a wide table on a narrow screen scrolls inside itself, and gets a tab stop while it
// does, so that it can be scrolled from the keyboard.

const OPEN = "is-open";
const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

let current = null; // {button, panel} of the open panel

function panelOf(button) {
  return document.getElementById(button.getAttribute("aria-controls") || "");
}

function togglesOf(panel) {
  return [...document.querySelectorAll("[data-panel-toggle]")].filter(
    (button) => button.getAttribute("aria-controls") === panel.id,
  );
}

function shown(node) {
  return node.getClientRects().length > 0 && getComputedStyle(node).visibility !== "hidden";
}

function open(button) {
  const panel = panelOf(button);
  if (!panel) return;
  if (current) close({ restoreFocus: false });
  current = { button, panel };
  panel.classList.add(OPEN);
  document.documentElement.classList.add("panel-open");
  togglesOf(panel).forEach((toggle) => toggle.setAttribute("aria-expanded", "true"));
  // Focus goes to what the panel is for: the current room, else its first control.
  const target =
    panel.querySelector('[aria-current="page"]') ||
    [...panel.querySelectorAll(FOCUSABLE)].find(
      (node) => shown(node) && !node.hasAttribute("data-panel-close"),
    ) ||
    panel.querySelector("[data-panel-close]");
  if (target) target.focus();
}

function close({ restoreFocus }) {
  if (!current) return;
  const { button, panel } = current;
  current = null;
  panel.classList.remove(OPEN);
  document.documentElement.classList.remove("panel-open");
  togglesOf(panel).forEach((toggle) => toggle.setAttribute("aria-expanded", "false"));
  if (restoreFocus && shown(button)) button.focus();
}

function start() {
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-panel-toggle]");
    if (toggle) {
      if (current && current.panel === panelOf(toggle)) close({ restoreFocus: true });
      else open(toggle);
      return;
    }
    if (!current) return;
    if (event.target.closest("[data-panel-close]")) {
      close({ restoreFocus: true });
    } else if (!current.panel.contains(event.target)) {
      close({ restoreFocus: false });
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && current && !event.defaultPrevented) {
      event.preventDefault();
      close({ restoreFocus: true });
    }
  });

  // Tabbing out of an open panel closes it: what is behind it is where the reader went.
  document.addEventListener("focusin", (event) => {
    if (!current) return;
    const { button, panel } = current;
    if (!panel.contains(event.target) && event.target !== button) close({ restoreFocus: false });
  });

  // Grown back to a wide screen: the panels are part of the page again.
  window.addEventListener("resize", () => {
    if (current && !shown(current.button)) close({ restoreFocus: false });
    markScrollingTables();
  });
  markScrollingTables();
}

function markScrollingTables() {
  document.querySelectorAll("table").forEach((table) => {
    const scrolls = table.scrollWidth > table.clientWidth + 1;
    if (scrolls && !table.hasAttribute("tabindex")) {
      table.tabIndex = 0;
      table.dataset.scrollStop = "";
    } else if (!scrolls && table.dataset.scrollStop !== undefined) {
      table.removeAttribute("tabindex");
      delete table.dataset.scrollStop;
    }
  });
}

start();
