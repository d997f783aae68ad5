// One resource: its state and why it is (or will be) reconciled, conditions, spec,
// metadata, outputs, finalizers, recent history and its live events; and the actions
// the caller is allowed (reconcile now, delete after a confirmation).

import {api, throttled} from "./api.js";
import {
  append, clear, conditionBadge, count, errorNote, fill, h, icon, jsonBlock, note, section, statusBadge, timeEl,
} from "./dom.js";

const KEEP_EVENTS = 50;
const EVENT_GLYPHS = {CREATED: "pending", MODIFIED: "reconciling", RECONCILED: "ok",
                      DELETED: "deleting", REMOVED: "deleting"};

export function mount(root, params, app) {
  const id = params.id;
  document.title = `Resource ${id} · no8sd`;
  let resource = null;
  let removed = false;
  let history = [];
  const events = [];
  let alive = true;

  const title = h("div", {class: "page-head"}, h("h1", {}, `Resource ${id}`));
  const actions = h("div", {class: "actions", id: "actions"});
  const notice = h("div", {id: "notice"});
  const facts = h("dl", {class: "facts", id: "facts"});
  const conditionsBox = h("div", {id: "conditions"});
  const specBox = h("div", {id: "spec"});
  const metadataBox = h("div", {id: "metadata"});
  const outputsBox = h("div", {id: "outputs"});
  const finalizersBox = h("div", {id: "finalizers"});
  const historyBox = h("div", {id: "history"});
  const eventsBox = h("ol", {class: "plain events", id: "events", "aria-live": "polite"});
  const body = h("div", {class: "resource", hidden: true},
    section("Status", facts),
    section("Conditions", conditionsBox),
    h("div", {class: "columns"}, section("Spec", specBox), section("Metadata", metadataBox)),
    h("div", {class: "columns"}, section("Outputs", outputsBox),
      section("Finalizers", finalizersBox)),
    section("History", historyBox),
    section("Live events", note("Changes to this resource appear here as they happen."),
            eventsBox));
  const dialog = confirmDialog();
  append(root, h("p", {class: "crumbs"}, h("a", {href: "#/resources"}, "Resources"), " ›"),
              title, actions, notice, body, dialog.element);

  async function load() {
    try {
      const [found, past] = await Promise.all([
        api(`/api/v1/resources/${id}`), api(`/api/v1/resources/${id}/history?limit=10`)]);
      if (!alive) return;
      resource = found;
      history = past;
      removed = false;
      render();
    } catch (error) {
      if (!alive) return;
      if (error.status === 404 && resource) {
        markRemoved();
        return;
      }
      fill(notice, error.status === 404
        ? errorNote(`There is no resource ${id}; it may have been removed.`)
        : error.status === 403 ? errorNote("You may not read this resource.") : errorNote(error));
    }
  }

  const loadHistory = throttled(async () => {
    if (removed) return;
    try {
      const past = await api(`/api/v1/resources/${id}/history?limit=10`);
      if (alive && !removed) {
        history = past;
        renderHistory();
      }
    } catch {
      // Kept as it was; the next change tries again.
    }
  }, 1000);

  function render() {
    const r = resource;
    document.title = `${r.name} · no8sd`;
    fill(title, 
      h("h1", {}, r.name, " ", statusBadge(r.status)),
      h("p", {class: "muted"}, h("a", {href: `#/types/${encodeURIComponent(r.resource_type_name)}/${encodeURIComponent(r.resource_type_version)}`},
        `${r.resource_type_name} ${r.resource_type_version}`), ` · id ${r.id}`));
    renderActions();
    clear(notice);
    renderFacts();
    renderConditions();
    showJson(specBox, r.spec, "Spec", "No spec.");
    showJson(metadataBox, r.metadata, "Metadata", "No metadata.");
    showJson(outputsBox, r.outputs, "Outputs", "No outputs reported.");
    fill(finalizersBox, r.finalizers.length
      ? h("ul", {class: "chips"}, r.finalizers.map((f) => h("li", {class: "chip"}, f)))
      : note("None."),
      r.status === "deleting" && r.finalizers.length
        ? note(`Deletion waits for ${r.finalizers.length === 1 ? "this finalizer" : "these finalizers"} to be removed.`, "message")
        : null);
    renderHistory();
    body.hidden = false;
  }

  function renderActions() {
    const r = resource;
    const type = [r.resource_type_name, r.resource_type_version];
    const mayUpdate = !removed && app.can("UPDATE", ...type);
    const mayDelete = !removed && app.can("DELETE", ...type) && r.status !== "deleting";
    // Rebuilt only when the choice changes, so keyboard focus stays on a button.
    const key = `${mayUpdate}/${mayDelete}`;
    if (actions.dataset.key === key) return;
    actions.dataset.key = key;
    clear(actions);
    if (mayUpdate) {
      append(actions, h("button", {type: "button", class: "button", id: "reconcile",
                                  on: {click: reconcileNow}},
                       icon("reconciling"), "Reconcile now"));
    }
    if (mayDelete) {
      append(actions, h("button", {type: "button", class: "button danger", id: "delete",
                                  on: {click: () => dialog.open(r, remove)}},
                       icon("deleting"), "Delete…"));
    }
  }

  function renderFacts() {
    const r = resource;
    const rows = [
      ["Status", [statusBadge(r.status), r.status_message ? h("span", {class: "message"}, r.status_message) : null]],
      ["Generation", [`${r.generation} (observed ${r.observed_generation})`,
        r.observed_generation < r.generation
          ? h("span", {class: "tag"}, "not reconciled yet") : null]],
      ["Retries", count(r.retry_count)],
      ["Next reconcile", [r.next_reconcile_time ? timeEl(r.next_reconcile_time) : "—",
        h("span", {class: "why"}, dueReason(r))]],
      ["Last reconciled", timeEl(r.last_reconcile_time)],
      ["Created", timeEl(r.created_at)],
      ["Updated", timeEl(r.updated_at)],
    ];
    if (r.deleted_at) rows.push(["Deletion asked", timeEl(r.deleted_at)]);
    if (r.action_plugin) rows.push(["Action plugin", r.action_plugin]);
    fill(facts, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
  }

  function renderConditions() {
    const list = resource.conditions || [];
    if (!list.length) {
      fill(conditionsBox, note("No conditions yet: it has not been reconciled."));
      return;
    }
    fill(conditionsBox, h("div", {class: "scroll"}, h("table", {class: "grid conditions"},
      h("thead", {}, h("tr", {}, ["Condition", "Status", "Reason", "Message", "Changed"].map(
        (label) => h("th", {scope: "col"}, label)))),
      h("tbody", {}, list.map((c) => h("tr", {dataset: {condition: String(c.type)}},
        h("th", {scope: "row", "data-label": "Condition"}, String(c.type)),
        h("td", {"data-label": "Status"}, conditionBadge(c)),
        h("td", {"data-label": "Reason"}, c.reason || "—"),
        h("td", {"data-label": "Message", class: "message"}, c.message || ""),
        h("td", {"data-label": "Changed"}, timeEl(c.lastTransitionTime))))))));
  }

  function renderHistory() {
    if (!history.length) {
      fill(historyBox, note("No reconciliations recorded yet."));
      return;
    }
    fill(historyBox, h("div", {class: "scroll"}, h("table", {class: "grid history"},
      h("thead", {}, h("tr", {}, ["When", "Result", "Generation", "Trigger", "Took", "Message"].map(
        (label) => h("th", {scope: "col"}, label)))),
      h("tbody", {}, history.map((entry) => h("tr", {},
        h("td", {"data-label": "When"}, timeEl(entry.reconcile_time)),
        h("td", {"data-label": "Result"}, entry.success
          ? h("span", {class: "badge tone-ready"}, icon("ok"), "Succeeded")
          : h("span", {class: "badge tone-failed"}, icon("fail"), "Failed")),
        h("td", {"data-label": "Generation", class: "num"}, String(entry.generation)),
        h("td", {"data-label": "Trigger"}, entry.trigger_reason || "—",
          entry.drift_detected ? h("span", {class: "tag"}, "drift") : null),
        h("td", {"data-label": "Took", class: "num"}, entry.duration_seconds === null
          ? "—" : `${entry.duration_seconds.toFixed(entry.duration_seconds < 10 ? 2 : 0)} s`),
        h("td", {"data-label": "Message", class: "message"}, entry.message || entry.error_message || "")))))));
  }

  function addEvent(event) {
    const data = event.data;
    const r = data.resource_data || {};
    events.unshift(h("li", {class: "event"},
      h("span", {class: "event-type"}, icon(EVENT_GLYPHS[data.event_type] || "unknown"),
        String(data.event_type)),
      r.status ? statusBadge(r.status) : null,
      h("span", {class: "message"}, r.status_message || ""),
      h("span", {class: "push muted small"}, timeEl(data.timestamp), ` · #${event.id}`)));
    events.length = Math.min(events.length, KEEP_EVENTS);
    fill(eventsBox, events);
  }

  function markRemoved() {
    removed = true;
    clear(actions);
    actions.dataset.key = "";
    fill(notice, h("p", {class: "banner-inline", role: "status"}, icon("deleting"), " ",
                           "This resource has been removed."));
  }

  async function reconcileNow() {
    try {
      await api(`/api/v1/resources/${id}/reconcile`, {method: "POST"});
      app.toast("Reconciliation requested.");
    } catch (error) {
      app.toast(`Could not trigger a reconcile: ${error.message}`, "error");
    }
  }

  async function remove() {
    try {
      await api(`/api/v1/resources/${id}`, {method: "DELETE"});
      app.toast("Deletion started; the reconciler runs its finalizers.");
    } catch (error) {
      app.toast(`Could not delete: ${error.message}`, "error");
    }
  }

  function onEvent(event) {
    const data = event.data;
    if (String(data.resource_id) !== String(id)) return;
    addEvent(event);
    if (data.event_type === "REMOVED") {
      markRemoved();
      return;
    }
    if (data.resource_data && resource) {
      resource = {...resource, ...data.resource_data};
      render();
    }
    // A deleting resource's last reconcile is followed by its removal: nothing to read.
    if (data.event_type === "RECONCILED" && resource?.status !== "deleting") loadHistory();
  }

  load();
  return {
    refresh: load,
    onEvent,
    destroy() {
      alive = false;
      loadHistory.cancel();
      dialog.element.close();
    },
  };
}

// A JSON block, replaced only when the value changed (keeps its scroll position).
const shownJson = new WeakMap();

function showJson(box, value, label, empty) {
  const text = JSON.stringify(value ?? {});
  if (shownJson.get(box) === text) return;
  shownJson.set(box, text);
  fill(box, value && Object.keys(value).length ? jsonBlock(value, label) : note(empty));
}

// Why and when the daemon will next reconcile it, from its state (see "How scheduling
// works" in the README).
function dueReason(r) {
  const due = r.next_reconcile_time && Date.parse(r.next_reconcile_time) <= Date.now();
  switch (r.status) {
    case "pending":
      return "new or changed: due now, waiting for its reconciler";
    case "reconciling":
      return "being reconciled; tried again then if the reconciler does not finish";
    case "failed":
      return r.next_reconcile_time
        ? `retry ${r.retry_count} after back-off${due ? " (due now)" : ""}`
        : "not retried";
    case "ready":
      return r.next_reconcile_time
        ? `routine re-check for drift, or when its reconciler asked${due ? " (due now)" : ""}`
        : "nothing scheduled";
    case "deleting":
      return r.finalizers.length ? "deleting: its reconciler is removing its finalizers"
                                 : "deleting";
    default:
      return "";
  }
}

// A modal confirmation; Escape or Cancel leaves everything as it was.
function confirmDialog() {
  const text = h("p", {id: "confirm-text"});
  const cancel = h("button", {type: "button", class: "button", id: "confirm-cancel"}, "Cancel");
  const confirm = h("button", {type: "button", class: "button danger", id: "confirm-delete"},
                    icon("deleting"), "Delete");
  const element = h("dialog", {class: "confirm", "aria-labelledby": "confirm-title",
                               "aria-describedby": "confirm-text"},
    h("h2", {id: "confirm-title"}, "Delete this resource?"), text,
    h("div", {class: "actions"}, cancel, confirm));
  let then = null;
  cancel.addEventListener("click", () => element.close("cancel"));
  confirm.addEventListener("click", () => element.close("delete"));
  element.addEventListener("close", () => {
    if (element.returnValue === "delete" && then) then();
    then = null;
  });
  return {
    element,
    open(r, action) {
      then = action;
      text.textContent = `${r.resource_type_name} ${r.resource_type_version} “${r.name}” will be `
        + "deleted. Its reconciler cleans up first (its finalizers); the resource disappears "
        + "once that is done.";
      element.returnValue = "";
      element.showModal();
      cancel.focus();
    },
  };
}
