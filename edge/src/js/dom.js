// Tiny DOM helpers. Text is always set with textContent (never innerHTML), so user data cannot
// inject markup, and no inline styles or handlers are ever written (strict CSP).

/**
 * h("a", {href: "/x", class: "btn", dataset: {id: 1}, on: {click: fn}}, "text", child)
 * Attribute values of false/null/undefined are skipped; true sets an empty attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "on") {
      for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "vars") {
      // CSS custom properties through the CSSOM: allowed by style-src 'self'.
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    } else if (name === "value" || name === "checked" || name === "selected") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let uid = 0;
/** A unique element id with a readable prefix. */
export function nextId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field; returns {wrap, input, error}. */
export function field({ label, name, type = "text", hint, attrs = {}, multiline = false }) {
  const id = nextId(name);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const input = multiline
    ? h("textarea", { id, name, rows: 3, ...attrs })
    : h("input", { id, name, type, ...attrs });
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const wrap = h("div", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    input,
    error,
  );
  return { wrap, input, error };
}

export function formatCount(n, one, many) {
  const value = Number(n) || 0;
  return `${value.toLocaleString()} ${value === 1 ? one : many}`;
}

export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
