"""`no8sd delete`, `reconcile`, `history` and `finalizers add|remove`: acting on one resource."""

from __future__ import annotations

import time

import click

from no8sd.cli import refs, session
from no8sd.cli.output import age, dump, echo, table
from no8sd.cli.wait import Duration, wait_until


@click.command("delete")
@click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                shell_complete=refs.complete_resource)
@click.option("--wait", "wait_", is_flag=True, help="Wait until it is gone (its finalizers "
                                                    "have run).")
@click.option("--timeout", type=Duration(), default="5m", show_default=True,
              help="With --wait: give up after this long (exit code 5).")
@session.connection_options
def delete_command(resource: tuple[str, ...], wait_: bool, timeout: float) -> None:
    """Delete a resource: it stays `deleting` until its finalizers are removed.

    \b
    Examples:
      no8sd delete DnsRecord/v1 api-record
      no8sd delete dnsrecord/api-record --wait --timeout 2m
    """
    conn = session.connect()
    found = refs.find_resource(conn, resource)
    conn.request("DELETE", f"/api/v1/resources/{found['id']}")
    if not wait_:
        echo(f"{refs.label(found)} deleting")
        return
    wait_until(conn, found, "deleted", lambda r: (r is None, None), timeout)


@click.command("reconcile")
@click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                shell_complete=refs.complete_resource)
@session.connection_options
def reconcile_command(resource: tuple[str, ...]) -> None:
    """Reconcile a resource now (its reconciler is woken at once).

    Example: no8sd reconcile DnsRecord/v1 api-record
    """
    conn = session.connect()
    found = refs.find_resource(conn, resource)
    conn.request("POST", f"/api/v1/resources/{found['id']}/reconcile")
    echo(f"{refs.label(found)} reconcile triggered")


@click.command("history")
@click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                shell_complete=refs.complete_resource)
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many entries (newest first).")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]),
              help="The API's history records as JSON or YAML.")
@session.connection_options
def history_command(resource: tuple[str, ...], limit: int, output: str | None) -> None:
    """Show a resource's reconciliation history, newest first.

    Example: no8sd history DnsRecord/v1 api-record --limit 20
    """
    conn = session.connect()
    found = refs.find_resource(conn, resource)
    entries = conn.request("GET", f"/api/v1/resources/{found['id']}/history",
                           query={"limit": limit})
    if output:
        echo(dump(entries, output))
        return
    if not entries:
        echo(f"{refs.label(found)} has not been reconciled yet.", err=True)
        return
    now = time.time()
    echo(table(("TIME", "AGE", "GEN", "RESULT", "TRIGGER", "DURATION", "MESSAGE"), [
        [h["reconcile_time"][:19].replace("T", " "), age(h["reconcile_time"], now),
         str(h["generation"]), "ok" if h["success"] else "failed",
         h.get("trigger_reason") or "-",
         "-" if h.get("duration_seconds") is None else f"{h['duration_seconds']:.3f}s",
         h.get("message") or ""] for h in entries], colour_column=3))


@click.group("finalizers")
def finalizers_group() -> None:
    """Add or remove a resource's finalizers.

    Example: no8sd finalizers add dnsrecord/api-record --name backup.example.com
    """


def _edit(resource: tuple[str, ...], names: tuple[str, ...], field: str) -> None:
    conn = session.connect()
    found = refs.find_resource(conn, resource)
    answer = conn.request("PUT", f"/api/v1/resources/{found['id']}/finalizers",
                          {field: list(names)})
    if "finalizers" in answer:
        echo(f"{refs.label(found)} finalizers: {', '.join(answer['finalizers']) or '-'}")
    else:
        echo(f"{refs.label(found)} removed (its last finalizer is gone)")


def _finalizer_command(field: str, help_text: str) -> click.Command:
    """`finalizers add` or `finalizers remove`: the same command but for the edit."""

    @finalizers_group.command(field, help=help_text)
    @click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                    shell_complete=refs.complete_resource)
    @click.option("--name", "names", multiple=True, required=True,
                  help=f"A finalizer to {field} (repeatable).")
    @session.connection_options
    def command(resource: tuple[str, ...], names: tuple[str, ...]) -> None:
        _edit(resource, names, field)

    return command


finalizers_add = _finalizer_command(
    "add", "Add finalizers to a resource (deletion waits until they are removed).\n\n"
           "Example: no8sd finalizers add DnsRecord/v1 api-record --name backup.example.com")
finalizers_remove = _finalizer_command(
    "remove", "Remove finalizers; removing the last one of a deleting resource removes "
              "it.\n\nExample: no8sd finalizers remove DnsRecord/v1 api-record --name "
              "backup.example.com")
