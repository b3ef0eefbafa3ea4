// Upload: pick or drop a file → POST /photos → direct POST to S3 with a progress bar → poll until
// the worker has made the renditions (ready) or rejected the file (failed, with the reason).
import { h, field, nextId } from "../dom.js";
import { api, uploadToS3, ApiError } from "../api.js";
import { announce, showAlert, showError, clearMessages, photoPicture, poll, describeError } from "../ui.js";

const TYPES = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", heic: "image/heic", heif: "image/heif" };
const ACCEPT = "image/jpeg,image/png,image/webp,image/heic,image/heif,.jpg,.jpeg,.png,.webp,.heic,.heif";
const MAX_BYTES = 25 * 1024 * 1024;

function contentType(file) {
  if (file.type && Object.values(TYPES).includes(file.type)) return file.type;
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  return TYPES[ext] || file.type || "";
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export async function render(main, { signal, onDispose }) {
  const photo = field({ label: "Photo", name: "file", type: "file", hint: "JPEG, PNG, WebP or HEIC, up to 25 MB. You can also drop a file here.", attrs: { accept: ACCEPT, required: true } });
  const caption = field({ label: "Caption", name: "caption", multiline: true, attrs: { maxlength: 2200 } });
  const preview = h("div", { class: "preview", hidden: true });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Upload");
  const drop = h("div", { class: "dropzone" }, photo.wrap, preview);

  const progressId = nextId("upload-progress");
  const progress = h("progress", { id: progressId, max: 100, value: 0 });
  const percent = h("span", { class: "percent" }, "0%");
  const progressBox = h("div", { class: "progress-box", hidden: true },
    h("label", { for: progressId }, "Upload progress"), h("div", { class: "progress-row" }, progress, percent));
  const stage = h("div", { class: "stage" });
  const form = h("form", { class: "card-form", novalidate: true }, drop, caption.wrap, submit);

  let objectUrl = null;
  const revoke = () => { if (objectUrl) URL.revokeObjectURL(objectUrl); objectUrl = null; };
  onDispose(revoke);

  function showPreview() {
    revoke();
    preview.replaceChildren();
    const file = photo.input.files[0];
    if (!file) { preview.hidden = true; return; }
    objectUrl = URL.createObjectURL(file);
    const img = h("img", { src: objectUrl, alt: "Preview of the chosen photo", decoding: "async" });
    img.addEventListener("error", () => img.remove(), { once: true }); // e.g. HEIC: no browser preview
    preview.append(img, h("p", { class: "hint" }, `${file.name} · ${formatBytes(file.size)}`));
    preview.hidden = false;
  }
  photo.input.addEventListener("change", showPreview);

  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "dragend"]) drop.addEventListener(type, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (!file) return;
    const transfer = new DataTransfer();
    transfer.items.add(file);
    photo.input.files = transfer.files;
    showPreview();
    announce(`Chose ${file.name}.`);
  });

  function setProgress(fraction) {
    const value = Math.round(fraction * 100);
    progress.value = value;
    percent.textContent = `${value}%`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const file = photo.input.files[0];
    const fields = { content_type: photo, size: photo, caption };
    if (!file) {
      showError(new ApiError(400, "invalid", "Choose a photo to upload.", [{ field: "content_type", message: "choose a photo first" }]), { fields });
      return;
    }
    const type = contentType(file);
    if (!Object.values(TYPES).includes(type)) {
      showError(new ApiError(400, "invalid", "That file type is not supported.", [{ field: "content_type", message: "must be a JPEG, PNG, WebP or HEIC image" }]), { fields });
      return;
    }
    if (file.size > MAX_BYTES || file.size === 0) {
      showError(new ApiError(400, "invalid", "That file is too large.", [{ field: "size", message: "must be from 1 byte to 25 MB" }]), { fields });
      return;
    }
    submit.disabled = true;
    photo.input.disabled = true;
    stage.replaceChildren();
    let created;
    try {
      created = await api("/photos", { method: "POST", auth: true, body: { content_type: type, size: file.size, caption: caption.input.value.trim() || undefined } });
    } catch (err) {
      showError(err, { fields });
      submit.disabled = false;
      photo.input.disabled = false;
      return;
    }
    setProgress(0);
    progressBox.hidden = false;
    announce("Uploading…");
    try {
      await uploadToS3(created.upload, file, setProgress);
    } catch (err) {
      showAlert(describeError(err));
      stage.replaceChildren(h("p", { class: "error-text" }, describeError(err)));
      submit.disabled = false;
      photo.input.disabled = false;
      return;
    }
    const id = created.photo.id;
    stage.replaceChildren(h("p", { class: "processing", "aria-busy": "true" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Processing your photo…"));
    announce("Upload complete. Processing your photo…");
    try {
      const done = await poll(() => api(`/photos/${encodeURIComponent(id)}`), (p) => p.status !== "pending", { signal });
      if (!done) return;
      if (done.status === "failed") {
        const reason = done.error || "The photo could not be processed.";
        stage.replaceChildren(h("p", { class: "error-text" }, `Processing failed: ${reason}`));
        showAlert(`Processing failed: ${reason}`);
      } else {
        stage.replaceChildren(
          h("div", { class: "result" },
            h("a", { href: `/photos/${encodeURIComponent(id)}`, "data-link": true, class: "result-link" },
              photoPicture(done, { sizes: "160px", lazy: false, alt: done.caption || "Your new photo", className: "result-thumb" })),
            h("p", {}, "Your photo is ready. ", h("a", { href: `/photos/${encodeURIComponent(id)}`, "data-link": true }, "View photo"), " or upload another."),
          ),
        );
        announce("Your photo is ready.");
        form.reset();
        showPreview();
      }
    } catch (err) {
      if (signal.aborted) return;
      stage.replaceChildren(h("p", { class: "error-text" }, describeError(err)));
      showAlert(describeError(err));
    } finally {
      submit.disabled = false;
      photo.input.disabled = false;
    }
  });

  main.append(h("section", { class: "narrow" }, h("h1", {}, "Upload a photo"), form, progressBox, stage));
  return "Upload";
}
