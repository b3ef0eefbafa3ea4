// The signed-in session. Tokens live in sessionStorage: they are scoped to this tab and gone when it
// closes, so a long-lived refresh token is never left on disk of a shared computer and is not
// readable from other tabs' storage events. The cost is signing in again in a new tab.
const KEY = "photoscale.session";
const listeners = new Set();

function read() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || null;
  } catch {
    return null;
  }
}

let current = read();

export const session = {
  get() {
    return current;
  },
  get signedIn() {
    return Boolean(current && current.access_token);
  },
  get username() {
    return current ? current.username : null;
  },
  set(value) {
    current = value;
    if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
    else sessionStorage.removeItem(KEY);
    for (const fn of listeners) fn(current);
  },
  update(patch) {
    this.set({ ...(current || {}), ...patch });
  },
  clear() {
    this.set(null);
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};
