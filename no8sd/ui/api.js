// Talking to the daemon: same-origin fetch only, JSON bodies, and the bearer token kept
// in sessionStorage (gone when the tab closes; never in a URL, never in a cookie).

const TOKEN_KEY = "no8sd.token";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  // Called when the daemon answers 401 to a logged-in page (token expired or revoked).
  onUnauthorized: null,
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function authHeaders(extra = {}) {
  const headers = {...extra};
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

// Call the API; resolve with the parsed JSON (null for 204), reject with an ApiError
// carrying the daemon's {"detail": ...} or a network error described in words.
export async function api(path, {method = "GET", body, signal} = {}) {
  const headers = authHeaders({Accept: "application/json"});
  const init = {method, headers, signal, cache: "no-store", credentials: "same-origin",
                redirect: "error", referrerPolicy: "no-referrer"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The daemon cannot be reached");
  }
  if (response.status === 204) return null;
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail
      : `${response.status} ${response.statusText}`;
    if (response.status === 401 && session.token && session.onUnauthorized) {
      session.onUnauthorized(detail);
    }
    throw new ApiError(response.status, detail);
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Run `fn` at most once per `gap` ms (and never twice at once); calls that come in
// meanwhile are folded into one more run. The gap grows with how long `fn` takes, so a
// slow daemon (a big table) is asked less often.
export function throttled(fn, gap = 1000) {
  let running = false;
  let again = false;
  let timer = null;
  let last = 0;
  let took = 0;
  async function run() {
    timer = null;
    running = true;
    again = false;
    const started = performance.now();
    try {
      await fn();
    } finally {
      took = performance.now() - started;
      last = performance.now();
      running = false;
      if (again) schedule();
    }
  }
  function schedule() {
    if (running) {
      again = true;
      return;
    }
    if (timer !== null) return;
    const wait = Math.max(0, Math.max(gap, took * 10) - (performance.now() - last));
    timer = setTimeout(run, wait);
  }
  schedule.now = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (running) again = true;
    else run();
  };
  schedule.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    again = false;
  };
  return schedule;
}
