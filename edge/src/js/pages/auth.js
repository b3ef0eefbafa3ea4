// Sign up and log in.
import { h, field } from "../dom.js";
import { api } from "../api.js";
import { session } from "../session.js";
import { showError, announce, clearMessages } from "../ui.js";

async function logInWith(username, password) {
  const tokens = await api("/auth/login", { method: "POST", body: { username, password }, auth: false });
  session.set({
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_in: tokens.expires_in,
    username: username.trim().toLowerCase(),
  });
  try {
    const me = await api("/me", { auth: true });
    if (me && me.username) session.update({ username: me.username, display_name: me.display_name });
  } catch {
    /* the username typed is good enough */
  }
}

function safeNext(query) {
  const next = query.get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/feed";
}

function busy(button, on, label) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
  if (label) button.textContent = label;
}

export const login = {
  async render(main, { query, navigate }) {
    const username = field({ label: "Username", name: "username", attrs: { autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" } });
    const password = field({ label: "Password", name: "password", type: "password", attrs: { autocomplete: "current-password", required: true } });
    const submit = h("button", { type: "submit", class: "btn primary" }, "Log in");
    const form = h("form", { class: "card-form", novalidate: true },
      username.wrap, password.wrap, submit,
      h("p", {}, "New here? ", h("a", { href: "/signup", "data-link": true }, "Create an account"), "."),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearMessages();
      if (!username.input.value.trim() || !password.input.value) {
        showError(new Error("Enter your username and password."));
        return;
      }
      busy(submit, true);
      try {
        await logInWith(username.input.value, password.input.value);
        navigate(safeNext(query), { replace: true });
        announce(`Logged in as ${session.username}.`);
      } catch (err) {
        showError(err, { fields: { username, password } });
        busy(submit, false);
      }
    });
    main.append(h("section", { class: "narrow" }, h("h1", {}, "Log in"), form));
    return "Log in";
  },
};

export const signup = {
  async render(main, { navigate }) {
    const username = field({ label: "Username", name: "username", hint: "3–30 letters, digits or underscores.", attrs: { autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false", maxlength: 30 } });
    const email = field({ label: "Email", name: "email", type: "email", attrs: { autocomplete: "email", required: true } });
    const password = field({ label: "Password", name: "password", type: "password", hint: "At least 8 characters with a lowercase letter, an uppercase letter and a digit.", attrs: { autocomplete: "new-password", required: true } });
    const submit = h("button", { type: "submit", class: "btn primary" }, "Sign up");
    const form = h("form", { class: "card-form", novalidate: true },
      username.wrap, email.wrap, password.wrap, submit,
      h("p", {}, "Already have an account? ", h("a", { href: "/login", "data-link": true }, "Log in"), "."),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearMessages();
      busy(submit, true);
      const body = { username: username.input.value.trim(), email: email.input.value.trim(), password: password.input.value };
      try {
        await api("/auth/signup", { method: "POST", body, auth: false });
      } catch (err) {
        showError(err, { fields: { username, email, password } });
        busy(submit, false);
        return;
      }
      try {
        await logInWith(body.username, body.password);
        navigate("/feed", { replace: true });
        announce(`Welcome to Photoscale, ${session.username}!`);
      } catch (err) {
        // Signed up but not logged in (e.g. confirmation required): send them to log in.
        navigate("/login", { replace: true });
        showError(err);
      }
    });
    main.append(h("section", { class: "narrow" }, h("h1", {}, "Sign up"), form));
    return "Sign up";
  },
};
