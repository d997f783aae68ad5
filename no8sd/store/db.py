"""Connections, pragmas, migrations, the file lock and the single writer.

Writes: every write is a *unit*, a plain function `fn(tx, *args)` run on one dedicated
writer thread with its own sqlite3 connection. The thread takes all units that are
waiting (group commit), runs each inside a SAVEPOINT of one `BEGIN IMMEDIATE`
transaction, commits once, and only then resolves the callers' futures and publishes
the events the units appended. So there is never "database is locked", a unit that
fails rolls back alone, and one fsync is shared by every write in the batch.
aiosqlite does not offer running a batch of functions inside one transaction on its
thread, which group commit needs; it serves the reads instead.

Reads: a small pool of read-only aiosqlite connections. In WAL mode they see the last
committed state and never wait behind the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any, TypeVar

import aiosqlite

from no8sd.errors import StartupError, Unavailable
from no8sd.store.cache import ResourceCache

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 256


@dataclass
class Event:
    """A committed change, as appended to the event log and fanned out after commit."""

    id: int
    event_type: str
    resource_id: int
    resource_type_name: str
    resource_type_version: str
    data: str  # the JSON payload, serialised once
    ts: float


@dataclass
class Tx:
    """What a write unit gets: the connection, plus places to note post-commit effects."""

    conn: sqlite3.Connection
    events: list[Event] = field(default_factory=list)
    wake: set[str] = field(default_factory=set)  # resource type names with work due now
    touched: set[int] = field(default_factory=set)  # resource ids changed (cache invalidation)
    rows: dict[int, Any] = field(default_factory=dict)  # resources already read in this unit
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement in this unit's transaction."""
        return self.conn.execute(sql, tuple(params))

    def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """Fetch one row."""
        return self.conn.execute(sql, tuple(params)).fetchone()


@dataclass
class _Unit:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]


class _Stop:
    pass


def _connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StartupError(f"cannot switch {path} to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migration_files() -> list[tuple[int, str, str]]:
    """Return (number, name, sql) for every bundled migration, in order."""
    folder = importlib_resources.files("no8sd.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number: {numbers}")
    return found


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than PRAGMA user_version; return the final version."""
    files = migration_files()
    latest = files[-1][0] if files else 0
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > latest:
        raise StartupError(
            f"database schema version {current} is newer than this no8sd understands "
            f"({latest}); upgrade no8sd or use another --db"
        )
    for number, name, sql in files:
        if number <= current:
            continue
        log.info("Applying migration %s", name)
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return latest


class Database:
    """Owns the database file: lock, writer thread, reader pool."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                 readers: int = 2) -> None:
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._reader_count = readers
        self._lock_fd: int | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[_Unit | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._reader_cycle: itertools.cycle[aiosqlite.Connection] | None = None
        self._on_commit: Callable[[list[Event], set[str]], None] | None = None
        self._closed = False
        self.resource_cache = ResourceCache()

    def on_commit(self, callback: Callable[[list[Event], set[str]], None]) -> None:
        """Call `callback(events, wake_types)` on the event loop after every commit."""
        self._on_commit = callback

    async def open(self) -> None:
        """Lock the file, apply migrations, start the writer and open the readers."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open_sync)
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA busy_timeout = 5000")
            await reader.execute("PRAGMA query_only = 1")
            self._readers.append(reader)
        self._reader_cycle = itertools.cycle(self._readers)
        self._thread = threading.Thread(target=self._writer_main, name="no8sd-writer", daemon=True)
        self._thread.start()

    def _open_sync(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupError(f"cannot open database {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StartupError(
                f"database {self.path} is in use by another running no8sd"
            ) from None
        self._lock_fd = fd
        try:
            self._writer_conn = _connect(self.path, synchronous=self.synchronous)
            result = self._writer_conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise StartupError(f"database {self.path} is damaged: {result}")
            migrate(self._writer_conn)
        except sqlite3.DatabaseError as exc:
            self._release_sync()
            raise StartupError(f"cannot use database {self.path}: {exc}") from None
        except StartupError:
            self._release_sync()
            raise

    def _release_sync(self) -> None:
        if self._writer_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer_conn.close()
            self._writer_conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def close(self) -> None:
        """Drain and stop the writer, close every connection, release the lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_Stop())
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await reader.close()
        self._readers.clear()
        if self._writer_conn is not None:
            conn = self._writer_conn

            def _finish() -> None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA optimize")
                    # Fold the WAL back into the main file so a clean stop leaves one file.
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._release_sync()

            await asyncio.to_thread(_finish)

    # ---- writes -------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(tx, *args, **kwargs)` in the single writer's transaction; return its result."""
        if self._closed or self._thread is None:
            raise Unavailable("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Unit(fn, args, kwargs, future))
        # Shielded so a client that disconnects cannot leave a unit half-acknowledged: the
        # write finishes (or not) as a whole whatever happens to the awaiting handler.
        return await asyncio.shield(future)

    def _writer_main(self) -> None:
        conn = self._writer_conn
        assert conn is not None and self._loop is not None
        stopping = False
        while not stopping:
            first = self._queue.get()
            if isinstance(first, _Stop):
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stopping = True
                    break
                batch.append(item)
            outcomes = self._run_batch(conn, batch)
            self._loop.call_soon_threadsafe(self._finish_batch, batch, outcomes)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Unit]) -> list[Any]:
        outcomes: list[Any] = []
        txs: list[Tx | None] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = _storage_error(exc)
            return [(False, error, None)] * len(batch)
        for unit in batch:
            tx = Tx(conn)
            try:
                conn.execute("SAVEPOINT unit")
                result = unit.fn(tx, *unit.args, **unit.kwargs)
                conn.execute("RELEASE unit")
                outcomes.append((True, result, tx))
            except BaseException as exc:  # a failing unit must never take its batch down
                try:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    exc = _storage_error(exc)
                outcomes.append((False, exc, None))
            txs.append(tx)
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = _storage_error(exc)
            return [(False, error, None)] * len(batch)
        return outcomes

    def _finish_batch(self, batch: list[_Unit], outcomes: list[Any]) -> None:
        events: list[Event] = []
        wake: set[str] = set()
        for ok, _value, tx in outcomes:
            if ok and tx is not None:
                events.extend(tx.events)
                wake |= tx.wake
                if tx.touched:
                    self.resource_cache.invalidate(tx.touched)
                for callback in tx.after_commit:
                    try:
                        callback()
                    except Exception:
                        log.exception("post-commit callback failed")
        if self._on_commit is not None and (events or wake):
            try:
                self._on_commit(events, wake)
            except Exception:
                log.exception("publishing committed events failed")
        for unit, (ok, value, _tx) in zip(batch, outcomes, strict=True):
            if unit.future.done():
                continue
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)

    # ---- reads --------------------------------------------------------------------

    def reader(self) -> aiosqlite.Connection:
        """Return a read-only connection from the pool."""
        if self._reader_cycle is None or self._closed:
            raise Unavailable("the store is closed")
        return next(self._reader_cycle)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return every row."""
        try:
            return list(await self.reader().execute_fetchall(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise _storage_error(exc) from None

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """Run a read query and return its first row, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def ping(self) -> bool:
        """Answer whether the store can serve a read."""
        try:
            await self.fetchone("SELECT 1")
            return not self._closed and self._thread is not None and self._thread.is_alive()
        except Exception:
            return False


def _storage_error(exc: sqlite3.Error) -> Exception:
    """Map low-level SQLite failures to a clean 503, keeping the cause in the log only."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return exc  # units translate these into domain conflicts themselves
    log.error("storage error: %s", exc)
    if "full" in text:
        return Unavailable("storage is full; the change was not saved")
    if "readonly" in text or "read-only" in text:
        return Unavailable("storage is read-only; the change was not saved")
    return Unavailable("storage error; the change was not saved")
