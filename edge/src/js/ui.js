// Shared UI: announcements, error display, photo pictures and cards, infinite lists, polling.
import { h, clear, formatCount, sleep } from "./dom.js";
import { ApiError } from "./api.js";

const statusEl = () => document.getElementById("status");
const alertEl = () => document.getElementById("alert");

/** Polite status message (screen readers announce it; sighted users see it in the banner). */
export function announce(message) {
  const el = statusEl();
  el.textContent = "";
  // A fresh text node makes repeated identical messages announce again.
  requestAnimationFrame(() => { el.textContent = message || ""; });
}

export function showAlert(message) {
  const el = alertEl();
  el.textContent = message || "";
}

export function clearMessages() {
  statusEl().textContent = "";
  alertEl().textContent = "";
}

/** Words for an error, with field details appended. */
export function describeError(err, { missingFeature } = {}) {
  if (err instanceof ApiError) {
    if (err.missingRoute && missingFeature) return `${missingFeature} isn't available yet. Please try again later.`;
    const parts = err.details
      .filter((d) => d && d.message)
      .map((d) => (d.field && d.field !== "body" ? `${humanField(d.field)}: ${d.message}` : d.message));
    if (parts.length) return `${plainMessage(err.message)} ${parts.join(". ")}.`;
    return err.message;
  }
  return (err && err.message) || "Something went wrong.";
}

function plainMessage(message) {
  // "Invalid request: a: b; c: d" repeats the details; keep only the lead-in.
  const index = message.indexOf(":");
  return index > 0 && message.startsWith("Invalid") ? `${message.slice(0, index)}.` : message;
}

export function humanField(name) {
  const text = String(name).replace(/[._]/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Show an error: the alert region gets the words, and each field named in details gets its own
 * message next to the input (aria-invalid + aria-describedby). `fields` maps API field → {input, error}.
 */
export function showError(err, { fields = {}, missingFeature } = {}) {
  for (const f of Object.values(fields)) {
    f.input.removeAttribute("aria-invalid");
    f.error.hidden = true;
    f.error.textContent = "";
  }
  let focused = false;
  if (err instanceof ApiError) {
    for (const detail of err.details) {
      const f = fields[detail.field];
      if (!f) continue;
      f.input.setAttribute("aria-invalid", "true");
      f.error.hidden = false;
      f.error.textContent = `${humanField(detail.field)} ${detail.message}.`.replace(/\.\.$/, ".");
      if (!focused) {
        f.input.focus();
        focused = true;
      }
    }
  }
  showAlert(describeError(err, { missingFeature }));
}

// --- photos ----------------------------------------------------------------------------------

const ORDER = ["thumb", "medium", "large"];

/** A stable, pleasant placeholder colour from the photo id (shown until the image paints). */
export function placeholderColour(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  const hue = Math.abs(hash) % 360;
  return `hsl(${hue} 28% 78%)`;
}

function srcset(urls, sizes) {
  return ORDER.filter((n) => urls && urls[n] && sizes[n])
    .map((n) => `${urls[n]} ${sizes[n].width}w`)
    .join(", ");
}

/**
 * <picture> for a ready photo: a webp <source> when the API has webp renditions, an <img> with
 * srcset/sizes over every rendition, intrinsic width/height (no layout shift) and a colour placeholder.
 */
export function photoPicture(photo, { sizes = "100vw", lazy = true, alt, className = "" } = {}) {
  const rs = photo.rendition_sizes || {};
  const renditions = photo.renditions || {};
  const biggest = ORDER.slice().reverse().find((n) => rs[n]) || null;
  const width = (biggest && rs[biggest].width) || photo.width || 4;
  const height = (biggest && rs[biggest].height) || photo.height || 3;
  const fallback = renditions.medium || renditions.large || renditions.thumb;
  const picture = h("picture", {
    class: `photo ${className}`.trim(),
    vars: { "--ph": placeholderColour(photo.id), "--ar": (width / height).toFixed(4) },
  });
  if (photo.webp && Object.keys(photo.webp).length) {
    picture.append(h("source", { type: "image/webp", srcset: srcset(photo.webp, rs), sizes }));
  }
  const img = h("img", {
    src: fallback,
    srcset: srcset(renditions, rs),
    sizes,
    width,
    height,
    alt: alt ?? (photo.caption ? photo.caption : `Photo by ${photo.owner}`),
    loading: lazy ? "lazy" : "eager",
    decoding: "async",
  });
  if (!lazy) img.setAttribute("fetchpriority", "high");
  const painted = () => picture.classList.add("loaded");
  img.addEventListener("load", painted, { once: true });
  img.addEventListener("error", painted, { once: true }); // show the browser's broken-image cue, not nothing
  picture.append(img);
  if (img.complete && img.naturalWidth) painted();
  return picture;
}

export const GRID_SIZES = "(max-width: 480px) 50vw, (max-width: 900px) 33vw, 300px";

/** A grid card linking to the photo page. */
export function photoCard(photo, { lazy = true, showOwner = true } = {}) {
  const label = photo.caption ? photo.caption : `Photo by ${photo.owner}`;
  return h("li", { class: "card" },
    h("a", { href: `/photos/${encodeURIComponent(photo.id)}`, "data-link": true, class: "card-link" },
      photoPicture(photo, { sizes: GRID_SIZES, lazy, alt: label }),
    ),
    h("div", { class: "card-meta" },
      showOwner ? h("a", { href: `/users/${encodeURIComponent(photo.owner)}`, "data-link": true, class: "owner" }, `@${photo.owner}`) : null,
      h("span", { class: "likes" }, formatCount(photo.likes, "like", "likes")),
    ),
  );
}

/**
 * An infinite list: loads the first page, then the next whenever the sentinel scrolls into view
 * (IntersectionObserver), following `next_cursor` until it is null. A "Load more" button is the
 * keyboard/no-observer fallback. Returns {element, dispose}.
 */
export function infiniteList({ load, renderItem, listClass = "grid", empty, label, onError, eagerCount = 0 }) {
  const list = h("ul", { class: listClass, "aria-label": label });
  const more = h("button", { type: "button", class: "btn secondary", hidden: true }, "Load more");
  const state = h("p", { class: "list-state", "aria-live": "polite" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const element = h("div", { class: "infinite" }, list, state, more, sentinel);
  let cursor = null;
  let done = false;
  let busy = false;
  let count = 0;
  let disposed = false;

  async function next() {
    if (busy || done || disposed) return;
    busy = true;
    state.textContent = "Loading…";
    more.hidden = true;
    try {
      const page = await load(cursor);
      if (disposed) return;
      for (const item of page.items || []) {
        list.append(renderItem(item, { lazy: count >= eagerCount, index: count }));
        count += 1;
      }
      cursor = page.next_cursor || null;
      done = !cursor;
      state.textContent = count === 0 ? empty : "";
      more.hidden = done;
    } catch (err) {
      state.textContent = "";
      done = true;
      if (onError) onError(err, state);
      else state.textContent = describeError(err);
    } finally {
      busy = false;
    }
    // Still visible after rendering (short page): keep going.
    if (!done && !disposed && isNearViewport(sentinel)) next();
  }

  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) next();
    }, { rootMargin: "600px 0px" })
    : null;
  if (observer) observer.observe(sentinel);
  more.addEventListener("click", next);
  next();
  return {
    element,
    dispose() {
      disposed = true;
      if (observer) observer.disconnect();
    },
  };
}

function isNearViewport(el) {
  const rect = el.getBoundingClientRect();
  return rect.top < window.innerHeight + 600;
}

/**
 * Poll `fetchOnce` until `done(value)` is true; delays grow from 500 ms to 3 s. Stops (returning null)
 * when `signal` aborts. Errors are retried a few times, then thrown.
 */
export async function poll(fetchOnce, done, { signal, timeoutMs = 180000 } = {}) {
  const started = Date.now();
  let delay = 500;
  let failures = 0;
  while (!signal || !signal.aborted) {
    try {
      const value = await fetchOnce();
      failures = 0;
      if (done(value)) return value;
    } catch (err) {
      failures += 1;
      if (failures >= 4 || (err instanceof ApiError && err.status === 404)) throw err;
    }
    if (Date.now() - started > timeoutMs) throw new Error("This is taking longer than expected. Reload the page to check again.");
    await sleep(delay);
    delay = Math.min(3000, Math.round(delay * 1.5));
  }
  return null;
}

export function loadingBlock(text = "Loading…") {
  return h("p", { class: "loading" }, text);
}

export function replace(el, ...children) {
  clear(el);
  children.forEach((c) => c && el.append(c));
}
