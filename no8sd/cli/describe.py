"""`no8sd describe`: everything about one resource, and why it is in the state it is.

Spec, metadata, plugin config, outputs, finalizers, conditions with their transition
times and messages, retries, the next reconcile and why it is due, and the last history
entries. A resource stuck in `deleting` says which finalizers hold it; a `failed` one
says when it will be retried.

Why a resource is next due is read from its record: `deleting` (its reconciler is to
clean up), `failed` (a retry with backoff), `reconciling` (the lease: if the reconcile
does not report back by then, it is retried), `pending` or a generation not yet observed
(fresh intent, due now), `ready` (the drift re-check, or an earlier time the plugin asked
for with requeue_after: the record does not tell these two apart).
"""

from __future__ import annotations

import time
from typing import Any, Final

import click

from no8sd.cli import refs, session
from no8sd.cli.get import condition
from no8sd.cli.output import age, coloured, dump, echo, span, table, when

HISTORY: Final = 5


def due_reason(r: dict[str, Any]) -> str:
    """Why (and whether) a resource is due for reconciliation."""
    status = r["status"]
    if r.get("next_reconcile_time") is None:
        if status == "deleting":
            return "not scheduled: its reconciler has released it; other finalizers hold it"
        return "not scheduled"
    if status == "deleting":
        return "deletion: its reconciler is to clean up and remove its finalizer"
    if status == "failed":
        return f"retry {r.get('retry_count', 0) + 1}, with exponential backoff after a failure"
    if status == "reconciling":
        return "lease: a reconcile is running; it is retried if it has not reported by then"
    if status == "pending" or r["generation"] > r["observed_generation"]:
        return "new intent (created, changed or triggered): due now"
    return "re-check for drift (or the time the plugin asked for with requeue_after)"


@click.command("describe")
@click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                shell_complete=refs.complete_resource)
@click.option("--history", "history_count", type=click.IntRange(0, 1000), default=HISTORY,
              show_default=True, help="How many history entries to show.")
@session.connection_options
def describe_command(resource: tuple[str, ...], history_count: int) -> None:
    """Show one resource in full: state, conditions, finalizers, schedule, history.

    \b
    Examples:
      no8sd describe DnsRecord/v1 api-record
      no8sd describe dnsrecord/api-record --history 20
      no8sd describe 7
    """
    conn = session.connect()
    r = refs.find_resource(conn, resource)
    history = conn.request("GET", f"/api/v1/resources/{r['id']}/history",
                           query={"limit": history_count}) if history_count else []
    now = time.time()
    fields = [
        ("Name", r["name"]),
        ("Type", f"{r['resource_type_name']}/{r['resource_type_version']}"),
        ("ID", str(r["id"])),
        ("Status", coloured(r["status"]) + (f": {r['status_message']}"
                                            if r.get("status_message") else "")),
        ("Generation", f"{r['generation']} (observed {r['observed_generation']})"),
        ("Action plugin", r.get("action_plugin") or "-"),
        ("Created", when(r["created_at"], now)),
        ("Updated", when(r["updated_at"], now)),
        ("Last reconciled", when(r.get("last_reconcile_time"), now)),
        ("Retries", str(r.get("retry_count", 0))),
        ("Next reconcile", when(r.get("next_reconcile_time"), now)),
        ("  why", due_reason(r)),
        ("Finalizers", ", ".join(r.get("finalizers") or []) or "-"),
    ]
    if r.get("deleted_at"):
        held = ", ".join(r.get("finalizers") or []) or "nothing (being removed)"
        fields.append(("Deleting", f"since {when(r['deleted_at'], now)}; held by {held}"))
    if r["status"] == "failed" and r.get("next_reconcile_time"):
        fields.append(("Retry", f"{when(r['next_reconcile_time'], now)} "
                                f"(attempt {r.get('retry_count', 0) + 1})"))
    width = max(len(label) for label, _ in fields) + 2
    for label, value in fields:
        echo(f"{label + ':':<{width}}{value}")
    for title, key in (("Spec", "spec"), ("Metadata", "metadata"),
                       ("Plugin config", "plugin_config"), ("Outputs", "outputs")):
        value = r.get(key)
        if value:
            echo(f"{title}:")
            echo(_indent(dump(value, "yaml")))
        else:
            echo(f"{title + ':':<{width}}-")
    echo("Conditions:")
    if r.get("conditions"):
        echo(_indent(table(("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"), [
            [c["type"], c["status"], c.get("reason") or "", age(c.get("lastTransitionTime"),
                                                                   now),
             c.get("message") or ""] for c in r["conditions"]], colour_column=1)))
    else:
        echo("  (none yet)")
    ready = condition(r, "Ready")
    if ready and ready["status"] == "False" and ready.get("message"):
        echo(f"Last error: {ready['message']}")
    if history_count:
        echo(f"History (newest first, up to {history_count}):")
        if history:
            echo(_indent(table(("WHEN", "GEN", "RESULT", "TRIGGER", "TOOK", "MESSAGE"), [
                [age(h["reconcile_time"], now) + " ago", str(h["generation"]),
                 "ok" if h["success"] else "failed", h.get("trigger_reason") or "-",
                 _took(h.get("duration_seconds")), h.get("message") or ""]
                for h in history])))
        else:
            echo("  (no reconciles yet)")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else span(seconds)
