// One photo: responsive <picture>, likes, and for the owner: caption, edits (with a live CSS
// preview) and delete.
import { h, field, formatCount, formatDate, nextId } from "../dom.js";
import { api, ApiError } from "../api.js";
import { session } from "../session.js";
import { boxFractions, clampCrop, currentCrop, currentPlacement, currentRotation, editFrame, isWholeFrame, sameEdits } from "../crop.js";
import { announce, showAlert, showError, clearMessages, photoPicture, poll, describeError, loadingBlock, replace } from "../ui.js";

const PAGE_SIZES = "(max-width: 900px) 100vw, 860px";

export async function render(main, ctx) {
  const { params, signal } = ctx;
  main.append(loadingBlock());
  let photo;
  try {
    photo = await api(`/photos/${encodeURIComponent(params.id)}`, { signal });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(main, h("h1", {}, "Photo not found"), h("p", {}, "This photo does not exist or has been deleted."));
      return "Photo not found";
    }
    throw err;
  }
  const view = h("div", {});
  replace(main, view);
  await show(view, photo, ctx);
  return photo.caption ? photo.caption.slice(0, 60) : `Photo by ${photo.owner}`;
}

async function show(view, photo, ctx) {
  const { signal } = ctx;
  const isOwner = session.signedIn && session.username === photo.owner;
  const heading = h("h1", { class: "visually-hidden" }, photo.caption ? `Photo: ${photo.caption.slice(0, 80)}` : `Photo by ${photo.owner}`);
  const figure = h("figure", { class: "photo-figure" });
  const aside = h("div", { class: "photo-side" });
  replace(view, h("article", { class: "photo-page" }, heading, figure, aside));

  if (photo.status === "pending") {
    figure.append(h("p", { class: "processing", "aria-busy": "true" }, h("span", { class: "spinner", "aria-hidden": "true" }), "This photo is still processing…"));
    aside.append(ownerLine(photo));
    try {
      const done = await poll(() => api(`/photos/${encodeURIComponent(photo.id)}`), (p) => p.status !== "pending", { signal });
      if (done) show(view, done, ctx);
    } catch (err) {
      if (!signal.aborted) showAlert(describeError(err));
    }
    return;
  }
  if (photo.status === "failed") {
    figure.append(h("p", { class: "error-text" }, `Processing failed: ${photo.error || "the photo could not be processed."}`));
    aside.append(ownerLine(photo));
    if (isOwner) aside.append(deleteControl(photo, ctx));
    return;
  }

  figure.append(photoPicture(photo, { sizes: PAGE_SIZES, lazy: false, className: "hero" }));
  const captionText = h("p", { class: "caption" }, photo.caption || "");
  captionText.hidden = !photo.caption;
  figure.append(h("figcaption", {}, captionText));
  if (photo.error) figure.append(h("p", { class: "error-text" }, photo.error));

  aside.append(ownerLine(photo), likeControl(photo, ctx));
  if (isOwner) {
    aside.append(
      captionControl(photo, captionText),
      editControl(photo, view, ctx),
      deleteControl(photo, ctx),
    );
  }
}

function ownerLine(photo) {
  return h("p", { class: "owner-line" },
    h("a", { href: `/users/${encodeURIComponent(photo.owner)}`, "data-link": true, class: "owner" }, `@${photo.owner}`),
    photo.created_at ? h("time", { datetime: photo.created_at }, ` · ${formatDate(photo.created_at)}`) : null,
  );
}

function likeControl(photo, { navigate }) {
  let liked = Boolean(photo.liked);
  let likes = Number(photo.likes) || 0;
  const button = h("button", { type: "button", class: "btn like" });
  const count = h("span", { class: "like-count", "aria-live": "polite" });
  const sync = () => {
    button.textContent = liked ? "Unlike" : "Like";
    button.classList.toggle("liked", liked);
    count.textContent = formatCount(likes, "like", "likes");
  };
  sync();
  button.addEventListener("click", async () => {
    if (!session.signedIn) {
      navigate(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    clearMessages();
    button.disabled = true;
    try {
      const result = await api(`/photos/${encodeURIComponent(photo.id)}/like`, { method: liked ? "DELETE" : "PUT", auth: true });
      if (result && typeof result.likes === "number") {
        likes = result.likes;
        liked = Boolean(result.liked);
      } else {
        likes += liked ? -1 : 1;
        liked = !liked;
      }
      sync();
      announce(liked ? "You liked this photo." : "You unliked this photo.");
    } catch (err) {
      showError(err, { missingFeature: "Liking photos" });
    } finally {
      button.disabled = false;
      button.focus();
    }
  });
  return h("div", { class: "like-row" }, button, count);
}

function captionControl(photo, captionText) {
  const caption = field({ label: "Caption", name: "caption", multiline: true, attrs: { maxlength: 2200, value: photo.caption || "" } });
  const save = h("button", { type: "submit", class: "btn secondary" }, "Save caption");
  const form = h("form", { class: "stack", novalidate: true }, caption.wrap, save);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    save.disabled = true;
    try {
      const updated = await api(`/photos/${encodeURIComponent(photo.id)}`, { method: "PATCH", auth: true, body: { caption: caption.input.value.trim() } });
      photo.caption = updated.caption;
      captionText.textContent = updated.caption;
      captionText.hidden = !updated.caption;
      caption.input.value = updated.caption;
      announce("Caption saved.");
    } catch (err) {
      showError(err, { fields: { caption } });
    } finally {
      save.disabled = false;
    }
  });
  return h("section", { class: "panel", "aria-label": "Caption" }, form);
}

function numberField(label, name, value, max) {
  return field({ label, name, type: "number", attrs: { min: 0, max, step: 1, value: String(value), inputmode: "numeric", required: true } });
}

function editControl(photo, view, ctx) {
  const { signal } = ctx;
  // Every edit is rendered from the original: crop fields and crop box are in the original's pixels
  // (photo.frame), prefilled with the current version's edits so a new edit keeps what it does not change.
  const frame = editFrame(photo);
  const W = frame.width;
  const H = frame.height;
  const applied = currentCrop(photo);
  const appliedEdits = photo.edits || {};
  const x = numberField("Crop X", "x", applied.x, W - 1);
  const y = numberField("Crop Y", "y", applied.y, H - 1);
  const width = numberField("Crop width", "width", applied.width, W);
  const height = numberField("Crop height", "height", applied.height, H);
  const rotateId = nextId("rotate");
  const rotate = h("select", { id: rotateId, name: "rotate" },
    h("option", { value: "" }, "No rotation"),
    h("option", { value: "90" }, "90° clockwise"),
    h("option", { value: "180" }, "180°"),
    h("option", { value: "270" }, "270° clockwise"));
  rotate.value = currentRotation(photo) ? String(currentRotation(photo)) : "";
  const blurId = nextId("blur");
  const blurOut = h("output", { for: blurId }, "off");
  const blur = h("input", { id: blurId, name: "blur", type: "range", min: 0, max: 50, step: 0.5, value: String(Number(appliedEdits.blur) || 0) });
  const sharpenId = nextId("sharpen");
  const sharpenOut = h("output", { for: sharpenId }, "off");
  const sharpen = h("input", { id: sharpenId, name: "sharpen", type: "range", min: 0, max: 10, step: 0.5, value: String(Number(appliedEdits.sharpen) || 0) });

  // Live preview of the original's frame: the current version (the medium rendition) sits where it
  // lies in the original, turned back upright; the crop box, rotation and filters are CSS driven by
  // custom properties set through the CSSOM (no inline style attributes). Parts of the original
  // outside the current version are not downloadable and show as the frame's background.
  const place = currentPlacement(photo);
  const previewImg = h("img", {
    src: (photo.renditions && (photo.renditions.medium || photo.renditions.thumb)) || "",
    alt: "Preview of the edits", width: photo.width || W, height: photo.height || H, decoding: "async",
  });
  const current = h("div", { class: "edit-current", vars: {
    "--px": `${place.left * 100}%`, "--py": `${place.top * 100}%`, "--pw": `${place.width * 100}%`, "--ph": `${place.height * 100}%`,
    "--iw": `${place.imageWidth * 100}%`, "--ih": `${place.imageHeight * 100}%`, "--unrot": `${place.unrotate}deg`,
  } }, previewImg);
  const cropBox = h("div", { class: "crop-box", "aria-hidden": "true" });
  const stage = h("div", { class: "edit-stage" },
    h("div", { class: "edit-frame", vars: { "--frame-aspect": `${W} / ${H}` } }, current, cropBox));
  // The frame's width is a fraction of the square preview chosen so that the photo fits both upright
  // and turned a quarter (the bounding box is the same either way): min(1, W/H).
  const previewWrap = h("div", { class: "edit-preview", vars: { "--fit": Math.min(1, W / H).toFixed(4) } }, stage);
  const note = h("p", { class: "hint" }, "The preview approximates blur and sharpen; the result is rendered on the server.");

  const crop = h("fieldset", { class: "crop-fields" }, h("legend", {}, `Crop (pixels of the original ${W}×${H} photo)`), x.wrap, y.wrap, width.wrap, height.wrap);
  const apply = h("button", { type: "submit", class: "btn primary" }, "Apply edits");
  const reset = h("button", { type: "button", class: "btn secondary" }, "Reset");
  const fields = { edits: x, crop: x, "crop.x": x, "crop.y": y, "crop.width": width, "crop.height": height };
  const form = h("form", { class: "edit-form", novalidate: true },
    previewWrap, note, crop,
    h("div", { class: "field" }, h("label", { for: rotateId }, "Rotate"), rotate),
    h("div", { class: "field" }, h("label", { for: blurId }, "Blur"), h("div", { class: "range-row" }, blur, blurOut)),
    h("div", { class: "field" }, h("label", { for: sharpenId }, "Sharpen"), h("div", { class: "range-row" }, sharpen, sharpenOut)),
    h("div", { class: "actions" }, apply, reset),
  );

  const num = (input) => Number.parseInt(input.value, 10);
  function update() {
    const box = clampCrop({ x: num(x.input), y: num(y.input), width: num(width.input), height: num(height.input) }, frame);
    const drawn = boxFractions(box, frame);
    const deg = Number(rotate.value) || 0;
    const shown = (stage.firstElementChild && stage.firstElementChild.clientWidth) || 300;
    const blurPx = (Number(blur.value) || 0) * (shown / W);
    const sharp = Number(sharpen.value) || 0;
    const set = (name, value) => stage.style.setProperty(name, value);
    set("--cx", `${drawn.left * 100}%`);
    set("--cy", `${drawn.top * 100}%`);
    set("--cw", `${drawn.width * 100}%`);
    set("--ch", `${drawn.height * 100}%`);
    set("--rot", `${deg}deg`);
    set("--blur", `${blurPx.toFixed(2)}px`);
    set("--contrast", String(1 + sharp * 0.06));
    set("--saturate", String(1 + sharp * 0.03));
    cropBox.classList.toggle("active", !isWholeFrame(box, frame));
    blurOut.textContent = Number(blur.value) ? `${blur.value}px` : "off";
    sharpenOut.textContent = sharp ? String(sharp) : "off";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  reset.addEventListener("click", () => {
    x.input.value = "0"; y.input.value = "0"; width.input.value = String(W); height.input.value = String(H);
    rotate.value = ""; blur.value = "0"; sharpen.value = "0";
    update();
  });
  requestAnimationFrame(update);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const edits = {};
    const box = { x: num(x.input), y: num(y.input), width: num(width.input), height: num(height.input) };
    if (Object.values(box).some(Number.isNaN)) {
      showError(new ApiError(400, "invalid", "Crop values must be whole numbers.", []), { fields });
      return;
    }
    if (!isWholeFrame(box, frame)) edits.crop = box;
    if (rotate.value) edits.rotate = Number(rotate.value);
    if (Number(blur.value) > 0) edits.blur = Number(blur.value);
    if (Number(sharpen.value) > 0) edits.sharpen = Number(sharpen.value);
    if (!Object.keys(edits).length || sameEdits(edits, appliedEdits)) {
      showAlert("Nothing to apply: change the crop, rotation, blur or sharpen first.");
      return;
    }
    apply.disabled = true;
    const before = { version: photo.version, error: photo.error || null };
    try {
      // base_version: the API answers 409 if the photo changed since this page loaded it.
      await api(`/photos/${encodeURIComponent(photo.id)}/edits`, { method: "POST", auth: true, body: { ...edits, base_version: photo.version } });
    } catch (err) {
      showError(err, { fields });
      apply.disabled = false;
      return;
    }
    const working = h("p", { class: "processing", "aria-busy": "true" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Applying edits…");
    form.append(working);
    announce("Applying edits…");
    try {
      const next = await poll(
        () => api(`/photos/${encodeURIComponent(photo.id)}`),
        (p) => p.version !== before.version || (p.error && p.error !== before.error),
        { signal },
      );
      if (!next) return;
      if (next.version === before.version) {
        working.remove();
        showAlert(next.error);
        apply.disabled = false;
        return;
      }
      await show(view, next, ctx);
      announce("Edits applied: showing the new version.");
    } catch (err) {
      if (signal.aborted) return;
      working.remove();
      showAlert(describeError(err));
      apply.disabled = false;
    }
  });

  return h("details", { class: "panel edit-panel" }, h("summary", {}, "Edit photo"), form);
}

function deleteControl(photo, { navigate }) {
  const start = h("button", { type: "button", class: "btn danger" }, "Delete photo");
  const confirmYes = h("button", { type: "button", class: "btn danger" }, "Yes, delete it");
  const confirmNo = h("button", { type: "button", class: "btn secondary" }, "Cancel");
  const confirmBox = h("div", { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm delete" },
    h("p", {}, "Delete this photo permanently? This cannot be undone."), h("div", { class: "actions" }, confirmYes, confirmNo));
  start.addEventListener("click", () => {
    start.hidden = true;
    confirmBox.hidden = false;
    confirmNo.focus();
  });
  confirmNo.addEventListener("click", () => {
    confirmBox.hidden = true;
    start.hidden = false;
    start.focus();
  });
  confirmYes.addEventListener("click", async () => {
    clearMessages();
    confirmYes.disabled = true;
    try {
      await api(`/photos/${encodeURIComponent(photo.id)}`, { method: "DELETE", auth: true });
      navigate(`/users/${encodeURIComponent(photo.owner)}`);
      announce("Photo deleted.");
    } catch (err) {
      showError(err);
      confirmYes.disabled = false;
    }
  });
  return h("section", { class: "panel", "aria-label": "Delete" }, start, confirmBox);
}
