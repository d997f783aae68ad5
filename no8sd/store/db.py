"""Connections, pragmas, migrations, the file lock and the single writer.

Writes: every write is a *unit*, a plain function `fn(tx, *args)`. One writer task takes
every unit that is waiting (group commit), runs each inside a SAVEPOINT of one
`BEGIN IMMEDIATE` transaction, commits once, and only then resolves the callers'
futures and publishes the events the units appended. So there is never "database is
locked", a unit that fails rolls back alone, and one fsync is shared by every write in
the batch.

The units run on the event loop thread itself: they are short SQL steps in SQLite's C
code, and running them on a second Python thread made that thread queue for the GIL on
every statement (measured: a batch of 40 creates took ~30 ms that way). Only COMMIT,
which waits for the disk, runs on a helper thread; units arriving meanwhile form the
next batch. A batch stops taking units after a few milliseconds so the loop stays
responsive.

A unit can also be *previewed* (`preview`): it runs for real inside its SAVEPOINT and
is then rolled back, so a dry run answers exactly what the write would have stored.

Reads: a small pool of read-only aiosqlite connections. In WAL mode they see the last
committed state and never wait behind the writer. Cached copies of rows live in one
`Cache` owned here (see cache.py).

A database file belongs to one daemon at a time (an exclusive lock). The command line's
short administrative changes open it *shared*: no lock, the same writer code, SQLite's
busy timeout to queue behind the daemon's writer.

Before a schema migration changes an existing file, a copy of it is kept beside it
(`no8sd.db.pre-0005` before migration 0005), so an upgrade can always be undone.

The WAL: with `checkpoint="auto"` SQLite folds it back after every 1,000 pages, and
`checkpoint()` (run by the daemon's maintenance) truncates it once it has grown past
`WAL_TRUNCATE_BYTES`, hardly waiting for readers. With `checkpoint="external"` the
daemon never checkpoints (a replication tool such as Litestream does it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any, Final, TypeVar

import aiosqlite

from no8sd import background
from no8sd.errors import StartupError, Unavailable
from no8sd.store import snapshot
from no8sd.store.cache import ROW_BYTES, Cache
from no8sd.store.rows import Event, Resource

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 256
BATCH_BUDGET = 0.008  # seconds of unit execution per batch before committing
WAL_TRUNCATE_BYTES = 16 * 1024 * 1024  # `checkpoint()` truncates a WAL larger than this
BUSY_TIMEOUT_MS = 5000
CHECKPOINT_GRACE_MS = 100  # how long a truncating checkpoint waits for readers
CHECKPOINT_MODES = ("auto", "external")
MigrationStep = Callable[[str | None], None]  # what is being done; None once it is done
CommitObserver = Callable[[int, float], None]  # (units in the batch, seconds to commit)


@dataclass
class Tx:
    """What a write unit gets: the connection, plus places to note post-commit effects."""

    conn: sqlite3.Connection
    events: list[Event] = field(default_factory=list)
    wake: set[str] = field(default_factory=set)  # resource type names with work due now
    touched: set[int] = field(default_factory=set)  # resource ids changed (cache invalidation)
    rows: dict[int, Resource] = field(default_factory=dict)  # resources read in this unit
    removed: set[int] = field(default_factory=set)  # resources this unit deleted
    # Rows written by earlier units of the same batch (None: removed), then the committed
    # copies the cache holds: a unit reads them instead of decoding the row again.
    batch_rows: dict[int, Resource | None] = field(default_factory=dict)
    cache: Cache | None = None
    changed: set[str] = field(default_factory=set)  # small tables whose cached copies are stale
    revisions: dict[int, int] = field(default_factory=dict)  # writes per resource in this unit
    rendered: dict[int, tuple[int, str]] = field(default_factory=dict)  # resource id -> (rev, JSON)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    actor: str | None = None  # who asked for the change this unit makes

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement in this unit's transaction."""
        return self.conn.execute(sql, tuple(params))

    def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """Fetch one row, or None."""
        row: sqlite3.Row | None = self.conn.execute(sql, tuple(params)).fetchone()
        return row

    def row(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row:
        """Fetch a row that must exist (one this unit has just written, say)."""
        found = self.one(sql, params)
        assert found is not None, "the row this unit wrote is missing"
        return found


def last_id(cur: sqlite3.Cursor) -> int:
    """The rowid an INSERT just assigned."""
    rowid = cur.lastrowid
    assert rowid is not None, "not after an INSERT"
    return rowid


@dataclass
class _Unit:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]
    preview: bool = False  # run, then roll back (a dry run)
    actor: str | None = None  # who asked for this change (shown in events and history)
    durable: bool = True  # False: answered once applied, before its commit reaches the disk


def _connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StartupError(f"cannot switch {path} to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    # When a checkpoint lets the WAL start over, SQLite cuts the file back to this size.
    conn.execute(f"PRAGMA journal_size_limit = {WAL_TRUNCATE_BYTES}")
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


def migrate(conn: sqlite3.Connection, *, path: str | None = None,
            on_step: MigrationStep | None = None) -> int:
    """Apply every migration newer than PRAGMA user_version; return the final version.

    With `path`, a database that already holds a schema is first copied to
    `PATH.pre-NNNN` (NNNN: the first migration to apply). `on_step` hears what is being
    done before each long step, and None at the end.
    """
    files = migration_files()
    latest = files[-1][0] if files else 0
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current == 0 and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        # A new file: free pages go back to the file system in steps (reclaim_unit), so
        # a pruned event log does not leave the file at its largest size for good. The
        # mode can only be chosen before the first table exists (older files: below).
        conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
    if current > latest:
        raise StartupError(
            f"database schema version {current} is newer than this no8sd understands "
            f"({latest}); upgrade no8sd or use another --db"
        )
    pending = [(number, name, sql) for number, name, sql in files if number > current]
    if pending and current > 0 and path is not None:
        keep = f"{path}.pre-{pending[0][0]:04d}"
        if on_step is not None:
            on_step(f"Copying the database to {keep} before migrating")
        try:
            snapshot.copy(conn, keep, check=False)
        except snapshot.CopyFailed as exc:
            raise StartupError(f"cannot keep a copy of {path} before migrating it "
                               f"({exc}); free some space or move the file") from None
        log.info("Kept a copy of the database before migration %04d at %s", pending[0][0],
                 keep)
    for number, name, sql in pending:
        if on_step is not None:
            on_step(f"Applying migration {name}")
        log.info("Applying migration %s", name)
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        # A file made before incremental vacuum: it is rebuilt once, in that mode.
        if on_step is not None:
            on_step("Rebuilding the database once to reclaim free space from now on")
        log.info("Rebuilding %s once (VACUUM) so that free space can be reclaimed",
                 path or "the database")
        conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
        try:
            conn.execute("VACUUM")
        except sqlite3.OperationalError as exc:  # no room for the rebuilt copy, say
            log.warning("Could not rebuild %s (%s); free space stays in the file until "
                        "a later start manages it", path or "the database", exc)
        if on_step is not None:
            on_step(None)
    elif pending and on_step is not None:
        on_step(None)
    return latest


READER_CACHE_KIB: Final = 1024
CHECK_AT_OPEN_BYTES: Final = 64 * 2**20  # larger files are checked after start (open)
INCREMENTAL: Final = 2  # PRAGMA auto_vacuum's value for incremental vacuum
RECLAIM_PAGES: Final = 256  # pages returned per unit: about a millisecond of the writer
RECLAIM_SLACK: Final = 1024  # free pages kept for coming inserts (4 MiB at 4 KiB pages)


def reclaim_unit(tx: Tx, slack: int = RECLAIM_SLACK) -> int:
    """Give up to RECLAIM_PAGES free pages beyond `slack` back to the file system; return
    how many pages are still free beyond the slack (the caller repeats while any)."""
    free = tx.one("PRAGMA freelist_count")
    excess = (free[0] if free is not None else 0) - slack
    if excess <= 0:
        return 0
    step = min(excess, RECLAIM_PAGES)
    for _ in range(step):
        # Python's sqlite3 steps this pragma once per execute, and each step frees one
        # page, so asking for N pages at once would free one.
        tx.conn.execute("PRAGMA incremental_vacuum(1)")
    return excess - step


def try_lock(fd: int) -> bool:
    """Take the exclusive lock a daemon holds on its database file; False if it is held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Database:
    """Owns the database file: lock, single writer, reader pool, caches."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                 readers: int = 2, shared: bool = False, cache_bytes: int = ROW_BYTES,
                 checkpoint: str = "auto",
                 check_at_open_bytes: int | None = None) -> None:
        self.path = str(path)
        self.synchronous = synchronous.upper()
        if checkpoint not in CHECKPOINT_MODES:
            raise ValueError(f"checkpoint must be one of {CHECKPOINT_MODES}")
        self.checkpoint_mode = checkpoint
        self.wal_limit = WAL_TRUNCATE_BYTES  # `checkpoint()` truncates a WAL larger than this
        self.shared = shared  # True: a short administrative session beside a daemon
        self._reader_count = readers
        # Files up to this size are checked (PRAGMA quick_check) before anything is
        # served; larger ones after, in the background, so start-up never reads them whole.
        self._check_at_open_bytes = (CHECK_AT_OPEN_BYTES if check_at_open_bytes is None
                                     else check_at_open_bytes)
        self._check_later = False
        self._checker: asyncio.Task[None] | None = None
        self.damage: str | None = None  # what a background check found wrong, if anything
        self._lock_fd: int | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._pending: deque[_Unit] = deque()
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._committing = False
        self._closing = False
        self._readers: list[aiosqlite.Connection] = []
        self._reader_cycle: itertools.cycle[aiosqlite.Connection] | None = None
        self._on_commit: Callable[[list[Event], set[str]], None] | None = None
        self._closed = False
        self._data_version: int | None = None
        self._table_listeners: list[Callable[[set[str]], None]] = []
        self._on_migration: MigrationStep | None = None
        self._on_batch: CommitObserver | None = None
        self._checkpoints: list[asyncio.Future[bool]] = []  # callers of checkpoint()
        self.cache = Cache(cache_bytes)

    def on_commit(self, callback: Callable[[list[Event], set[str]], None]) -> None:
        """Call `callback(events, wake_types)` on the event loop after every commit."""
        self._on_commit = callback

    def on_migration(self, callback: MigrationStep) -> None:
        """Call `callback(step)` (on the opening thread) before each long step of a
        migration at open, and `callback(None)` when migrations are done."""
        self._on_migration = callback

    def on_batch(self, callback: CommitObserver) -> None:
        """Call `callback(units, seconds)` on the event loop after every commit attempt."""
        self._on_batch = callback

    def on_tables_changed(self, callback: Callable[[set[str]], None]) -> None:
        """Call `callback(tables)` after a commit marked tables changed (`tx.changed`); `{"*"}`
        when another process wrote the file and anything may have changed."""
        self._table_listeners.append(callback)

    def _tables_changed(self, tables: set[str]) -> None:
        for callback in self._table_listeners:
            try:
                callback(tables)
            except Exception:
                log.exception("table change listener failed")

    async def open(self) -> None:
        """Lock the file (unless shared), apply migrations, start the writer, open readers."""
        await asyncio.to_thread(self._open_sync)
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA busy_timeout = 5000")
            await reader.execute("PRAGMA query_only = 1")
            # Readers keep a small page cache of their own (1 MiB, not SQLite's 2 MiB
            # default): the file's pages stay in the OS cache for all of them anyway.
            await reader.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
            self._readers.append(reader)
        self._reader_cycle = itertools.cycle(self._readers)
        self._wakeup = asyncio.Event()
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="no8sd-commit")
        self._writer = background.spawn(self._writer_loop(), name="no8sd-writer")
        if self._check_later:
            self._checker = background.spawn(self._check_in_background(),
                                             name="no8sd-quick-check")

    async def _check_in_background(self) -> None:
        """The start-up check of a large file, on a connection of its own (it reads the
        whole file): damage is logged and makes the store unready (ping)."""
        async with aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            try:
                async with conn.execute("PRAGMA quick_check") as cursor:
                    row = await cursor.fetchone()
                result = str(row[0]) if row is not None else "no answer"
            except sqlite3.DatabaseError as exc:
                result = str(exc)
        if result != "ok":
            self.damage = result
            log.error("Database %s is damaged: %s. Stop no8sd and restore a backup "
                      "(no8sd restore)", self.path, result)

    def _open_sync(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            # A directory made here holds only the database: private to its owner.
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupError(f"cannot open database {self.path}: {exc.strerror}") from None
        if not self.shared:
            make_private(self.path)
        locked = try_lock(fd)
        if not locked and not self.shared:
            os.close(fd)
            raise StartupError(
                f"database {self.path} is in use by another running no8sd"
            ) from None
        self._lock_fd = fd
        try:
            self._writer_conn = _connect(self.path, synchronous=self.synchronous)
            if locked:
                if os.path.getsize(self.path) <= self._check_at_open_bytes:
                    result = self._writer_conn.execute("PRAGMA quick_check").fetchone()[0]
                    if result != "ok":
                        raise StartupError(f"database {self.path} is damaged: {result}")
                else:
                    self._check_later = True
                migrate(self._writer_conn, path=self.path, on_step=self._on_migration)
                if self.checkpoint_mode == "external":
                    # Checkpoints are left to the replication tool: SQLite's automatic
                    # ones would fold frames back before the tool has copied them.
                    self._writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
            else:
                check_current(self._writer_conn, self.path)
            if self.shared and locked:
                # Nobody else uses the file: nothing to share it with while we work.
                fcntl.flock(fd, fcntl.LOCK_UN)
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
        if self._checker is not None:
            await background.stop([self._checker])
            self._checker = None
        if self._writer is not None:
            self._closing = True
            assert self._wakeup is not None
            self._wakeup.set()
            with contextlib.suppress(Exception):
                await self._writer  # drains every unit already accepted
            self._writer = None
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await reader.close()
        self._readers.clear()
        if self._writer_conn is not None:
            conn = self._writer_conn
            owner = not self.shared and self.checkpoint_mode == "auto"

            def _finish() -> None:
                if owner:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA optimize")
                        # Fold the WAL back into the main file so a clean stop leaves one file.
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._release_sync()

            await asyncio.to_thread(_finish)

    # ---- writes -------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(tx, *args, **kwargs)` in the single writer's transaction; return its result."""
        result: T = await self._submit(_Unit(fn, args, kwargs, self._future()))
        return result

    async def preview(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a unit exactly as `write` would, then roll it back: nothing is stored,
        announced or invalidated. Its result is what the write would have returned."""
        result: T = await self._submit(_Unit(fn, args, kwargs, self._future(), preview=True))
        return result

    async def write_as(self, actor: str | None, fn: Callable[..., T], *args: Any,
                       preview: bool = False, durable: bool = True, **kwargs: Any) -> T:
        """`write` (or `preview`) on behalf of `actor`, whom the unit can name (`tx.actor`).

        `durable=False` answers as soon as the unit is applied, without waiting for its
        commit to reach the disk: for writes that a crash may lose because they are
        repeated anyway (a reconcile's status and history: the reconcile runs again). Their
        events are still published only once committed.
        """
        result: T = await self._submit(_Unit(fn, args, kwargs, self._future(),
                                             preview=preview, actor=actor, durable=durable))
        return result

    def _future(self) -> asyncio.Future[Any]:
        if self._closing or self._writer is None or self._writer.done():
            raise Unavailable("the store is closed")
        return asyncio.get_running_loop().create_future()

    async def _submit(self, unit: _Unit) -> Any:
        self._pending.append(unit)
        assert self._wakeup is not None
        self._wakeup.set()
        # Shielded so a client that disconnects cannot leave a unit half-acknowledged: the
        # write finishes (or not) as a whole whatever happens to the awaiting handler.
        return await asyncio.shield(unit.future)

    async def _writer_loop(self) -> None:
        conn = self._writer_conn
        assert conn is not None and self._wakeup is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._pending or self._checkpoints:
                    if self._checkpoints:
                        await self._run_checkpoint(conn)
                    if not self._pending:
                        continue
                    batch, outcomes, written = self._execute_batch(conn)
                    early = self._answer_early(batch, outcomes)
                    self._committing = True
                    started = time.perf_counter()
                    try:
                        error = await loop.run_in_executor(self._committer, _commit, conn)
                    finally:
                        self._committing = False
                    if error is not None:
                        outcomes = [(False, error, None)] * len(batch)
                        written = {}
                        if early:
                            log.warning("%d write(s) answered before the failed commit are "
                                        "lost; their reconciles will run again", early)
                    if self._on_batch is not None:
                        self._on_batch(len(batch), time.perf_counter() - started)
                    self._finish_batch(batch, outcomes, written)
                if self._closing:
                    return
        finally:
            # Whatever stopped the writer, nobody may wait forever for a unit it took.
            for unit in self._pending:
                if not unit.future.done():
                    unit.future.set_exception(Unavailable("the store's writer stopped"))
            self._pending.clear()
            for waiter in self._checkpoints:
                if not waiter.done():
                    waiter.set_result(False)
            self._checkpoints.clear()

    async def _run_checkpoint(self, conn: sqlite3.Connection) -> None:
        waiters, self._checkpoints = self._checkpoints, []
        self._committing = True  # the connection is busy on the commit thread
        try:
            done = await asyncio.get_running_loop().run_in_executor(
                self._committer, _truncate_wal, conn)
        finally:
            self._committing = False
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(done)

    def _execute_batch(self, conn: sqlite3.Connection
                       ) -> tuple[list[_Unit], list[Any], dict[int, Resource | None]]:
        """Begin a transaction and run waiting units in it (not yet committed); also return
        the resource rows the batch leaves (None: removed)."""
        batch: list[_Unit] = []
        outcomes: list[Any] = []
        written: dict[int, Resource | None] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._notice_other_writers(conn)
        except sqlite3.Error as exc:
            error = _storage_error(exc)
            batch = list(self._pending)
            self._pending.clear()
            return batch, [(False, error, None)] * len(batch), written
        deadline = time.monotonic() + BATCH_BUDGET
        while self._pending and len(batch) < MAX_BATCH:
            if batch and time.monotonic() > deadline:
                break
            unit = self._pending.popleft()
            batch.append(unit)
            tx = Tx(conn, actor=unit.actor, batch_rows=written, cache=self.cache)
            try:
                conn.execute("SAVEPOINT unit")
                result = unit.fn(tx, *unit.args, **unit.kwargs)
                if unit.preview:
                    conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                if not unit.preview:
                    written.update(tx.rows)
                    written.update(dict.fromkeys(tx.removed))
                outcomes.append((True, result, None if unit.preview else tx))
            except Exception as exc:  # a failing unit must never take its batch down
                if isinstance(exc, sqlite3.Error) and not conn.in_transaction:
                    # ... unless SQLite rolled the whole transaction back itself (a full
                    # disk, an I/O error): the batch's earlier units are undone too, and a
                    # later one must not run outside a transaction. All fail with the cause.
                    error = _storage_error(exc)
                    return batch, [(False, error, None)] * len(batch), {}
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                if isinstance(exc, sqlite3.Error):
                    exc = _storage_error(exc)
                outcomes.append((False, exc, None))
        return batch, outcomes, written

    @staticmethod
    def _answer_early(batch: list[_Unit], outcomes: list[Any]) -> int:
        """Resolve the futures of applied units that need not wait for the disk."""
        early = 0
        for unit, (ok, value, _tx) in zip(batch, outcomes, strict=True):
            if ok and not unit.durable and not unit.future.done():
                unit.future.set_result(value)
                early += 1
        return early

    def _finish_batch(self, batch: list[_Unit], outcomes: list[Any],
                      written: dict[int, Resource | None]) -> None:
        events: list[Event] = []
        wake: set[str] = set()
        changed: set[str] = set()
        for ok, _value, tx in outcomes:
            if ok and tx is not None:
                events.extend(tx.events)
                wake |= tx.wake
                changed |= tx.changed
                if tx.touched or tx.changed:
                    self.cache.committed(tx.touched, tx.changed)
                for callback in tx.after_commit:
                    try:
                        callback()
                    except Exception:
                        log.exception("post-commit callback failed")
        # Rows this batch wrote are now the committed state: keep them (write-through), so
        # the next read or unit of them decodes nothing.
        self.cache.store({rid: row for rid, row in written.items() if row is not None})
        if changed:
            self._tables_changed(changed)
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

    # ---- other processes ----------------------------------------------------------

    def _notice_other_writers(self, conn: sqlite3.Connection) -> None:
        """Drop every cached copy if another connection committed since we last looked.

        PRAGMA data_version changes only for commits made by *other* connections; ours
        are invalidated precisely by `_finish_batch`.
        """
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        changed = self._data_version is not None and version != self._data_version
        self._data_version = version
        if changed:
            log.debug("another process wrote %s; dropping cached copies", self.path)
            self.cache.clear()
            self._tables_changed({"*"})

    def check_other_writers(self) -> None:
        """Before serving a cached copy: make sure no other process wrote meanwhile.

        Skipped while our own transaction is open or committing: it holds the write lock,
        and what came before it was checked when it began.
        """
        conn = self._writer_conn
        if conn is None or self._committing or conn.in_transaction:
            return
        try:
            self._notice_other_writers(conn)
        except sqlite3.Error:
            self.cache.clear()

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

    async def cached_table(self, table: str, load: Callable[[], Awaitable[T]]) -> T:
        """Return `await load()`, kept in memory until a commit changes `table`."""
        self.check_other_writers()
        return await self.cache.table(table, load)

    # ---- maintenance --------------------------------------------------------------

    def file_sizes(self) -> tuple[int, int]:
        """(database file, WAL file) sizes in bytes; 0 for a file that does not exist."""
        sizes = []
        for name in (self.path, self.path + "-wal"):
            try:
                sizes.append(os.stat(name).st_size)
            except OSError:
                sizes.append(0)
        return sizes[0], sizes[1]

    async def checkpoint(self) -> bool:
        """Truncate the WAL when it has grown past `wal_limit`; answer whether it was
        truncated. Does nothing in external mode.

        SQLite's automatic checkpoints copy the WAL back but never shrink the file, and
        readers that are always busy (streams, scrapes) can keep them from reaching its
        end, so on a busy box the file could grow without bound. The writer task runs
        this between two batches, on its commit thread: writes wait for it as for a
        commit, the event loop does not. Readers in the way get a brief grace, then it
        gives up until the next call.
        """
        if (self.checkpoint_mode != "auto" or self.shared or self._closing
                or self._writer is None or self.file_sizes()[1] <= self.wal_limit):
            return False
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._checkpoints.append(waiter)
        assert self._wakeup is not None
        self._wakeup.set()
        return await waiter

    async def reclaim(self) -> None:
        """Give free pages beyond RECLAIM_SLACK back to the file system, a few hundred per
        write; nothing is written (no commit, no fsync) while the free pages are within
        the slack, which is nearly always."""
        row = await self.fetchone("PRAGMA freelist_count")
        if row is None or row[0] <= RECLAIM_SLACK:
            return
        while await self.write(reclaim_unit):
            pass

    async def probe_write(self) -> None:
        """Commit a real write that changes nothing (raises Unavailable when the store
        cannot write): the readiness check's proof that the disk takes writes."""
        await self.write(_rewrite_header)

    async def ping(self) -> bool:
        """Answer whether the store can serve a read."""
        try:
            await self.fetchone("SELECT 1")
            return (not self._closing and self.damage is None and self._writer is not None
                    and not self._writer.done())
        except Exception:
            return False


def make_private(path: str) -> None:
    """Give the database file and its -wal/-shm companions mode 0600: they hold password
    hashes, token digests and plugin_config. An existing wider mode (a file copied in by
    hand or a restore) is narrowed, with one log line."""
    widened = []
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode != 0o600:
            try:
                os.chmod(name, 0o600)
            except OSError as exc:
                log.warning("cannot make %s private (mode %o): %s", name, mode, exc.strerror)
                continue
            widened.append(f"{os.path.basename(name)} (was {mode:o})")
    if widened:
        log.warning("Made the database files private (mode 600): %s", ", ".join(widened))


def check_current(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a database whose schema is not the one this no8sd writes (shared sessions
    cannot migrate: the daemon that holds the file would not expect it)."""
    files = migration_files()
    latest = files[-1][0] if files else 0
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > latest:
        raise StartupError(
            f"database schema version {current} is newer than this no8sd understands "
            f"({latest}); upgrade no8sd or use another --db")
    if current < latest:
        raise StartupError(
            f"database {path} is used by a running no8sd that has not upgraded its "
            "schema; stop it or upgrade it first")


def _truncate_wal(conn: sqlite3.Connection) -> bool:
    conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_GRACE_MS}")
    try:
        busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy == 0)
    except sqlite3.Error as exc:
        log.debug("WAL checkpoint skipped: %s", exc)
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _rewrite_header(tx: Tx) -> None:
    """Write the schema version back unchanged: it rewrites the file's first page, so the
    commit goes through the WAL and the disk like any other, and no row changes."""
    version = tx.row("PRAGMA user_version")[0]
    tx.execute(f"PRAGMA user_version = {int(version)}")


def _commit(conn: sqlite3.Connection) -> Exception | None:
    """Commit the open transaction (waiting for the disk); roll back and report on failure.
    With none open (SQLite rolled it back, and its batch has failed already), do nothing."""
    if not conn.in_transaction:
        return None
    try:
        conn.execute("COMMIT")
        return None
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return _storage_error(exc)


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
