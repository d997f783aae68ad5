// The resources table: filters (type, version, status, name search), sorting and pages,
// all done by the daemon (GET /api/v1/resource-search), so 100,000 resources cost one
// page. The filters live in the address (#/resources?status=failed&q=web), so a view can
// be bookmarked and Back works. Rows on screen change in place as events arrive; a
// change that may move rows (a create, a removal, a new state under a status filter)
// re-reads the page at a bounded rate.

import {api, query, throttled} from "./api.js";
import {
  append, clear, conditionBadge, count, errorNote, fill, h, statusBadge, timeEl,
} from "./dom.js";

const STATUSES = ["ready", "failed", "reconciling", "pending", "deleting"];
const SIZES = [25, 50, 100, 200];
// Columns: label, sort key (API), and which API direction reads as "ascending" here.
const COLUMNS = [
  {label: "Name", key: "name"},
  {label: "Type", key: "type"},
  {label: "Status", key: "status"},
  {label: "Ready", key: null},
  {label: "Generation", key: null, title: "generation / observed generation"},
  {label: "Age", key: "created", inverted: true},
  {label: "Changed", key: "updated", inverted: true},
];
const SORT_CHOICES = [
  ["-created", "Newest first"], ["created", "Oldest first"], ["name", "Name A–Z"],
  ["-name", "Name Z–A"], ["type", "Type"], ["status", "Status"],
  ["-updated", "Recently changed"], ["updated", "Least recently changed"],
];

function normalize(params) {
  const size = SIZES.includes(Number(params.size)) ? Number(params.size) : 50;
  const page = Math.max(1, Math.floor(Number(params.page)) || 1);
  const sort = SORT_CHOICES.some(([key]) => key === params.sort) ? params.sort : "-created";
  return {type: params.type || "", version: params.version || "",
          status: STATUSES.includes(params.status) ? params.status : "",
          q: (params.q || "").slice(0, 253), sort, page, size};
}

export function mount(root, params, app) {
  document.title = "Resources · no8sd";
  let state = normalize(params);
  let rows = [];
  let total = 0;
  let alive = true;

  const typeSelect = h("select", {id: "f-type"}, h("option", {value: ""}, "All types"));
  const statusSelect = h("select", {id: "f-status"}, h("option", {value: ""}, "All statuses"),
    STATUSES.map((s) => h("option", {value: s}, s[0].toUpperCase() + s.slice(1))));
  const search = h("input", {id: "f-q", type: "search", placeholder: "Part of a name",
                             autocomplete: "off", spellcheck: "false", maxlength: 253});
  const sortSelect = h("select", {id: "f-sort"},
    SORT_CHOICES.map(([key, label]) => h("option", {value: key}, label)));
  const sizeSelect = h("select", {id: "f-size"},
    SIZES.map((n) => h("option", {value: String(n)}, `${n} per page`)));
  const summary = h("p", {class: "muted", id: "table-summary", role: "status",
                          "aria-live": "polite"});
  const body = h("tbody", {id: "rows"});
  const head = h("tr", {});
  const pager = h("nav", {class: "pager", "aria-label": "Pages"});
  const problem = h("div", {});

  append(root, 
    h("h1", {}, "Resources"),
    h("form", {class: "filters", role: "search", on: {submit: (e) => e.preventDefault()}},
      field("Type", typeSelect), field("Status", statusSelect),
      field("Name contains", search), field("Sort", sortSelect), field("Rows", sizeSelect)),
    summary, problem,
    h("div", {class: "scroll"}, h("table", {class: "grid resources", id: "resources-table"},
      h("caption", {class: "visually-hidden"}, "Resources, one page"),
      h("thead", {}, head), body)),
    pager);

  // ---- filters -> address -> load ---------------------------------------------------

  function go(changes, {replace = false} = {}) {
    const next = {...state, ...changes};
    if (!("page" in changes)) next.page = 1;
    const target = `#/resources${query({
      type: next.type, version: next.version, status: next.status, q: next.q,
      sort: next.sort === "-created" ? "" : next.sort, page: next.page === 1 ? "" : next.page,
      size: next.size === 50 ? "" : next.size})}`;
    if (replace) history.replaceState(null, "", target);
    else history.pushState(null, "", target);
    update(Object.fromEntries(new URLSearchParams(target.split("?")[1] || "")));
  }

  typeSelect.addEventListener("change", () => {
    const [type = "", version = ""] = typeSelect.value ? JSON.parse(typeSelect.value) : [];
    go({type, version});
  });
  statusSelect.addEventListener("change", () => go({status: statusSelect.value}));
  sortSelect.addEventListener("change", () => go({sort: sortSelect.value}));
  sizeSelect.addEventListener("change", () => go({size: Number(sizeSelect.value)}));
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => go({q: search.value.trim()}, {replace: true}), 250);
  });

  function syncControls() {
    statusSelect.value = state.status;
    sortSelect.value = state.sort;
    sizeSelect.value = String(state.size);
    if (document.activeElement !== search) search.value = state.q;
    typeSelect.value = state.type ? JSON.stringify([state.type, state.version]) : "";
    if (state.type && typeSelect.value === "") {
      // A type from a link that the list does not hold (yet): offer it anyway.
      append(typeSelect, h("option", {value: JSON.stringify([state.type, state.version])},
                          `${state.type} ${state.version}`.trim()));
      typeSelect.value = JSON.stringify([state.type, state.version]);
    }
    renderHead();
  }

  function renderHead() {
    clear(head);
    const [desc, current] = state.sort.startsWith("-") ? [true, state.sort.slice(1)]
                                                        : [false, state.sort];
    for (const column of COLUMNS) {
      const th = h("th", {scope: "col", title: column.title || null,
                          class: `col-${column.label.toLowerCase()}`});
      if (!column.key) {
        append(th, column.label);
      } else {
        const active = column.key === current;
        const ascending = active && (desc === Boolean(column.inverted));
        if (active) th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const button = h("button", {type: "button", class: "sort",
                                    on: {click: () => {
                                      const nextAsc = active ? !ascending : true;
                                      const apiDesc = nextAsc === Boolean(column.inverted);
                                      go({sort: (apiDesc ? "-" : "") + column.key});
                                    }}},
                         column.label,
                         h("span", {class: "arrow", "aria-hidden": "true"},
                           active ? (ascending ? "▲" : "▼") : "↕"));
        append(th, button);
      }
      append(head, th);
    }
  }

  // ---- loading and rendering ---------------------------------------------------------

  async function loadTypes() {
    try {
      const types = await api("/api/v1/resource-types?limit=1000");
      for (const t of types) {
        if (!app.can("READ", t.name, t.version)) continue;
        const value = JSON.stringify([t.name, t.version]);
        if ([...typeSelect.options].some((o) => o.value === value)) continue;
        append(typeSelect, h("option", {value}, `${t.name} ${t.version}`));
      }
      if (alive) syncControls();
    } catch {
      // The table still works without the type list.
    }
  }

  async function load() {
    const asked = {...state};
    try {
      const page = await api(`/api/v1/resource-search${query({
        resource_type_name: asked.type, resource_type_version: asked.version,
        status: asked.status, name_contains: asked.q, sort: asked.sort,
        limit: asked.size, offset: (asked.page - 1) * asked.size})}`);
      if (!alive || JSON.stringify(asked) !== JSON.stringify(state)) return;
      clear(problem);
      rows = page.items;
      total = page.total;
      render();
    } catch (error) {
      if (alive) fill(problem, errorNote(error));
    }
  }

  const reload = throttled(load, 1000);

  function render() {
    const focused = document.activeElement?.dataset?.focusKey;
    fill(body, rows.map(rowFor));
    if (!rows.length) {
      append(body, h("tr", {}, h("td", {colspan: COLUMNS.length, class: "empty"},
        total ? "No resources on this page." : "No resources match these filters.")));
    }
    const first = total ? (state.page - 1) * state.size + 1 : 0;
    const last = Math.min(total, state.page * state.size);
    summary.textContent = total
      ? `Showing ${count(first)}–${count(last)} of ${count(total)} resource${total === 1 ? "" : "s"}`
      : "No resources";
    renderPager();
    if (focused) root.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  }

  function rowFor(r) {
    const stale = r.observed_generation < r.generation;
    return h("tr", {dataset: {id: String(r.id)}, class: `status-${STATUSES.includes(r.status) ? r.status : "unknown"}`},
      h("td", {class: "col-name", "data-label": "Name"},
        h("a", {href: `#/resources/${r.id}`, dataset: {focusKey: `r${r.id}`}}, r.name)),
      h("td", {class: "col-type", "data-label": "Type"},
        r.resource_type_name, " ", h("span", {class: "version"}, r.resource_type_version)),
      h("td", {class: "col-status", "data-label": "Status"}, statusBadge(r.status),
        r.status === "failed" && r.status_message
          ? h("div", {class: "message small clip", title: r.status_message}, r.status_message)
          : null),
      h("td", {class: "col-ready", "data-label": "Ready"}, conditionBadge(r.ready),
        r.ready?.reason ? h("span", {class: "reason"}, r.ready.reason) : null),
      h("td", {class: "col-generation num", "data-label": "Generation"},
        `${r.generation} / ${r.observed_generation}`,
        stale ? h("span", {class: "tag", title: "The newest spec is not reconciled yet"}, "behind")
          : null),
      h("td", {class: "col-age", "data-label": "Age"}, timeEl(r.created_at, "age")),
      h("td", {class: "col-changed", "data-label": "Changed"}, timeEl(r.updated_at)));
  }

  function renderPager() {
    const pages = Math.max(1, Math.ceil(total / state.size));
    const button = (label, page, disabled, glyph) => h("button", {
      type: "button", class: "button quiet", disabled: disabled || false,
      "aria-label": `${label} page`, on: {click: () => go({page})}}, glyph);
    fill(pager, 
      button("First", 1, state.page <= 1, "«"),
      button("Previous", state.page - 1, state.page <= 1, "‹ Prev"),
      h("span", {class: "muted"}, `Page ${count(Math.min(state.page, pages))} of ${count(pages)}`),
      button("Next", state.page + 1, state.page >= pages, "Next ›"),
      button("Last", pages, state.page >= pages, "»"));
  }

  // ---- live -------------------------------------------------------------------------

  function onEvent(event) {
    const data = event.data;
    const r = data.resource_data;
    const matchesType = (!state.type || data.resource_type_name === state.type)
      && (!state.version || data.resource_type_version === state.version);
    if (!matchesType) return;
    const index = rows.findIndex((row) => row.id === data.resource_id);
    if (index >= 0 && r && data.event_type !== "REMOVED") {
      rows[index] = summaryOf(r);
      const old = body.querySelector(`tr[data-id="${data.resource_id}"]`);
      if (old) {
        const hadFocus = old.contains(document.activeElement);
        const fresh = rowFor(rows[index]);
        old.replaceWith(fresh);
        if (hadFocus) fresh.querySelector("a")?.focus();
      }
    }
    // What may add, remove or move rows reads the page again (rate-limited): a create or a
    // removal, or any change while the rows are chosen or ordered by state or by time of
    // change. Other changes to rows off this page cannot touch it.
    const moves = data.event_type === "CREATED" || data.event_type === "REMOVED"
      || state.status || state.sort.endsWith("updated") || state.sort.endsWith("status");
    if (moves) reload();
  }

  function update(next) {
    state = normalize(next);
    syncControls();
    reload.now();
    return true;
  }

  syncControls();
  loadTypes();
  reload.now();

  return {
    update,
    refresh: () => reload.now(),
    onEvent,
    destroy() {
      alive = false;
      reload.cancel();
      clearTimeout(typing);
    },
  };
}

function field(label, control) {
  return h("label", {class: "field", for: control.id}, h("span", {}, label), control);
}

// The table row of a resource as events carry it (the same fields the search answers).
function summaryOf(r) {
  return {
    id: r.id, name: r.name, resource_type_name: r.resource_type_name,
    resource_type_version: r.resource_type_version, status: r.status,
    status_message: r.status_message, generation: r.generation,
    observed_generation: r.observed_generation,
    ready: (r.conditions || []).find((c) => c.type === "Ready") || null,
    retry_count: r.retry_count, next_reconcile_time: r.next_reconcile_time,
    created_at: r.created_at, updated_at: r.updated_at, deleted_at: r.deleted_at,
  };
}

