// The status page's entry point: session (login, logout), the live event stream, the
// connection indicator and the router that mounts one view at a time.
//
// A view module exports mount(container, params, app) and returns a controller:
// {update(params) -> bool (true: handled in place), refresh(), onEvent(event), destroy()}.

import {api, session} from "./api.js";
import {append, clear, fill, h, icon, refreshTimes} from "./dom.js";
import {loginView} from "./login.js";
import * as overview from "./overview.js";
import * as resource from "./resource.js";
import * as resources from "./resources.js";
import {EventStream} from "./stream.js";
import * as types from "./types.js";

const VIEWS = {overview, resources, resource, types};
const $ = (id) => document.getElementById(id);
const main = $("main");

const app = {
  me: null,
  stream: null,
  view: null,
  viewName: null,
  online: false,

  // The operations the caller may do on a type/version, as the daemon answered them.
  can(operation, typeName, version) {
    const entry = (this.me?.resource_types || []).find(
      (t) => t.name === typeName && t.version === version);
    return Boolean(entry && entry.operations.includes(operation));
  },

  hasSystem(permission) {
    return Boolean(this.me?.system_permissions.includes(permission));
  },

  async reloadPermissions() {
    this.me = await api("/api/v1/auth/permissions");
    showWho();
  },

  toast(text, kind = "info") {
    const toast = $("toast");
    fill(toast, icon(kind === "error" ? "warn" : "ok"), " ", text);
    toast.className = `toast ${kind}`;
    toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { toast.hidden = true; }, 5000);
  },
};

// ---- routes: #/  #/resources?...  #/resources/42  #/types  #/types/Name/v1 ----------

function parseRoute() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const params = Object.fromEntries(new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1)));
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return {name: "missing", params};
  }
  if (parts.length === 0) return {name: "overview", params};
  if (parts[0] === "resources" && parts.length === 1) return {name: "resources", params};
  if (parts[0] === "resources" && parts.length === 2 && /^\d{1,19}$/.test(parts[1])) {
    return {name: "resource", params: {id: parts[1]}};
  }
  if (parts[0] === "types" && parts.length === 1) return {name: "types", params: {}};
  if (parts[0] === "types" && parts.length === 3) {
    return {name: "types", params: {name: parts[1], version: parts[2]}};
  }
  return {name: "missing", params};
}

function route() {
  if (!app.me) return;
  const {name, params} = parseRoute();
  for (const a of $("nav").querySelectorAll("a")) {
    const current = a.dataset.view === name || (a.dataset.view === "resources" && name === "resource");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (app.view && app.viewName === name && app.view.update && app.view.update(params)) return;
  if (app.view) app.view.destroy?.();
  app.view = null;
  clear(main);
  app.viewName = name;
  if (name === "missing") {
    document.title = "Not found · no8sd";
    append(main, h("h1", {}, "No such page"), h("p", {}, h("a", {href: "#/"}, "Back to the overview")));
  } else {
    app.view = VIEWS[name].mount(main, params, app);
  }
  main.focus({preventScroll: true});
  window.scrollTo(0, 0);
}

// ---- connection state -----------------------------------------------------------------

function showConnection(state) {
  const conn = $("conn");
  const banner = $("banner");
  const labels = {live: ["live", "Live"], connecting: ["offline", "Connecting…"],
                  offline: ["offline", "Offline"]};
  const [glyph, text] = labels[state];
  fill(conn, icon(glyph), h("span", {}, text));
  conn.className = `conn ${state}`;
  conn.title = state === "live" ? "Receiving changes as they happen" : "Not receiving changes";
  app.online = state === "live";
  if (state === "offline") {
    fill(banner, icon("warn"), " ",
      "The connection to no8sd is lost. Reconnecting… the page catches up by itself.");
    banner.hidden = false;
    document.body.classList.add("is-offline");
  } else if (state === "live") {
    banner.hidden = true;
    document.body.classList.remove("is-offline");
  }
}

function onEvent(event) {
  if (event.type === "GAP") {
    // The daemon no longer has every event since the last one seen: read afresh.
    app.view?.refresh?.();
    return;
  }
  if (!event.data || typeof event.data !== "object") return;
  app.view?.onEvent?.(event);
}

async function onStreamState(state, {resumed}) {
  showConnection(state);
  if (state !== "live") return;
  if (resumed) {
    // Back after a drop or a daemon restart: the stream replays what was missed, and the
    // caller's rights may have changed meanwhile.
    try {
      await app.reloadPermissions();
    } catch {
      return;
    }
  }
  // Read the view again once the stream is connected, so a change made between the
  // view's first read and the stream's start is not missed.
  app.view?.refresh?.();
}

// ---- session --------------------------------------------------------------------------

function showWho() {
  const me = app.me;
  const token = me.authentication === "token";
  $("who").textContent = token ? `${me.username}${me.is_admin ? " · admin" : ""}`
                               : "authentication off";
  $("logout").hidden = !token;
}

function stopEverything() {
  app.stream?.stop();
  app.stream = null;
  app.view?.destroy?.();
  app.view = null;
  app.viewName = null;
  app.me = null;
  $("top").hidden = true;
  $("banner").hidden = true;
  document.body.classList.remove("is-offline");
}

function showLogin(message) {
  stopEverything();
  clear(main);
  document.title = "Log in · no8sd";
  append(main, loginView({message, onLogin(token) {
    session.token = token;
    boot();
  }}));
}

async function logout() {
  try {
    await api("/api/v1/auth/logout", {method: "POST"});
  } catch {
    // The token is forgotten here either way.
  }
  session.token = null;
  showLogin("You are logged out.");
}

async function boot() {
  let waitMore = 1000;
  for (;;) {
    try {
      app.me = await api("/api/v1/auth/permissions");
      break;
    } catch (error) {
      if (error.status === 401) {
        session.token = null;
        if (!main.querySelector("form.login")) showLogin();
        return;
      }
      fill(main, h("p", {class: "error", role: "alert"}, icon("warn"), " ",
                             `${error.message}. Trying again…`));
      await new Promise((resolve) => setTimeout(resolve, waitMore));
      waitMore = Math.min(waitMore * 2, 5000);
    }
  }
  $("top").hidden = false;
  showWho();
  app.stream = new EventStream({
    onEvent,
    onState: onStreamState,
    onUnauthorized: () => session.onUnauthorized("the daemon no longer accepts this login"),
  });
  app.stream.start();
  route();
}

session.onUnauthorized = (detail) => {
  session.token = null;
  if (main.querySelector("form.login")) return;
  showLogin(`Please log in again (${detail}).`);
};
$("logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
setInterval(() => refreshTimes(main), 10000);
boot();
