// Paste an image into the composer to attach it (a screenshot of a scan, say): the pasted files
// go through the same upload as the Attach button and dropped files.
import { wording } from "./wording.js";

export function pastedFiles(clipboard, now = new Date()) {
  const files = [];
  if (!clipboard || !clipboard.items) return files;
  for (const item of clipboard.items) {
    if (item.kind !== "file") continue;
    const file = item.getAsFile();
    if (!file) continue;
    if (file.name && file.name !== "image.png") {
      files.push(file);
      continue;
    }
    const stamp = now.toISOString().replace(/[:.]/g, "-");
    const extension = (file.type.split("/")[1] || "png").replace(/[^a-z0-9]/g, "");
    files.push(new File([file], `${wording.pastedImage}-${stamp}.${extension}`, { type: file.type }));
  }
  return files;
}

export function watchPaste(input, uploads) {
  input.addEventListener("paste", (event) => {
    const files = pastedFiles(event.clipboardData);
    if (!files.length) return;
    event.preventDefault();
    uploads.add(files);
  });
}
