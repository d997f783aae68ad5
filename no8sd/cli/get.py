"""`no8sd get`: resources and types as a table (or JSON, YAML, names), and `--watch`.

`--watch` prints the table, then one row per change as the daemon's event stream
(GET /api/v1/events) delivers it. The stream resumes with `Last-Event-ID` when the
connection drops (a daemon restart, say), so no change is lost or printed twice; a
resume point the daemon no longer has (a GAP event) re-lists. A row is printed only when
it differs from the one last printed for that resource, so the list read at the start
and the events that follow it never show the same state twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import click

from no8sd.cli import refs, session
from no8sd.cli.http import EXIT_NOT_FOUND, ClientError, Connection, Event
from no8sd.cli.output import (
    FORMATS,
    age,
    coloured,
    compact,
    dump,
    echo,
    interactive,
    parse_time,
    span,
    table,
)

HEADERS: Final = ("NAME", "TYPE", "STATUS", "GEN/OBSERVED", "READY", "AGE")
WIDE: Final = ("ID", "RETRIES", "NEXT RECONCILE", "MESSAGE")
TYPE_HEADERS: Final = ("NAME", "VERSION", "STATUS", "RESOURCES", "DESCRIPTION", "AGE")
ALL_RESOURCES: Final = ("resources", "resource", "res")
ALL_TYPES: Final = ("types", "type", "resourcetypes", "resource-types")
STATUSES: Final = ("pending", "reconciling", "ready", "failed", "deleting")


def condition(resource: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A resource's condition of that type, or None."""
    return next((c for c in resource.get("conditions") or [] if c.get("type") == name), None)


def ready(resource: dict[str, Any]) -> str:
    """The READY column: the Ready condition's status and reason."""
    found = condition(resource, "Ready")
    return f"{found['status']} {found['reason']}".strip() if found else "-"


def resource_row(r: dict[str, Any], *, wide: bool = False, now: float | None = None,
                 status: str | None = None) -> list[str]:
    """One table row for a resource."""
    row = [r["name"], f"{r['resource_type_name']}/{r['resource_type_version']}",
           status or r["status"], f"{r['generation']}/{r['observed_generation']}",
           ready(r), age(r["created_at"], now)]
    if wide:
        due = r.get("next_reconcile_time")
        row += [str(r["id"]), str(r.get("retry_count", 0)),
                "-" if not due else age_until(due, now), r.get("status_message") or ""]
    return row


def age_until(text: str, now: float | None = None) -> str:
    """`in 4m`, or `now` for a due time that has come."""
    then = parse_time(text)
    left = 0.0 if then is None else then - (now or time.time())
    return f"in {span(left)}" if left >= 1 else "now"


@click.command("get")
@click.argument("what", metavar="resources|types|TYPE[/VERSION]",
                shell_complete=refs.complete_target)
@click.argument("name", required=False)
@click.option("--version", "type_version", metavar="VERSION",
              help="Only resources of this type version.")
@click.option("--status", type=click.Choice(STATUSES), help="Only resources in this status.")
@click.option("-o", "--output", type=click.Choice(FORMATS),
              help="json or yaml (the API's records), wide (more columns), name (TYPE/NAME).")
@click.option("-w", "--watch", is_flag=True, help="After listing, print each change as it "
                                                  "happens (Ctrl-C to stop).")
@session.connection_options
def get_command(what: str, name: str | None, type_version: str | None, status: str | None,
                output: str | None, watch: bool) -> None:
    """List resources or resource types, or show one.

    \b
    Examples:
      no8sd get resources                       # every resource
      no8sd get DnsRecord --status failed       # one type, filtered
      no8sd get DnsRecord/v1 api-record -o yaml
      no8sd get types
      no8sd get resources -w                    # and then every change
    """
    conn = session.connect()
    if what.lower() in ALL_TYPES:
        if watch:
            raise click.UsageError("--watch follows resources, not types")
        print_types(conn, name, output)
        return
    type_name: str | None = None
    if what.lower() not in ALL_RESOURCES:
        given, version = refs.split_type(what)
        type_name = refs.type_name(conn, given)
        type_version = type_version or version
    if name is not None and type_name is None:
        raise click.UsageError("name a type to get one resource: get TYPE[/VERSION] NAME")
    query = {"resource_type_name": type_name, "resource_type_version": type_version,
             "status": status}

    def wanted(r: dict[str, Any]) -> bool:
        return ((type_name is None or r["resource_type_name"] == type_name)
                and (type_version is None or r["resource_type_version"] == type_version)
                and (status is None or r["status"] == status)
                and (name is None or r["name"] == name))

    def load() -> list[dict[str, Any]]:
        if name is None:
            return refs.paged(conn, "/api/v1/resources", query)
        found = refs.find_resource(conn, (f"{type_name}/{type_version}" if type_version
                                          else str(type_name), name))
        return [found] if wanted(found) else []

    if watch:
        _watch(conn, query, load, wanted, output)
        return
    listed = load()
    if name is not None and output in ("json", "yaml"):
        if not listed:
            raise ClientError(f"{name} is not {status}", EXIT_NOT_FOUND)
        echo(dump(listed[0], output))
        return
    _print_resources(listed, output)


def _print_resources(listed: list[dict[str, Any]], output: str | None) -> None:
    if output in ("json", "yaml"):
        echo(dump(listed, output))
    elif output == "name":
        for r in listed:
            echo(refs.label(r))
    elif not listed:
        echo("No resources found.", err=True)
    else:
        headers = HEADERS + WIDE if output == "wide" else HEADERS
        now = time.time()
        echo(table(headers, [resource_row(r, wide=output == "wide", now=now) for r in listed],
                   colour_column=2))


def print_types(conn: Connection, name: str | None, output: str | None) -> None:
    found = refs.paged(conn, "/api/v1/resource-types")
    if name is not None:
        given, version = refs.split_type(name)
        stored = refs.type_name(conn, given)
        found = [t for t in found if t["name"] == stored
                 and (version is None or t["version"] == version)]
    if output in ("json", "yaml"):
        echo(dump(found, output))
        return
    if output == "name":
        for t in found:
            echo(f"resourcetype/{t['name']}/{t['version']}")
        return
    if not found:
        echo("No resource types found.", err=True)
        return
    counts: dict[tuple[str, str], int] = {}
    for r in refs.paged(conn, "/api/v1/resources"):
        key = (r["resource_type_name"], r["resource_type_version"])
        counts[key] = counts.get(key, 0) + 1
    now = time.time()
    echo(table(TYPE_HEADERS, [
        [t["name"], t["version"], t["status"], str(counts.get((t["name"], t["version"]), 0)),
         (t.get("description") or "")[:60], age(t["created_at"], now)] for t in found]))


# ---- watching ------------------------------------------------------------------------


def _watch(conn: Connection, query: dict[str, Any], load: Callable[[], list[dict[str, Any]]],
           wanted: Callable[[dict[str, Any]], bool], output: str | None) -> None:
    """Print the list, then each change, until interrupted."""
    printer = _WatchPrinter(output)
    stream = {"resource_type": query["resource_type_name"],
              "resource_type_version": query["resource_type_version"]}

    def reconnecting(reason: str) -> None:
        if interactive():
            echo(f"no8sd: {reason}; reconnecting...", err=True)

    # Open the stream before listing: whatever changes after the list was read is then
    # in the stream (and a row already shown is not shown again).
    events = conn.events("/api/v1/events", query=stream, on_reconnect=reconnecting)
    try:
        next(events)  # the opening frame: connected
        printer.start(load())
        for event in events:
            if event.type == "GAP":
                for r in load():
                    printer.show(r)
                continue
            printer.event(event, wanted)
    except KeyboardInterrupt:
        pass


class _WatchPrinter:
    """Prints rows in the format asked for, each resource's state once."""

    def __init__(self, output: str | None) -> None:
        self.output = output
        self.shown: dict[int, tuple[str, ...]] = {}
        self.widths: list[int] = []

    def start(self, listed: list[dict[str, Any]]) -> None:
        now = time.time()
        if self.output in (None, "wide"):
            headers = HEADERS + WIDE if self.output == "wide" else HEADERS
            rows = [resource_row(r, wide=self.output == "wide", now=now) for r in listed]
            text = table(headers, rows, colour_column=2)
            self.widths = [len(h) for h in headers]
            for row in rows:
                self.widths = [max(w, len(c)) for w, c in zip(self.widths, row, strict=True)]
            echo(text)
            for r, row in zip(listed, rows, strict=True):
                self.shown[r["id"]] = self._key(row)
        else:
            for r in listed:
                self.show(r)

    def event(self, event: Event, wanted: Callable[[dict[str, Any]], bool]) -> None:
        data = event.data or {}
        resource = data.get("resource_data")
        if event.type in ("", "GAP") or not isinstance(resource, dict) or not wanted(resource):
            return
        self.show(resource, removed=event.type == "REMOVED")

    def show(self, r: dict[str, Any], *, removed: bool = False) -> None:
        row = resource_row(r, wide=self.output == "wide", status="removed" if removed else None)
        key = self._key(row)
        if self.shown.get(r["id"]) == key:
            return
        self.shown[r["id"]] = key
        if self.output in ("json", "yaml"):
            shown = {**r, "status": "removed"} if removed else r
            echo(compact(shown) if self.output == "json" else "---\n" + dump(shown, "yaml"))
        elif self.output == "name":
            echo(refs.label(r))
        else:
            cells = [cell.ljust(w) if i < len(row) - 1 else cell
                     for i, (cell, w) in enumerate(zip(row, self.widths or map(len, row),
                                                       strict=True))]
            cells[2] = coloured(row[2], row[2]) + cells[2][len(row[2]):]
            echo("  ".join(cells).rstrip())

    @staticmethod
    def _key(row: list[str]) -> tuple[str, ...]:
        return tuple(cell for i, cell in enumerate(row) if i != 5)  # the age always moves
