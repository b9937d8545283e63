// Files to send: picked or dropped onto the room, uploaded at once over XHR (for its progress
// events), then sent with the next message as attachment ids.
import { el } from "./dom.js";
import { formatSize } from "./format.js";
import { newClientId } from "./outbox.js";
import { strings } from "./strings.js";

function csrfToken(configured) {
  if (configured) return configured;
  const match = document.cookie.match(/(?:^|;\s*)(?:__Host-)?csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function hasFiles(event) {
  return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
}

export class Uploads {
  // access.canPost may turn false while the page is open.
  constructor({ cfg, ui, dropArea, access, notice }) {
    this.cfg = cfg;
    this.listEl = ui.uploads;
    this.fileInput = ui.file;
    this.dropHint = ui.dropHint;
    this.dropArea = dropArea;
    this.access = access;
    this.notice = notice;
    this.items = []; // {key, file, state, progress, attachment, error, el, xhr}
    this.dragDepth = 0;
  }

  start() {
    this.fileInput.addEventListener("change", () => {
      this.add(Array.from(this.fileInput.files || []));
      this.fileInput.value = "";
    });
    this.watchDrops();
  }

  ready() {
    return this.items.filter((upload) => upload.state === "done");
  }

  busy() {
    return this.items.some((upload) => upload.state === "uploading");
  }

  add(files) {
    if (!this.access.canPost) {
      this.notice(strings.cannotShareFiles);
      return;
    }
    for (const file of files) {
      if (this.cfg.maxUploadBytes && file.size > this.cfg.maxUploadBytes) {
        this.notice(strings.fileTooLarge(file.name, formatSize(this.cfg.maxUploadBytes)));
        continue;
      }
      const upload = {
        key: newClientId(),
        file,
        state: "uploading",
        progress: 0,
        attachment: null,
      };
      this.items.push(upload);
      this.render(upload);
      this.upload(upload);
    }
  }

  upload(upload) {
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open("POST", this.cfg.attachmentsUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken(this.cfg.csrfToken));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        upload.progress = event.loaded / event.total;
        this.render(upload);
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
        if (xhr.status === 401) upload.error = strings.uploadSessionEnded;
        else upload.error = detail || strings.uploadFailed(xhr.status);
        this.notice(strings.uploadProblem(upload.file.name, upload.error));
      }
      this.render(upload);
    });
    xhr.addEventListener("error", () => {
      upload.state = "failed";
      upload.error = strings.uploadInterrupted;
      this.render(upload);
    });
    xhr.addEventListener("abort", () => this.remove(upload));
    const form = new FormData();
    form.append("file", upload.file, upload.file.name);
    xhr.send(form);
  }

  render(upload) {
    if (!upload.el) {
      upload.el = el("li", "upload");
      this.listEl.append(upload.el);
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
      bar.setAttribute("aria-label", strings.uploading(upload.file.name));
      li.append(bar);
    } else if (upload.state === "done") {
      li.append(el("span", "upload-ready", strings.uploadReady));
    } else {
      li.append(el("span", "upload-error", upload.error || strings.uploadFailedShort));
    }
    const uploading = upload.state === "uploading";
    const remove = el("button", "link", uploading ? strings.cancel : strings.remove);
    remove.type = "button";
    remove.addEventListener("click", () => {
      if (upload.state === "uploading" && upload.xhr) upload.xhr.abort();
      else this.remove(upload);
    });
    li.append(remove);
  }

  remove(upload) {
    this.items = this.items.filter((item) => item !== upload);
    if (upload.el) upload.el.remove();
  }

  watchDrops() {
    const area = this.dropArea;
    const hideHint = () => {
      area.classList.remove("dragging");
      this.dropHint.hidden = true;
    };
    area.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      this.dragDepth += 1;
      if (this.access.canPost) {
        area.classList.add("dragging");
        this.dropHint.hidden = false;
      }
    });
    area.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = this.access.canPost ? "copy" : "none";
    });
    area.addEventListener("dragleave", () => {
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (this.dragDepth === 0) hideHint();
    });
    area.addEventListener("drop", (event) => {
      const files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) return;
      event.preventDefault();
      this.dragDepth = 0;
      hideHint();
      this.add(Array.from(files));
    });
  }
}
