"""`no8sd export`: every resource type and resource as JSON lines (no8sd.cli.transfer).

Two sources give the same text. A database file (`--db PATH`) is read through the store
(no8sd.store.export): read-only, as of one moment, while a daemon keeps running or
without one. A running daemon (`--server`, or the server the client commands use) is
read over HTTP: types a page at a time, resources with keyset pages
(`?after_id=` and the `X-Next-After-Id` header), so memory stays flat at any size; that
export is not one moment, a resource changed meanwhile is exported as it was when its
page was read. With --history, each resource's history follows it (over HTTP, the newest
1,000 entries a resource; the daemon keeps 100 unless --history-limit says otherwise).

Resources being deleted (waiting for their finalizers) are left out and counted: they
are on their way out, and importing one would bring it back. The file is written beside
its destination and renamed into place when complete, readable by the owner only (a
resource's plugin_config may hold credentials).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import click
from click.core import ParameterSource

from no8sd.cli import Invocation, session, transfer
from no8sd.cli.http import EXIT_USAGE, ClientError, Connection
from no8sd.cli.progress import Progress, end_line, progress_line

PAGE: Final = 1000  # resources or types per request (the API's largest page)
HISTORY_PAGE: Final = 1000  # history entries per resource over HTTP (the route's maximum)


@dataclass
class Tally:
    """What an export wrote."""

    types: int = 0
    resources: int = 0
    history: int = 0
    deleting: int = 0  # left out


@click.command("export")
@click.option("-o", "--output", "output", default="-", metavar="FILE|-",
              help="Where to write (default: - for standard output).")
@click.option("--history", is_flag=True, help="Also export each resource's reconciliation "
                                              "history (kept in the file; no API can import "
                                              "it).")
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Read this database file instead of asking a daemon (read-only; a daemon "
                   "may be running on it).")
@session.connection_options
@click.pass_context
def export_command(ctx: click.Context, output: str, history: bool, db: Path | None) -> None:
    """Write every resource type and resource as JSON lines, for `no8sd import`.

    Types come first, then resources: spec, metadata, plugin_config, action_plugin,
    finalizers and outputs (no ids, status or times: the server importing them makes its
    own). Resources being deleted are left out. The source is a database file (--db, or
    `no8sd --db PATH export`) or a running daemon (--server / NO8SD_SERVER, else the
    last `no8sd login`).

    \b
    Examples:
      no8sd export -o no8sd.jsonl                       # from the daemon
      no8sd export --db /var/lib/no8sd/no8sd.db -o no8sd.jsonl
      no8sd export --server http://old:8000 | no8sd import --server http://new:8000 -
    """
    db = db or _top_level_db(ctx)
    if db is not None and ctx.get_parameter_source("server") == ParameterSource.COMMANDLINE:
        raise ClientError("give --db or --server, not both", EXIT_USAGE)
    to_terminal = output == "-" and sys.stdout.isatty()
    report = None if to_terminal else progress_line("Exporting", "resources")
    with _destination(output) as stream:
        if db is not None:
            source = str(db)
            tally = _from_file(db, stream, history, report)
        else:
            conn = session.connect()
            source = conn.server
            tally = _from_server(conn, stream, history, report)
    where = "standard output" if output == "-" else output
    left_out = f"; {tally.deleting} being deleted left out" if tally.deleting else ""
    with_history = f" and {_count(tally.history, 'history entry', 'history entries')}" \
        if history else ""
    click.echo(f"Exported {_count(tally.types, 'resource type')}, "
               f"{_count(tally.resources, 'resource')}{with_history} from {source} to "
               f"{where}{left_out}", err=True)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _top_level_db(ctx: click.Context) -> Path | None:
    """The database given on the command line before the command (`no8sd --db X export`);
    one from NO8SD_DB or a config file does not count (it configures a daemon)."""
    parent = ctx.parent
    if parent is None or parent.get_parameter_source("db_path") != ParameterSource.COMMANDLINE:
        return None
    invocation = parent.find_object(Invocation)
    return invocation.settings.db_path if invocation is not None else None


@contextlib.contextmanager
def _destination(output: str) -> Iterator[IO[str]]:
    """Standard output, or a private temporary file renamed to `output` once complete."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise ClientError(f"{output} is a directory; give a file name", EXIT_USAGE)
    try:
        fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                       dir=target.parent if str(target.parent) else ".")
    except OSError as exc:
        raise ClientError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(scratch, target)
    except OSError as exc:
        raise ClientError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _write(stream: IO[str], line: dict[str, Any]) -> None:
    stream.write(transfer.dumps(line))
    stream.write("\n")


# ---- from a database file -----------------------------------------------------------


def _from_file(db: Path, stream: IO[str], history: bool, report: Progress | None) -> Tally:
    from no8sd.core.views import history_rest, resource_rest, type_rest
    from no8sd.store.export import ExportFailed, Snapshot

    tally = Tally()
    try:
        with Snapshot(db) as snapshot:
            for resource_type in snapshot.types():
                _write(stream, transfer.type_line(type_rest(resource_type)))
                tally.types += 1
            total, tally.deleting = snapshot.counts()
            for resource in snapshot.resources():
                rest = resource_rest(resource)
                _write(stream, transfer.resource_line(rest))
                tally.resources += 1
                if history:
                    for entry in snapshot.history(resource.id):
                        _write(stream, transfer.history_line(rest, history_rest(entry)))
                        tally.history += 1
                if report is not None:
                    report(tally.resources, total)
            if report is not None and total == 0:
                report(0, 0)
    except ExportFailed as exc:
        raise ClientError(str(exc)) from None
    return tally


# ---- from a running daemon ----------------------------------------------------------


def _from_server(conn: Connection, stream: IO[str], history: bool,
                 report: Progress | None) -> Tally:
    tally = Tally()
    offset = 0
    while True:
        page = conn.request("GET", "/api/v1/resource-types",
                            query={"limit": PAGE, "offset": offset})
        _expect_list(conn, page)
        for rest in page:
            _write(stream, transfer.type_line(rest))
            tally.types += 1
        if len(page) < PAGE:
            break
        offset += PAGE
    after = 0
    while True:
        page, headers = conn.exchange("GET", "/api/v1/resources",
                                      query={"limit": PAGE, "after_id": after})
        _expect_list(conn, page)
        following = headers.get("X-Next-After-Id")
        for rest in page:
            if "spec" not in rest:
                raise ClientError(f"{conn.server} does not show resources' spec; export "
                                  "reads no8sd (or its database file)")
            if not isinstance(rest.get("id"), int) or rest["id"] <= after:
                raise ClientError(f"{conn.server} does not page resources with after_id; "
                                  "export reads no8sd (or its database file)")
            if rest.get("deleted_at") is not None:
                tally.deleting += 1
                continue
            _write(stream, transfer.resource_line(rest))
            tally.resources += 1
            if history:
                entries = conn.request("GET", f"/api/v1/resources/{rest['id']}/history",
                                       query={"limit": HISTORY_PAGE})
                _expect_list(conn, entries)
                for entry in reversed(entries):  # the route answers newest first
                    _write(stream, transfer.history_line(rest, entry))
                    tally.history += 1
        if report is not None:
            report(tally.resources, None)
        if following is None:
            if len(page) >= PAGE:
                raise ClientError(f"{conn.server} does not page resources with after_id; "
                                  "export reads no8sd (or its database file)")
            break
        after = int(following)
    end_line(report)
    return tally


def _expect_list(conn: Connection, page: Any) -> None:
    if not isinstance(page, list):
        raise ClientError(f"{conn.server} answered something other than a list; is it no8sd?")
