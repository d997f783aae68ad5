// Building the page: elements from data, always through text nodes and properties,
// never from HTML strings (the Content-Security-Policy's Trusted Types would refuse an
// HTML string anyway). Also the shared pieces: icons, state badges, times, JSON blocks.

const SVG = "http://www.w3.org/2000/svg";

// h("a", {href: "#/", class: "x", on: {click: fn}}, "text", child, [more]) -> element.
// Strings and numbers become text nodes; null, undefined, false and "" are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value; // booleans and numbers: disabled, hidden, tabIndex, value ...
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  return append(el, ...children);
}

// Add children (nested arrays are flattened; null, undefined, false and "" are skipped;
// anything else that is not a node becomes a text node, never markup).
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// Replace an element's children.
export function fill(el, ...children) {
  return append(clear(el), ...children);
}

// ---- icons: small stroked SVGs, drawn with currentColor so they follow the text --------

const ICONS = {
  ok: ["M5 12.5l4.5 4.5L19 7.5"],
  fail: ["M7 7l10 10", "M17 7L7 17"],
  pending: ["M12 7.5V12l3 2", "C12 12 8.5"],
  reconciling: ["M19 12a7 7 0 1 1-2.05-4.95", "M19.5 4.5v4h-4"],
  deleting: ["M5 7h14", "M10 7V4.5h4V7", "M7 7l1 12.5h8L17 7"],
  unknown: ["M9.5 9.5a2.5 2.5 0 1 1 3.6 2.25c-.7.35-1.1.9-1.1 1.65V14", "M12 17.5v.01",
            "C12 12 8.5"],
  warn: ["M12 4L3 19.5h18z", "M12 10v4", "M12 17v.01"],
  live: ["F12 12 4.5"],
  offline: ["C12 12 4.5"],
  plug: ["M9 3.5v4", "M15 3.5v4", "M6.5 7.5h11v3a5.5 5.5 0 0 1-11 0z", "M12 16v4.5"],
  stop: ["M7.5 7.5h9v9h-9z"],
};

export function icon(name, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name in ICONS ? name : "unknown"}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  for (const d of ICONS[name] || ICONS.unknown) {
    let part;
    if (d[0] === "C" || d[0] === "F") { // "C cx cy r": a circle; "F ...": a filled one
      const [cx, cy, r] = d.slice(1).trim().split(/\s+/);
      part = document.createElementNS(SVG, "circle");
      part.setAttribute("cx", cx);
      part.setAttribute("cy", cy);
      part.setAttribute("r", r);
      if (d[0] === "F") part.setAttribute("class", "filled");
    } else {
      part = document.createElementNS(SVG, "path");
      part.setAttribute("d", d);
    }
    svg.append(part);
  }
  return svg;
}

// ---- states: an icon and a word, coloured as well, never colour alone ------------------

const STATUSES = {
  ready: ["ok", "Ready"],
  failed: ["fail", "Failed"],
  pending: ["pending", "Pending"],
  reconciling: ["reconciling", "Reconciling"],
  deleting: ["deleting", "Deleting"],
};

export function known(value, allowed, fallback = "unknown") {
  return Object.prototype.hasOwnProperty.call(allowed, value) ? value : fallback;
}

export function statusBadge(status) {
  const key = known(status, STATUSES);
  const [glyph, label] = STATUSES[key] || ["unknown", String(status)];
  return h("span", {class: `badge tone-${key}`}, icon(glyph), h("span", {}, label));
}

const CONDITION_TONES = {True: "ready", False: "failed", Unknown: "pending"};

// A condition's status with the right reading: Degraded=True is bad, Ready=True is good.
export function conditionBadge(condition) {
  if (!condition) return h("span", {class: "badge tone-unknown"}, icon("unknown"), "—");
  const status = String(condition.status);
  let tone = CONDITION_TONES[status] || "unknown";
  if (condition.type === "Degraded" || condition.type === "Reconciling") {
    tone = status === "True" ? (condition.type === "Degraded" ? "failed" : "reconciling")
      : status === "False" ? "neutral" : "pending";
  }
  const glyph = {ready: "ok", failed: "fail", pending: "unknown", reconciling: "reconciling",
                 neutral: "ok"}[tone] || "unknown";
  return h("span", {class: `badge tone-${tone}`}, icon(glyph), h("span", {}, status));
}

// ---- numbers and times --------------------------------------------------------------

const numbers = new Intl.NumberFormat();

export function count(n) {
  return numbers.format(n);
}

export function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}

const UNITS = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];

export function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  for (let i = 0; i < UNITS.length; i++) {
    const [unit, size] = UNITS[i];
    if (seconds >= size || unit === "s") {
      const whole = Math.floor(seconds / size);
      const rest = i + 1 < UNITS.length ? Math.floor((seconds % size) / UNITS[i + 1][1]) : 0;
      return rest && whole < 10 ? `${whole}${unit} ${rest}${UNITS[i + 1][0]}`
                                : `${whole}${unit}`;
    }
  }
  return "0s";
}

// "5m ago" / "in 2m": relative to now; refreshed by refreshTimes().
export function relative(iso) {
  if (!iso) return "—";
  const delta = (Date.parse(iso) - Date.now()) / 1000;
  if (Math.abs(delta) < 1.5) return "now";
  return delta < 0 ? `${duration(-delta)} ago` : `in ${duration(delta)}`;
}

export function age(iso) {
  if (!iso) return "—";
  return duration((Date.now() - Date.parse(iso)) / 1000);
}

export function absolute(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// <time> showing a relative time (or an age), with the exact time as its tooltip.
export function timeEl(iso, mode = "relative") {
  if (!iso) return h("span", {class: "muted"}, "—");
  return h("time", {datetime: iso, title: absolute(iso), class: `live-time ${mode}`},
           mode === "age" ? age(iso) : relative(iso));
}

export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time.live-time")) {
    const iso = el.getAttribute("datetime");
    el.textContent = el.classList.contains("age") ? age(iso) : relative(iso);
  }
}

// ---- blocks -------------------------------------------------------------------------

export function jsonBlock(value, label) {
  const text = JSON.stringify(value ?? null, null, 2);
  return h("pre", {class: "json", tabindex: 0, "aria-label": label || "JSON"},
           h("code", {}, text));
}

export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", {class: "card", "aria-labelledby": id},
           h("h2", {id}, title), ...children);
}

export function note(text, kind = "muted") {
  return h("p", {class: kind}, text);
}

export function errorNote(error) {
  return h("p", {class: "error", role: "alert"}, icon("warn"), " ",
           error && error.message ? error.message : String(error));
}
