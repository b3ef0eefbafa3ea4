// "Your data" on one's own profile: download my data (export) and delete my account (erasure).
// Both are plain buttons and forms (keyboard-usable), report progress in a polite live region, and
// wrap to one column at 375 px (.account-data in app.css).
import { h, field, sleep } from "../dom.js";
import { api, ApiError } from "../api.js";
import { session } from "../session.js";
import { announce, clearMessages, showError } from "../ui.js";

const POLL_MS = 1500;
const MAX_POLLS = 400; // ten minutes: then the user is told to come back later

/** The API path of a status URL the server handed out ("/api/..." → "/..."). */
const apiPath = (url) => url.replace(/^\/api(?=\/)/, "");

function exportControl(signal) {
  const button = h("button", { type: "button", class: "btn secondary" }, "Download my data");
  const progress = h("p", { class: "hint", "aria-live": "polite" });
  const result = h("p", {});
  button.addEventListener("click", async () => {
    clearMessages();
    button.disabled = true;
    result.replaceChildren();
    progress.textContent = "Preparing your data…";
    try {
      const job = await api("/me/export", { method: "POST", auth: true });
      for (let poll = 0; poll < MAX_POLLS; poll += 1) {
        const state = await api(apiPath(job.status_url), { auth: true, signal });
        if (state.status === "ready") {
          progress.textContent = "Your data is ready. The link works for 24 hours.";
          result.replaceChildren(h("a", { href: state.download_url, class: "btn primary", download: "photoscale-export.zip" },
            "Download the zip"));
          announce("Your data is ready to download.");
          return;
        }
        if (state.status === "failed") throw new ApiError(500, "export_failed", "The export failed. Please try again.");
        await sleep(POLL_MS);
      }
      progress.textContent = "This is taking a while. Come back later and ask again.";
    } catch (err) {
      if (err && err.name === "AbortError") return;
      progress.textContent = "";
      showError(err, { missingFeature: "Downloading your data" });
    } finally {
      button.disabled = false;
    }
  });
  return h("section", { class: "account-part", "aria-labelledby": "export-title" },
    h("h3", { id: "export-title" }, "Download my data"),
    h("p", {}, "A zip of your profile, your photos (originals with captions, dates and likes), who you follow, who follows you, and the photos you liked."),
    button, progress, result);
}

function deleteControl(navigate) {
  const open = h("button", { type: "button", class: "btn danger", "aria-expanded": "false", "aria-controls": "delete-form" },
    "Delete account");
  const password = field({ label: "Your password", name: "password", type: "password",
    attrs: { autocomplete: "current-password", required: true } });
  const submit = h("button", { type: "submit", class: "btn danger" }, "Permanently delete my account");
  const cancel = h("button", { type: "button", class: "btn secondary" }, "Cancel");
  const progress = h("p", { class: "hint", "aria-live": "polite" });
  const form = h("form", { id: "delete-form", class: "card-form", hidden: true, novalidate: true },
    h("p", { class: "warning", role: "note" },
      h("strong", {}, "This cannot be undone. "),
      "Your profile, every photo, your likes, follows and followers are erased for good, and you are signed out on every device. ",
      "Your username stays unavailable for 30 days. Download your data first if you want a copy."),
    password.wrap, h("div", { class: "actions" }, submit, cancel), progress);
  const toggle = (show) => {
    form.hidden = !show;
    open.setAttribute("aria-expanded", String(show));
    (show ? password.input : open).focus();
  };
  open.addEventListener("click", () => toggle(form.hidden));
  cancel.addEventListener("click", () => toggle(false));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    password.error.hidden = true;
    password.input.removeAttribute("aria-invalid");
    if (!password.input.value) {
      password.error.textContent = "Enter your password to confirm.";
      password.error.hidden = false;
      password.input.setAttribute("aria-invalid", "true");
      password.input.focus();
      return;
    }
    submit.disabled = true;
    cancel.disabled = true;
    try {
      const accepted = await api("/me", { method: "DELETE", auth: true, body: { password: password.input.value } });
      password.input.value = "";
      session.clear(); // every session of this account is over from now on
      progress.textContent = "Your account is locked. Erasing your data…";
      for (let poll = 0; poll < MAX_POLLS; poll += 1) {
        const state = await api(apiPath(accepted.status_url), { auth: false });
        if (state.status === "done") {
          announce("Your account and all its data have been deleted.");
          navigate("/");
          return;
        }
        progress.textContent = `Erasing your data… step ${state.steps_done} of ${state.steps_total}.`;
        await sleep(POLL_MS);
      }
      progress.textContent = "Erasure continues in the background; it will finish without you.";
    } catch (err) {
      submit.disabled = false;
      cancel.disabled = false;
      if (err instanceof ApiError && err.status === 401 && session.signedIn) {
        password.error.textContent = "That password is not right.";
        password.error.hidden = false;
        password.input.setAttribute("aria-invalid", "true");
        password.input.focus();
        return;
      }
      showError(err, { missingFeature: "Deleting your account" });
    }
  });
  return h("section", { class: "account-part", "aria-labelledby": "delete-title" },
    h("h3", { id: "delete-title" }, "Delete account"),
    h("p", {}, "Erase your account and everything in it."),
    open, form);
}

/** The "Your data" section of the signed-in user's own profile. */
export function accountSection({ navigate, signal }) {
  return h("section", { class: "account-data", "aria-labelledby": "account-data-title" },
    h("h2", { id: "account-data-title", class: "section-title" }, "Your data"),
    exportControl(signal), deleteControl(navigate));
}
