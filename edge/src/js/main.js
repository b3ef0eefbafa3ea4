// Entry point: client-side routing (history.pushState), navigation, page lifecycle.
import { h, clear } from "./dom.js";
import { setSessionExpiredHandler, signOut } from "./api.js";
import { session } from "./session.js";
import { clearMessages, showAlert, describeError, announce } from "./ui.js";
import * as auth from "./pages/auth.js";
import * as feed from "./pages/feed.js";
import * as upload from "./pages/upload.js";
import * as photo from "./pages/photo.js";
import * as profile from "./pages/profile.js";

const ROUTES = [
  { pattern: /^\/$/, page: { render: home } },
  { pattern: /^\/login$/, page: auth.login, guest: true },
  { pattern: /^\/signup$/, page: auth.signup, guest: true },
  { pattern: /^\/feed$/, page: feed, auth: true },
  { pattern: /^\/upload$/, page: upload, auth: true },
  { pattern: /^\/photos\/([^/]+)$/, page: photo, keys: ["id"] },
  { pattern: /^\/users\/([^/]+)$/, page: profile.profile, keys: ["username"] },
  { pattern: /^\/users\/([^/]+)\/(followers|following)$/, page: profile.connections, keys: ["username", "kind"] },
];

let pageController = null;
let disposers = [];

export function navigate(path, { replace = false } = {}) {
  const url = new URL(path, location.origin);
  if (url.origin !== location.origin) {
    location.assign(url);
    return;
  }
  if (replace) history.replaceState({}, "", url.pathname + url.search + url.hash);
  else history.pushState({}, "", url.pathname + url.search + url.hash);
  render({ focus: true });
}

function home() {
  navigate(session.signedIn ? "/feed" : "/login", { replace: true });
  return null;
}

async function render({ focus = false } = {}) {
  if (pageController) pageController.abort();
  for (const fn of disposers) {
    try { fn(); } catch { /* ignore */ }
  }
  disposers = [];
  pageController = new AbortController();
  const { signal } = pageController;
  clearMessages();
  renderNav();
  const main = document.getElementById("main");
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const query = new URLSearchParams(location.search);
  const route = ROUTES.find((r) => r.pattern.test(path));
  if (!route) {
    clear(main).append(
      h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", {}, "There is nothing at this address. ", h("a", { href: "/", "data-link": true }, "Go home"), "."),
    );
    document.title = "Not found · Photoscale";
    if (focus) focusHeading(main);
    return;
  }
  if (route.auth && !session.signedIn) {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  if (route.guest && session.signedIn) {
    navigate(query.get("next") || "/feed", { replace: true });
    return;
  }
  const match = route.pattern.exec(path);
  const params = {};
  (route.keys || []).forEach((key, i) => { params[key] = decodeURIComponent(match[i + 1]); });
  clear(main);
  try {
    const title = await route.page.render(main, {
      params, query, signal, navigate, onDispose: (fn) => disposers.push(fn),
    });
    if (signal.aborted) return;
    if (title !== null) document.title = title ? `${title} · Photoscale` : "Photoscale";
  } catch (err) {
    if (signal.aborted || (err && err.name === "AbortError")) return;
    clear(main).append(h("h1", { tabindex: "-1" }, "Something went wrong"), h("p", {}, describeError(err)));
    showAlert(describeError(err));
  }
  if (focus && !signal.aborted) focusHeading(main);
}

function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading) {
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function renderNav() {
  const nav = document.getElementById("nav");
  const here = location.pathname;
  const link = (href, text) => h("a", { href, "data-link": true, "aria-current": here === href ? "page" : false }, text);
  const items = session.signedIn
    ? [
      link("/feed", "Feed"),
      link("/upload", "Upload photo"),
      link(`/users/${encodeURIComponent(session.username || "")}`, "Profile"),
      h("button", { type: "button", class: "btn link-btn", on: { click: logOut } }, "Log out"),
    ]
    : [link("/login", "Log in"), link("/signup", "Sign up")];
  clear(nav).append(h("ul", {}, items.map((item) => h("li", {}, item))));
}

async function logOut() {
  await signOut(); // the session ends locally either way
  navigate("/login");
  announce("You have logged out.");
}

setSessionExpiredHandler(() => {
  const next = location.pathname + location.search;
  navigate(next.startsWith("/login") ? "/login" : `/login?next=${encodeURIComponent(next)}`, { replace: true });
  showAlert("Your session has ended. Please log in again.");
});

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.target.closest("a[data-link]");
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
  const url = new URL(anchor.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname + url.search === location.pathname + location.search) return;
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener("popstate", () => render({ focus: true }));
render();
