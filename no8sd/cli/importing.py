"""`no8sd import FILE|-`: load an export (no8sd.cli.transfer) into a server, idempotently.

Every line is checked before anything is sent: one that does not parse (or names an
unknown kind or field, or an object already seen) stops the import with its file and
line, and nothing is written. Then, in three passes over the file: the resource types
(a deprecated one first as active, since a deprecated type takes no new resources),
the resources, and last the types' deprecation. Each object is created when missing,
updated when it differs, left alone otherwise, so running the import again changes
nothing. An object the server refuses is reported with its line; the others go on, and
the command exits 1.

Resources are written a batch at a time on a few connections at once (`--jobs`), which
lets the daemon commit what arrives together in one transaction; results are still
taken in file order, and no more of the file is read than the batches in flight.

Two ways to write, chosen by asking the server (`--via auto`):

- `apply`, where the server has POST /api/v1/apply (no8sd): the objects go in batches of
  100 to server-side apply, which answers created/configured/unchanged per object and the
  record it holds; finalizers the server lacks are added (PUT .../finalizers) and outputs
  that differ are merged in (PUT .../outputs), one request each, only when needed.
- `rest`, for a server with only the upstream routes (no8s-operator): per object, a GET
  by name, then POST or PUT; finalizers through PUT .../finalizers. Upstream shows
  neither a resource's spec nor its metadata and cannot change metadata, so an existing
  resource there is left as it is (and said so); it has no route to write outputs, so
  those are reported as not carried.

Finalizers are only ever added, never removed: a finalizer on the target guards a
clean-up there. Outputs are merged key by key; a key the target has and the export lacks
stays. History lines are never imported (no API writes history); they are counted.
"""

from __future__ import annotations

import abc
import sys
import tempfile
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Final

import click

from no8sd import jsoncodec
from no8sd.cli import session, transfer
from no8sd.cli.http import EXIT_ERROR, EXIT_USAGE, ApiError, ClientError, Connection
from no8sd.cli.progress import Progress, progress_line
from no8sd.cli.transfer import RESOURCE, RESOURCE_TYPE, Line

BATCH: Final = 100  # objects per apply request
BATCH_BYTES: Final = 768 * 1024  # below the daemon's 1 MiB body limit
# Batches of resources in flight at once: the daemon's single writer commits the writes
# that arrive together in one transaction (the finalizer and output requests above all,
# one commit each otherwise). Measured on a busy 2-core machine: 5,000 resources in 10 s
# instead of 13 s with one; the daemon's own CPU is the limit beyond that.
JOBS: Final = 4
CREATED, UPDATED, UNCHANGED, FAILED = "created", "updated", "unchanged", "failed"


@click.command("import")
@click.argument("source", metavar="FILE|-")
@click.option("--via", type=click.Choice(["auto", "apply", "rest"]), default="auto",
              show_default=True,
              help="How to write: server-side apply (no8sd), the plain upstream routes (any "
                   "server speaking the no8s-operator API), or whichever the server has.")
@click.option("--jobs", type=click.IntRange(1, 16), default=JOBS, show_default=True,
              help="Batches written at once (each on its own connection).")
@session.connection_options
def import_command(source: str, via: str, jobs: int) -> None:
    """Load an export (`no8sd export`) into a server; running it again changes nothing.

    Resource types and resources are created when missing, updated when they differ and
    left alone otherwise; missing finalizers are added and outputs that differ are
    merged in. The whole file is checked first: a malformed line stops the import with
    its line number before anything is written (exit code 2). Prints how many objects
    were created, updated, unchanged and failed; exits 1 if any failed.

    \b
    Examples:
      no8sd import no8sd.jsonl
      no8sd import --server https://operator.example.com --token "$TOKEN" no8sd.jsonl
      no8sd export --db old.db | no8sd import -
    """
    with _opened(source) as (name, stream):
        census, problems = transfer.check(stream)
        _refuse(name, problems)
        conn = session.connect()
        if via == "auto":
            via = "apply" if _has_apply(conn) else "rest"
        writer: Writer = (ApplyWriter if via == "apply" else RestWriter)(conn)
        run = Run(name, writer, census.objects, progress_line("Importing", "objects"), jobs)
        try:
            run.everything(stream)
        except ClientError:
            click.echo(run.summary(conn.server) + " before it stopped", err=True)
            raise
    click.echo(run.summary(conn.server))
    for line in run.failures:
        click.echo(f"no8sd: error: {line}", err=True)
    if census.history:
        click.echo(f"no8sd: note: {census.history} history entries were not imported: no API "
                   f"writes history (they stay in {name})", err=True)
    if writer.no_outputs:
        click.echo(f"no8sd: note: the outputs of {writer.no_outputs} resources were not "
                   f"carried: {conn.server} has no route to write outputs", err=True)
    if writer.unseen:
        click.echo(f"no8sd: note: {writer.unseen} resources that exist on {conn.server} were "
                   "left as they are: it does not show their spec to compare", err=True)
    if run.counts[FAILED]:
        raise click.exceptions.Exit(EXIT_ERROR)


class _opened:
    """The export as a seekable text stream: the file itself, or standard input spooled
    to a temporary file (so it can be read in several passes in bounded memory)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stream: IO[str] | None = None

    def __enter__(self) -> tuple[str, IO[str]]:
        if self.source == "-":
            spool = tempfile.TemporaryFile("w+", encoding="utf-8")
            for chunk in iter(lambda: sys.stdin.read(1 << 20), ""):
                spool.write(chunk)
            spool.seek(0)
            self.stream = spool
            return "<stdin>", spool
        try:
            self.stream = open(self.source, encoding="utf-8")  # closed by __exit__
        except OSError as exc:
            raise ClientError(f"cannot read {self.source}: {exc.strerror or exc}",
                              EXIT_USAGE) from None
        return self.source, self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def _refuse(name: str, problems: list[tuple[int, str]]) -> None:
    """Stop before writing anything when a line is malformed."""
    if not problems:
        return
    if len(problems) == 1:
        number, problem = problems[0]
        raise ClientError(f"{name}:{number}: {problem}; nothing was imported", EXIT_USAGE)
    for number, problem in problems:
        click.echo(f"no8sd: error: {name}:{number}: {problem}", err=True)
    more = " (or more)" if len(problems) >= transfer.MAX_PROBLEMS else ""
    raise ClientError(f"{name}: {len(problems)}{more} malformed lines; nothing was imported",
                      EXIT_USAGE)


def _has_apply(conn: Connection) -> bool:
    """Whether the server has server-side apply (an empty apply writes nothing)."""
    try:
        conn.request("POST", "/api/v1/apply", {"manifests": []})
    except ApiError as exc:
        if exc.status in (404, 405):
            return False
        raise
    return True


# ---- the run ----------------------------------------------------------------------------


Result = str  # CREATED, UPDATED or UNCHANGED; a failure raises Refused


class Refused(Exception):
    """The server refused (part of) one object; the message is its detail."""


@dataclass
class Run:
    """One import: the passes over the file, the counts, the failures."""

    name: str
    writer: Writer
    total: int
    report: Progress | None
    jobs: int = 1
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((CREATED, UPDATED, UNCHANGED, FAILED), 0))
    failures: list[str] = field(default_factory=list)
    done: int = 0

    def everything(self, stream: IO[str]) -> None:
        types: dict[int, Result | None] = {}  # line -> result (None: failed), counted last
        deprecations: list[Line] = []
        for batch in self._batches(stream, RESOURCE_TYPE):
            first = [_as_active(line) for line in batch]
            for line, result in zip(batch, self.writer.write(first), strict=True):
                types[line.number] = self._settle(line, result, count=False)
                if line.body.get("status") not in (None, "active"):
                    deprecations.append(line)
            self._advance(len(batch))
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="import") as pool:
            for batch, results in _in_order(pool, self.writer.write,
                                            self._batches(stream, RESOURCE), self.jobs):
                for line, result in zip(batch, results, strict=True):
                    self._settle(line, result)
                self._advance(len(batch))
        for batch in _chunks(iter(deprecations)):
            for line, result in zip(batch, self.writer.write(batch), strict=True):
                earlier = types[line.number]
                if earlier is None:
                    continue  # already failed (and reported) in the first pass
                later = self._settle(line, result, count=False)
                types[line.number] = None if later is None else _combine(earlier, later)
        for outcome in types.values():
            self.counts[outcome or FAILED] += 1
        if self.report is not None and self.total == 0:
            self.report(0, 0)

    def _batches(self, stream: IO[str], kind: str) -> Iterator[list[Line]]:
        """The lines of one kind, in batches."""
        stream.seek(0)
        wanted = (found for number, text in transfer.lines(stream)
                  if isinstance(found := transfer.parse(number, text), Line)
                  and found.kind == kind)
        yield from _chunks(wanted)

    def _advance(self, written: int) -> None:
        self.done += written
        if self.report is not None:
            self.report(self.done, self.total)

    def _settle(self, line: Line, result: Result | Exception, *, count: bool = True
                ) -> Result | None:
        if isinstance(result, Exception):
            self.failures.append(f"{self.name}:{line.number}: {line.label()}: {result}")
            if count:
                self.counts[FAILED] += 1
            return None
        if count:
            self.counts[result] += 1
        return result

    def summary(self, server: str) -> str:
        c = self.counts
        return (f"Imported {self.name} into {server}: {c[CREATED]} created, {c[UPDATED]} "
                f"updated, {c[UNCHANGED]} unchanged, {c[FAILED]} failed")


def _as_active(line: Line) -> Line:
    """A type line for the first pass: a deprecated type is written active (its resources
    come next), and deprecated in the last pass."""
    status = line.body.get("status")
    if status in (None, "active"):
        return line
    return Line(line.number, line.kind, {k: v for k, v in line.body.items() if k != "status"})


def _combine(first: Result, second: Result) -> Result:
    if first == CREATED:
        return CREATED
    return UPDATED if UPDATED in (first, second) else UNCHANGED


def _chunks(lines: Iterator[Line]) -> Iterator[list[Line]]:
    """Batches of at most BATCH objects and about BATCH_BYTES of JSON."""
    batch: list[Line] = []
    size = 0
    for line in lines:
        item = len(jsoncodec.dumps(line.body))
        if batch and (len(batch) >= BATCH or size + item > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += item
    if batch:
        yield batch


def _in_order(pool: ThreadPoolExecutor, work: Callable[[list[Line]], list[Result | Exception]],
              batches: Iterator[list[Line]], jobs: int
              ) -> Iterator[tuple[list[Line], list[Result | Exception]]]:
    """(batch, results) for each batch, in file order, with up to `jobs` batches being
    written at once (and no more read ahead: memory stays bounded)."""
    waiting: deque[tuple[list[Line], Future[list[Result | Exception]]]] = deque()
    for batch in batches:
        waiting.append((batch, pool.submit(work, batch)))
        if len(waiting) >= jobs:
            first, future = waiting.popleft()
            yield first, future.result()
    while waiting:
        first, future = waiting.popleft()
        yield first, future.result()


# ---- writing through server-side apply -----------------------------------------------


class Writer(abc.ABC):
    """Writes objects to a server; notes what the server could not take. ApplyWriter
    (server-side apply) and RestWriter (upstream's plain routes) say how."""

    def __init__(self, conn: Connection) -> None:
        self.first = conn
        self.no_outputs = 0  # resources whose outputs the server had no route for
        self.unseen = 0  # existing resources the server would not show to compare
        self.takes_outputs = True
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def conn(self) -> Connection:
        """This thread's connection (batches are written on several at once)."""
        if threading.current_thread() is threading.main_thread():
            return self.first
        found: Connection | None = getattr(self._local, "conn", None)
        if found is None:
            first = self.first
            found = Connection(first.server, first.token, timeout=first.timeout)
            self._local.conn = found
        return found

    def count(self, what: str) -> None:
        """Note one more resource the server could not take fully ("no_outputs"/"unseen")."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    @abc.abstractmethod
    def write(self, batch: list[Line]) -> list[Result | Exception]:
        """Write a batch of one kind; one result (or the refusal) per object, in order."""

    def carry(self, line: Line, record: dict[str, Any]) -> bool:
        """Add the finalizers and merge the outputs the server's `record` lacks; return
        whether anything was written."""
        wrote = False
        wanted: list[str] = line.body.get("finalizers") or []
        outputs: dict[str, Any] = line.body.get("outputs") or {}
        if not wanted and not outputs:
            return False
        resource_id = record.get("id")
        if (wanted and "finalizers" not in record) or not isinstance(resource_id, int):
            raise Refused("the server does not show it back to compare finalizers and "
                          "outputs (READ on its type is needed)")
        missing = [f for f in wanted if f not in record.get("finalizers", [])]
        if missing:
            self._call("PUT", f"/api/v1/resources/{resource_id}/finalizers", {"add": missing})
            wrote = True
        if outputs and self.takes_outputs:
            held = record.get("outputs")
            if held is None:
                held = (self._call("GET", f"/api/v1/resources/{resource_id}/outputs") or {}
                        ).get("outputs") or {}
            differing = {k: v for k, v in outputs.items() if k not in held
                         or not _same(held[k], v)}
            if differing:
                wrote = self._put_outputs(resource_id, differing) or wrote
        elif outputs:
            self.count("no_outputs")
        return wrote

    def _put_outputs(self, resource_id: int, outputs: dict[str, Any]) -> bool:
        try:
            self.conn.request("PUT", f"/api/v1/resources/{resource_id}/outputs",
                              {"outputs": outputs})
        except ApiError as exc:
            if exc.status == 405 or (exc.status == 404 and exc.detail == "Not Found"):
                self.takes_outputs = False  # a server without the route: said at the end
                self.count("no_outputs")
                return False
            raise Refused(_detail(exc)) from None
        return True

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.conn.request(method, path, body)
        except ApiError as exc:
            raise Refused(_detail(exc)) from None


class ApplyWriter(Writer):
    """POST /api/v1/apply in batches, then what apply does not set."""

    def write(self, batch: list[Line]) -> list[Result | Exception]:
        manifests = [_manifest(line) for line in batch]
        try:
            answer = self.conn.request("POST", "/api/v1/apply", {"manifests": manifests})
        except ApiError as exc:
            if exc.status in (401, 403) or exc.status >= 500:
                raise  # the whole request was refused: nothing will go better
            return [Refused(_detail(exc)) for _ in batch]
        results: list[Result | Exception] = []
        for line, outcome in zip(batch, answer["results"], strict=True):
            if outcome["result"] == "error":
                results.append(Refused(_detail_of(outcome)))
                continue
            result = UPDATED if outcome["result"] == "configured" else outcome["result"]
            if line.kind == RESOURCE:
                try:
                    if self.carry(line, outcome.get("record") or {}) and result == UNCHANGED:
                        result = UPDATED
                except Refused as exc:
                    results.append(exc)
                    continue
            results.append(result)
        return results


def _manifest(line: Line) -> dict[str, Any]:
    fields = transfer.TYPE_FIELDS if line.kind == RESOURCE_TYPE else transfer.RESOURCE_FIELDS
    return {"kind": line.kind, **{k: line.body[k] for k in fields if k in line.body}}


# ---- writing through the plain routes ---------------------------------------------------


class RestWriter(Writer):
    """Per object: GET by name, then POST or PUT (the routes no8s-operator has)."""

    def write(self, batch: list[Line]) -> list[Result | Exception]:
        one: Callable[[Line], Result] = self._type if batch[0].kind == RESOURCE_TYPE \
            else self._resource
        results: list[Result | Exception] = []
        for line in batch:
            try:
                results.append(one(line))
            except Refused as exc:
                results.append(exc)
        return results

    def _find(self, path: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.conn.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise Refused(_detail(exc)) from None
        return found

    def _type(self, line: Line) -> Result:
        body = line.body
        current = self._find(f"/api/v1/resource-types/{_q(body['name'])}/{_q(body['version'])}")
        if current is None:
            self._call("POST", "/api/v1/resource-types",
                       {k: body[k] for k in ("name", "version", "schema", "description",
                                             "metadata") if body.get(k) is not None})
            return CREATED
        changed = _changes(current, body, ("schema", "description", "metadata", "status"))
        if not changed:
            return UNCHANGED
        self._call("PUT", f"/api/v1/resource-types/{current['id']}", changed)
        return UPDATED

    def _resource(self, line: Line) -> Result:
        body = line.body
        current = self._find(f"/api/v1/resources/by-name/{_q(body['resource_type_name'])}/"
                             f"{_q(body['resource_type_version'])}/{_q(body['name'])}")
        result = UNCHANGED
        if current is None:
            created = self._call("POST", "/api/v1/resources",
                                 {k: body[k] for k in transfer.RESOURCE_FIELDS
                                  if body.get(k) is not None})
            current, result = created or {}, CREATED
        elif current.get("deleted_at") is not None or current.get("status") == "deleting":
            raise Refused("it is being deleted on the server; import it again once it is gone")
        elif "spec" not in current:
            self.count("unseen")
        else:
            changed = _changes(current, body, ("spec", "plugin_config", "metadata"))
            if changed:
                current = self._call("PUT", f"/api/v1/resources/{current['id']}", changed)
                result = UPDATED
        if self.carry(line, current) and result == UNCHANGED:
            result = UPDATED
        return result


def _changes(current: dict[str, Any], wanted: dict[str, Any],
             keys: tuple[str, ...]) -> dict[str, Any]:
    """The fields of `wanted` that differ from what the server shows (fields it does not
    show are left out: they cannot be compared)."""
    return {k: wanted[k] for k in keys if wanted.get(k) is not None and k in current
            and not _same(current[k], wanted[k])}


def _same(a: Any, b: Any) -> bool:
    """JSON values compared as the server compares them (canonical text)."""
    return jsoncodec.dumps(_sorted(a)) == jsoncodec.dumps(_sorted(b))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _detail(exc: ApiError) -> str:
    return f"{exc.detail} ({exc.status})"


def _detail_of(outcome: dict[str, Any]) -> str:
    detail = outcome.get("detail") or "refused"
    return f"{detail} ({outcome['status']})" if outcome.get("status") else str(detail)
