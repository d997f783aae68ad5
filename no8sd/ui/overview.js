// The overview: how many resources are in each state, per type; the reconciler plugins
// and their health; the most recent failures. Re-read (at a bounded rate) when events
// arrive, since any change may move a count.

import {api, query, throttled} from "./api.js";
import {
  append, count, errorNote, fill, h, icon, known, note, plural, section, statusBadge, timeEl,
} from "./dom.js";

const ORDER = ["ready", "failed", "reconciling", "pending", "deleting"];
const GLYPH = {ready: "ok", failed: "fail", reconciling: "reconciling", pending: "pending",
               deleting: "deleting"};
const PLUGIN_STATES = {
  running: ["ok", "Running", "ready"],
  crashed: ["fail", "Crashed", "failed"],
  registered: ["pending", "Starting", "pending"],
  stopped: ["stop", "Stopped", "neutral"],
};
const PLUGIN_REFRESH = 30000;

export function mount(root, _params, app) {
  document.title = "Overview · no8sd";
  const tiles = h("div", {class: "tiles", id: "tiles"});
  const typesBox = h("div", {id: "types-summary"}, note("Loading…"));
  const pluginsBox = h("div", {id: "plugins"}, note("Loading…"));
  const failuresBox = h("div", {id: "failures"}, note("Loading…"));
  const showPlugins = app.hasSystem("view_plugins");
  append(root, 
    h("h1", {}, "Overview"),
    tiles,
    h("div", {class: "columns"},
      section("Resource types", typesBox),
      showPlugins ? section("Plugins", pluginsBox) : null),
    section("Recent failures", failuresBox));

  let alive = true;

  async function load() {
    const asks = [
      api("/api/v1/resource-counts"),
      api("/api/v1/resource-types?limit=1000"),
      api(`/api/v1/resource-search${query({status: "failed", sort: "-updated", limit: 8})}`),
    ];
    try {
      const [counts, typeList, failures] = await Promise.all(asks);
      if (!alive) return;
      renderTiles(tiles, counts);
      renderTypes(typesBox, counts, typeList, app);
      renderFailures(failuresBox, failures);
    } catch (error) {
      if (!alive) return;
      fill(typesBox, errorNote(error));
    }
    if (showPlugins) await loadPlugins();
  }

  async function loadPlugins() {
    try {
      const plugins = await api("/api/v1/plugins/reconcilers");
      if (alive) renderPlugins(pluginsBox, plugins);
    } catch (error) {
      if (alive) fill(pluginsBox, errorNote(error));
    }
  }

  const refresh = throttled(load, 1500);
  refresh.now();
  // Plugin health has no event of its own (a crash changes no resource): look again now
  // and then while the overview is open.
  const pluginTimer = showPlugins ? setInterval(() => {
    if (!document.hidden && app.online) loadPlugins();
  }, PLUGIN_REFRESH) : null;

  return {
    refresh: () => refresh.now(),
    onEvent: () => refresh(),
    destroy() {
      alive = false;
      refresh.cancel();
      clearInterval(pluginTimer);
    },
  };
}

function totals(counts) {
  const sums = {all: 0, ready: 0, failed: 0, reconciling: 0, pending: 0, deleting: 0};
  for (const row of counts) {
    sums.all += row.count;
    const key = known(row.status, sums, null);
    if (key) sums[key] += row.count;
  }
  return sums;
}

function tile(href, glyph, tone, value, label) {
  return h("a", {class: `tile tone-${tone}`, href},
           h("span", {class: "tile-value"}, icon(glyph), count(value)),
           h("span", {class: "tile-label"}, label));
}

function renderTiles(box, counts) {
  const sums = totals(counts);
  const link = (status) => `#/resources${query({status})}`;
  fill(box, 
    tile("#/resources", "plug", "neutral", sums.all, "Resources"),
    tile(link("ready"), "ok", "ready", sums.ready, "Ready"),
    tile(link("failed"), "fail", "failed", sums.failed, "Failed"),
    tile(link("reconciling"), "reconciling", "reconciling", sums.reconciling + sums.pending,
         "In progress"),
    tile(link("deleting"), "deleting", "deleting", sums.deleting, "Deleting"));
}

function renderTypes(box, counts, typeList, app) {
  const byType = new Map();
  for (const t of typeList) {
    if (app.can("READ", t.name, t.version)) byType.set(`${t.name}/${t.version}`, {type: t, states: {}});
  }
  for (const row of counts) {
    const key = `${row.resource_type_name}/${row.resource_type_version}`;
    if (!byType.has(key)) {
      byType.set(key, {type: {name: row.resource_type_name, version: row.resource_type_version},
                       states: {}});
    }
    byType.get(key).states[row.status] = row.count;
  }
  if (!byType.size) {
    fill(box, note(typeList.length ? "You may not read the resources of any type."
      : "No resource types yet. Register one with POST /api/v1/resource-types."));
    return;
  }
  const rows = [...byType.values()].map(({type, states}) => {
    const total = Object.values(states).reduce((a, b) => a + b, 0);
    const filter = `#/resources${query({type: type.name, version: type.version})}`;
    const bar = h("div", {class: "bar", "aria-hidden": "true"});
    const legend = h("ul", {class: "legend"});
    for (const status of ORDER) {
      const n = states[status] || 0;
      if (!n) continue;
      const segment = h("span", {class: `seg tone-${status}`});
      segment.style.flexGrow = String(n);
      append(bar, segment);
      append(legend, h("li", {class: `tone-${status}`}, icon(GLYPH[status]),
                      h("a", {href: `#/resources${query({type: type.name, version: type.version, status})}`},
                        `${count(n)} ${status}`)));
    }
    if (!total) append(legend, h("li", {class: "muted"}, "no resources"));
    return h("tr", {},
      h("th", {scope: "row"},
        h("a", {href: filter}, type.name), " ", h("span", {class: "version"}, type.version),
        type.status === "deprecated" ? h("span", {class: "tag"}, "deprecated") : null),
      h("td", {class: "num"}, count(total)),
      h("td", {class: "states"}, total ? bar : null, legend));
  });
  fill(box, h("div", {class: "scroll"}, h("table", {class: "grid types-summary"},
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Type"),
                     h("th", {scope: "col", class: "num"}, "Resources"),
                     h("th", {scope: "col"}, "States"))),
    h("tbody", {}, rows))));
}

function renderPlugins(box, plugins) {
  if (!plugins.length) {
    fill(box, note("No reconciler plugins are loaded."));
    return;
  }
  const items = plugins.map((plugin) => {
    const [glyph, label, tone] = PLUGIN_STATES[plugin.state] || ["unknown", String(plugin.state), "unknown"];
    return h("li", {class: "plugin"},
      h("div", {class: "plugin-head"},
        h("strong", {}, plugin.name), " ", h("span", {class: "version"}, plugin.version),
        h("span", {class: `badge tone-${tone}`}, icon(glyph), h("span", {}, label))),
      h("div", {class: "muted small"},
        plugin.resource_types.length ? `Reconciles ${plugin.resource_types.join(", ")}` : "Reconciles no types",
        plugin.restart_count ? ` · restarted ${plural(plugin.restart_count, "time")}` : ""),
      plugin.last_error ? h("p", {class: "message failed small"}, icon("warn"), " ",
                            `Last error: ${plugin.last_error}`) : null);
  });
  fill(box, h("ul", {class: "plain plugins"}, items));
}

function renderFailures(box, page) {
  if (!page.items.length) {
    fill(box, h("p", {class: "tone-ready all-good"}, icon("ok"), " No failing resources."));
    return;
  }
  const items = page.items.map((r) => h("li", {class: "failure"},
    h("div", {class: "failure-head"},
      statusBadge(r.status), " ",
      h("a", {href: `#/resources/${r.id}`}, r.name), " ",
      h("span", {class: "muted small"}, `${r.resource_type_name} ${r.resource_type_version}`),
      h("span", {class: "muted small push"}, "changed ", timeEl(r.updated_at))),
    r.status_message ? h("p", {class: "message small"}, r.status_message) : null,
    h("p", {class: "muted small"},
      `Retry ${count(r.retry_count)}`,
      r.next_reconcile_time ? [" · next attempt ", timeEl(r.next_reconcile_time)] : null)));
  const more = page.total > page.items.length
    ? h("p", {}, h("a", {href: `#/resources${query({status: "failed", sort: "-updated"})}`},
                   `All ${count(page.total)} failing resources`))
    : null;
  fill(box, h("ul", {class: "plain failures"}, items), more);
}
