// The image viewer: a thumbnail opens the full image over the page (X-ray images are read at full
// size), with zoom (buttons, wheel, + and -), pan (drag, arrow keys), actual size, fit, a
// download link, and Escape or Close to return. Modifier-clicks still download as before.
import { el } from "./dom.js";
import { wording } from "./wording.js";

const STEP = 1.25;
const MIN_SCALE = 0.05;
const MAX_SCALE = 16;

export class Lightbox {
  constructor(doc = document) {
    this.doc = doc;
    this.root = null;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.returnFocus = null;
  }

  // isImage(attachmentId): PDFs show a preview too, but a click on theirs still downloads.
  bind(container, isImage = () => true) {
    container.querySelectorAll("a.attachment-thumb-link").forEach((link) => {
      const item = link.closest("[data-attachment-id]");
      if (item && !isImage(Number(item.dataset.attachmentId))) return;
      link.addEventListener("click", (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        const img = link.querySelector("img");
        this.open(link.href, img ? img.alt : "", link);
      });
    });
  }

  build() {
    const root = el("div", "lightbox");
    root.setAttribute("role", "dialog");
    root.setAttribute("aria-modal", "true");
    root.setAttribute("aria-label", wording.imageViewer);
    root.tabIndex = -1;
    const bar = el("div", "lightbox-bar");
    this.caption = el("span", "lightbox-caption");
    const button = (text, action, className) => {
      const b = el("button", `lightbox-button ${className}`, text);
      b.type = "button";
      b.addEventListener("click", action);
      return b;
    };
    this.downloadLink = el("a", "lightbox-button lightbox-download", wording.download);
    this.downloadLink.setAttribute("download", "");
    bar.append(
      this.caption,
      button(wording.zoomOut, () => this.zoom(1 / STEP), "lightbox-zoom-out"),
      button(wording.zoomIn, () => this.zoom(STEP), "lightbox-zoom-in"),
      button(wording.actualSize, () => this.actual(), "lightbox-actual"),
      button(wording.fitToScreen, () => this.fit(), "lightbox-fit"),
      this.downloadLink,
      button(wording.close, () => this.close(), "lightbox-close"),
    );
    this.stage = el("div", "lightbox-stage");
    this.image = el("img", "lightbox-image");
    this.image.draggable = false;
    this.stage.append(this.image);
    root.append(bar, this.stage);
    this.stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoom(event.deltaY < 0 ? STEP : 1 / STEP);
    });
    let drag = null;
    this.stage.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX - this.x, y: event.clientY - this.y };
      this.stage.setPointerCapture(event.pointerId);
    });
    this.stage.addEventListener("pointermove", (event) => {
      if (!drag) return;
      this.x = event.clientX - drag.x;
      this.y = event.clientY - drag.y;
      this.apply();
    });
    this.stage.addEventListener("pointerup", () => {
      drag = null;
    });
    root.addEventListener("keydown", (event) => this.key(event));
    this.image.addEventListener("load", () => this.fit());
    this.doc.body.append(root);
    return root;
  }

  open(src, name, from) {
    if (!this.root) this.root = this.build();
    this.returnFocus = from || null;
    this.caption.textContent = name;
    this.image.alt = name;
    this.downloadLink.href = src;
    this.image.src = src;
    this.root.hidden = false;
    this.doc.body.classList.add("has-lightbox");
    this.root.focus();
  }

  close() {
    if (!this.root) return;
    this.root.hidden = true;
    this.image.removeAttribute("src");
    this.doc.body.classList.remove("has-lightbox");
    if (this.returnFocus) this.returnFocus.focus();
  }

  key(event) {
    const moves = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (event.key === "Escape") this.close();
    else if (event.key === "+" || event.key === "=") this.zoom(STEP);
    else if (event.key === "-") this.zoom(1 / STEP);
    else if (event.key === "0") this.actual();
    else if (moves[event.key]) {
      this.x += moves[event.key][0];
      this.y += moves[event.key][1];
      this.apply();
    } else return;
    event.preventDefault();
  }

  zoom(factor) {
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.apply();
  }

  actual() {
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.apply();
  }

  fit() {
    const width = this.image.naturalWidth || 1;
    const height = this.image.naturalHeight || 1;
    const box = this.stage.getBoundingClientRect();
    this.scale = Math.min(1, box.width / width, box.height / height) || 1;
    this.x = 0;
    this.y = 0;
    this.apply();
  }

  apply() {
    this.image.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.root.dataset.scale = this.scale.toFixed(3);
  }
}
