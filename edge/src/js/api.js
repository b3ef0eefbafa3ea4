// The API client: JSON in and out, Bearer tokens, one refresh attempt on 401, errors as ApiError.
import { session } from "./session.js";

export const API = "/api";

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
    this.retryAfter = retryAfter; // seconds from a 429's / 503's Retry-After, else null
  }

  /**
   * True when the route itself does not exist (yet): a feature still being built. API Gateway (and
   * chalice local) answer an unknown route with the generic 404 "not_found", or 403 "forbidden" when
   * the request carries a token; domain errors have their own specific codes.
   */
  get missingRoute() {
    return (this.status === 404 && this.code === "not_found") || (this.status === 403 && this.code === "forbidden");
  }
}

const FALLBACK = {
  0: "The server could not be reached. Check your connection and try again.",
  400: "The request was not accepted.",
  401: "Please log in again.",
  403: "You are not allowed to do that.",
  404: "That could not be found.",
  409: "That conflicts with something that already exists.",
  413: "That is too large.",
  429: "Too many requests; wait a moment and try again.",
  500: "Something went wrong on our side. Please try again.",
  502: "The service is unavailable right now. Please try again.",
  503: "The service is unavailable right now. Please try again.",
};

/** "Try again in 5 seconds." / "in 3 minutes" / "in 2 hours" for a Retry-After of ``seconds``. */
export function retryAfterWords(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds < 60) return `Try again in ${plural(seconds, "second")}.`;
  if (seconds < 3600) return `Try again in ${plural(Math.ceil(seconds / 60), "minute")}.`;
  return `Try again in ${plural(Math.ceil(seconds / 3600), "hour")}.`;
}

export async function toError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  const header = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const retryAfter = Number.isFinite(header) && header >= 0 ? header : null;
  const err = body && body.error;
  let code = "error";
  let message;
  let details;
  if (err && typeof err === "object") {
    code = err.code || "error";
    message = err.message || FALLBACK[response.status] || "Request failed.";
    details = err.details;
  } else {
    message = (body && (body.message || body.Message)) || FALLBACK[response.status] || `Request failed (${response.status}).`;
  }
  if (response.status === 429 && retryAfter !== null) {
    if (message === FALLBACK[429]) message = "Too many requests.";
    message = `${message} ${retryAfterWords(retryAfter)}`;
  }
  return new ApiError(response.status, code, message, details, retryAfter);
}

let refreshing = null;
let onSessionExpired = () => {};

/** Called when the session cannot be refreshed (the app sends the user to /login). */
export function setSessionExpiredHandler(fn) {
  onSessionExpired = fn;
}

async function refreshOnce() {
  const current = session.get();
  if (!current || !current.refresh_token) return false;
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const response = await fetch(`${API}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh_token: current.refresh_token }),
        });
        if (!response.ok) return false;
        const tokens = await response.json();
        session.update({ access_token: tokens.access_token, expires_in: tokens.expires_in });
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => { refreshing = null; }, 0);
      }
    })();
  }
  return refreshing;
}

/**
 * api("/photos/1") → parsed JSON (or null for 204). Options: method, body (JSON), auth (send the
 * token; default: when signed in), signal.
 */
export async function api(path, { method = "GET", body, auth, signal, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const useAuth = auth ?? session.signedIn;
  if (useAuth && session.signedIn) headers.Authorization = `Bearer ${session.get().access_token}`;
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", FALLBACK[0]);
  }
  if (response.status === 401 && useAuth && !retried) {
    if (await refreshOnce()) return api(path, { method, body, auth, signal, retried: true });
    session.clear();
    onSessionExpired();
    throw new ApiError(401, "unauthorized", "Your session has ended. Please log in again.");
  }
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * POST a file to a presigned S3 POST with progress: all `fields` first, the file last.
 * XMLHttpRequest (not fetch) because only it reports upload progress.
 */
export function uploadToS3(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields || {})) form.append(name, value);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        const match = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
        reject(new ApiError(xhr.status, "upload_failed",
          `The storage service refused the upload (HTTP ${xhr.status})${match ? `: ${match[1]}` : "."}`));
      }
    });
    xhr.addEventListener("error", () => {
      reject(new ApiError(0, "upload_blocked",
        "The upload could not reach the storage service (network error or a cross-origin (CORS) refusal)."));
    });
    xhr.addEventListener("abort", () => reject(new ApiError(0, "upload_aborted", "The upload was cancelled.")));
    xhr.send(form);
  });
}

/**
 * End the session on the server, then here. `everywhere`: every session of the user on every
 * device (POST /auth/logout-all); otherwise this one, handing back its refresh token so it can
 * mint no more access tokens. The local session ends whatever the server said.
 */
export async function signOut({ everywhere = false } = {}) {
  const current = session.get();
  try {
    if (everywhere) {
      await api("/auth/logout-all", { method: "POST", auth: true });
    } else {
      const body = current && current.refresh_token ? { refresh_token: current.refresh_token } : undefined;
      await api("/auth/logout", { method: "POST", auth: true, body });
    }
  } catch (err) {
    if (everywhere && !(err && err.status === 401)) throw err; // other devices may still be signed in
    if (!(err && err.status === 401)) console.warn("logout:", err && err.message);
  }
  session.clear();
}
