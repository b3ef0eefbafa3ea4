// Crop geometry of the edit panel (pure: no DOM). Every edit is rendered from the original, so a
// crop is given in the original's pixels (photo.frame), never in the current version's: the
// current version may already be cropped (and turned). The preview therefore shows the original's
// frame, places the current version where it lies in it (photo.edits.crop, turned back by
// photo.edits.rotate), and draws the crop box in the frame's coordinates.

/** The original's size, the space every crop is in (the current size for photos without a frame). */
export function editFrame(photo) {
  const frame = photo.frame;
  if (frame && frame.width > 0 && frame.height > 0) return { width: frame.width, height: frame.height };
  return { width: photo.width || 1, height: photo.height || 1 };
}

/** The crop the current version was rendered with, in the frame's pixels (the whole frame if none). */
export function currentCrop(photo) {
  const crop = photo.edits && photo.edits.crop;
  if (crop) return { x: crop.x, y: crop.y, width: crop.width, height: crop.height };
  const frame = editFrame(photo);
  return { x: 0, y: 0, width: frame.width, height: frame.height };
}

/** The clockwise turn (0, 90, 180, 270) the current version was rendered with. */
export function currentRotation(photo) {
  const turn = Number(photo.edits && photo.edits.rotate) || 0;
  return ((turn % 360) + 360) % 360;
}

/** A crop box as fractions of the frame (0..1): where to draw it over the frame. */
export function boxFractions(box, frame) {
  return { left: box.x / frame.width, top: box.y / frame.height, width: box.width / frame.width, height: box.height / frame.height };
}

/**
 * Where the current version's image goes in the preview of the frame: its box (fractions of the
 * frame), the turn that undoes its rotation, and the image's size as fractions of that box (a
 * quarter turn swaps its sides).
 */
export function currentPlacement(photo) {
  const frame = editFrame(photo);
  const crop = currentCrop(photo);
  const turn = currentRotation(photo);
  const quarter = turn === 90 || turn === 270;
  return {
    ...boxFractions(crop, frame),
    unrotate: (360 - turn) % 360,
    imageWidth: quarter ? crop.height / crop.width : 1,
    imageHeight: quarter ? crop.width / crop.height : 1,
  };
}

/** The crop box clamped inside the frame (fields may hold anything while the user types). */
export function clampCrop(box, frame) {
  const x = Math.max(0, Math.min(frame.width, box.x || 0));
  const y = Math.max(0, Math.min(frame.height, box.y || 0));
  const width = Math.max(0, Math.min(frame.width - x, Number.isNaN(box.width) ? frame.width : box.width));
  const height = Math.max(0, Math.min(frame.height - y, Number.isNaN(box.height) ? frame.height : box.height));
  return { x, y, width, height };
}

/** Whether a box covers the whole frame (then no crop is sent). */
export function isWholeFrame(box, frame) {
  return box.x === 0 && box.y === 0 && box.width === frame.width && box.height === frame.height;
}

/** Whether two edit sets render the same version (key order aside). */
export function sameEdits(a, b) {
  const canonical = (value) => (value && typeof value === "object"
    ? `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`
    : JSON.stringify(value));
  return canonical(a || {}) === canonical(b || {});
}
