// Resource types: the list, and one type's schema shown as a table of its fields (path,
// type, required, constraints, description) beside the raw JSON Schema.

import {api, query} from "./api.js";
import {
  append, clear, count, errorNote, fill, h, jsonBlock, note, section, timeEl,
} from "./dom.js";

const MAX_FIELDS = 500;
const MAX_DEPTH = 8;

export function mount(root, params, app) {
  let alive = true;
  let shown = 0;
  const box = h("div", {});
  append(root, box);

  function show(next) {
    const mine = ++shown; // a slow answer for a view left meanwhile is dropped
    const current = () => alive && mine === shown;
    clear(box);
    if (next.name) detail(box, next.name, next.version, current);
    else list(box, app, current);
    return true;
  }
  show(params);
  return {
    update: show,
    refresh: () => {},
    destroy() {
      alive = false;
    },
  };
}

async function list(box, app, alive) {
  document.title = "Resource types · no8sd";
  const content = h("div", {}, note("Loading…"));
  append(box, h("h1", {}, "Resource types"), content);
  let types;
  let counts = [];
  try {
    [types, counts] = await Promise.all([api("/api/v1/resource-types?limit=1000"),
                                         api("/api/v1/resource-counts").catch(() => [])]);
  } catch (error) {
    if (alive()) fill(content, errorNote(error));
    return;
  }
  if (!alive()) return;
  if (!types.length) {
    fill(content, note("No resource types are registered yet."));
    return;
  }
  const totals = new Map();
  for (const row of counts) {
    const key = `${row.resource_type_name}/${row.resource_type_version}`;
    totals.set(key, (totals.get(key) || 0) + row.count);
  }
  fill(content, h("div", {class: "scroll"}, h("table", {class: "grid types"},
    h("thead", {}, h("tr", {}, ["Type", "Version", "Status", "Resources", "Description"].map(
      (label) => h("th", {scope: "col"}, label)))),
    h("tbody", {}, types.map((t) => {
      const readable = app.can("READ", t.name, t.version);
      const total = totals.get(`${t.name}/${t.version}`) || 0;
      return h("tr", {},
        h("th", {scope: "row", "data-label": "Type"},
          h("a", {href: typeHref(t.name, t.version)}, t.name)),
        h("td", {"data-label": "Version"}, t.version),
        h("td", {"data-label": "Status"}, h("span", {class: `tag ${t.status === "deprecated" ? "warn" : ""}`}, t.status)),
        h("td", {"data-label": "Resources", class: "num"}, readable
          ? h("a", {href: `#/resources${query({type: t.name, version: t.version})}`}, count(total))
          : h("span", {class: "muted", title: "You may not read resources of this type"}, "—")),
        h("td", {"data-label": "Description", class: "message"}, t.description || ""));
    })))));
}

async function detail(box, name, version, alive) {
  document.title = `${name} ${version} · no8sd`;
  append(box, h("p", {class: "crumbs"}, h("a", {href: "#/types"}, "Resource types"), " ›"));
  let t;
  try {
    t = await api(`/api/v1/resource-types/${encodeURIComponent(name)}/${encodeURIComponent(version)}`);
  } catch (error) {
    if (alive()) append(box, h("h1", {}, `${name} ${version}`), errorNote(error));
    return;
  }
  if (!alive()) return;
  const rows = fields(t.schema);
  append(box, 
    h("div", {class: "page-head"},
      h("h1", {}, t.name, " ", h("span", {class: "version"}, t.version), " ",
        h("span", {class: `tag ${t.status === "deprecated" ? "warn" : ""}`}, t.status)),
      t.description ? h("p", {class: "lead", id: "type-description"}, t.description) : null,
      h("p", {class: "muted"}, "Registered ", timeEl(t.created_at), " · changed ",
        timeEl(t.updated_at), " · ",
        h("a", {href: `#/resources${query({type: t.name, version: t.version})}`},
          "its resources"))),
    section("Fields", rows.length ? fieldTable(rows)
      : note("The schema declares no properties: any JSON object is accepted.")),
    section("JSON Schema", jsonBlock(t.schema, "JSON Schema")),
    Object.keys(t.metadata || {}).length ? section("Metadata", jsonBlock(t.metadata, "Metadata"))
      : null);
}

function typeHref(name, version) {
  return `#/types/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
}

// Flatten a JSON Schema's properties (nested objects and arrays of objects) into rows.
function fields(schema, prefix = "", depth = 0, out = []) {
  if (!schema || typeof schema !== "object" || depth > MAX_DEPTH) return out;
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const properties = schema.properties && typeof schema.properties === "object"
    ? schema.properties : {};
  for (const [name, sub] of Object.entries(properties)) {
    if (out.length >= MAX_FIELDS) break;
    const path = prefix ? `${prefix}.${name}` : name;
    out.push({path, schema: sub && typeof sub === "object" ? sub : {}, required: required.has(name)});
    if (sub && typeof sub === "object") {
      fields(sub, path, depth + 1, out);
      if (sub.items && typeof sub.items === "object") fields(sub.items, `${path}[]`, depth + 1, out);
    }
  }
  return out;
}

function typeOf(schema) {
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  if (typeof schema.type === "string") {
    if (schema.type === "array" && schema.items && typeof schema.items.type === "string") {
      return `array of ${schema.items.type}`;
    }
    return schema.type;
  }
  if (schema.$ref) return String(schema.$ref);
  if (schema.enum) return "enum";
  for (const key of ["oneOf", "anyOf", "allOf"]) if (Array.isArray(schema[key])) return key;
  return "any";
}

function constraints(schema) {
  const parts = [];
  const show = (value) => JSON.stringify(value);
  if (Array.isArray(schema.enum)) parts.push(`one of ${schema.enum.map(show).join(", ")}`);
  if ("const" in schema) parts.push(`exactly ${show(schema.const)}`);
  for (const [key, label] of [["minimum", "≥"], ["exclusiveMinimum", ">"], ["maximum", "≤"],
                              ["exclusiveMaximum", "<"]]) {
    if (typeof schema[key] === "number") parts.push(`${label} ${schema[key]}`);
  }
  for (const [key, label] of [["minLength", "min length"], ["maxLength", "max length"],
                              ["minItems", "min items"], ["maxItems", "max items"]]) {
    if (typeof schema[key] === "number") parts.push(`${label} ${schema[key]}`);
  }
  if (typeof schema.pattern === "string") parts.push(`matches ${schema.pattern}`);
  if (typeof schema.format === "string") parts.push(`format ${schema.format}`);
  if ("default" in schema) parts.push(`default ${show(schema.default)}`);
  return parts.join("; ");
}

function fieldTable(rows) {
  return h("div", {class: "scroll"}, h("table", {class: "grid fields"},
    h("thead", {}, h("tr", {}, ["Field", "Type", "Required", "Constraints", "Description"].map(
      (label) => h("th", {scope: "col"}, label)))),
    h("tbody", {}, rows.map(({path, schema, required}) => h("tr", {},
      h("th", {scope: "row", "data-label": "Field"}, h("code", {}, path)),
      h("td", {"data-label": "Type"}, typeOf(schema)),
      h("td", {"data-label": "Required"}, required ? "required" : "optional"),
      h("td", {"data-label": "Constraints", class: "small"}, constraints(schema)),
      h("td", {"data-label": "Description", class: "message"},
        typeof schema.description === "string" ? schema.description
          : typeof schema.title === "string" ? schema.title : ""))))));
}
