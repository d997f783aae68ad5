"""Backing up a database file and restoring one, with or without a daemon running.

`backup` copies a consistent snapshot of the database (snapshot.copy: SQLite's online
backup API in steps, under one read transaction) while the daemon keeps writing, checks
the copy with `PRAGMA integrity_check`, and only then puts it in place.

`restore` puts a checked copy of a backup in the daemon's place: it refuses while a
daemon holds the file (and holds the lock itself meanwhile, so none can start), folds
the old file's WAL into it and keeps it aside as `NAME.pre-restore-TIMESTAMP`, then
renames the new file over the old one in one step: at every moment the path holds
either the old database or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from no8sd.store import snapshot
from no8sd.store.db import migration_files, try_lock
from no8sd.store.snapshot import Progress


class OperationFailed(Exception):
    """The backup or restore was not made; the message says why, nothing was changed."""


@dataclass(frozen=True)
class Copied:
    """What a backup or a restore did."""

    path: Path  # the file written
    size: int  # its size in bytes
    schema: int  # its schema version
    resources: int  # resources it holds
    seconds: float
    kept: Path | None = None  # a restore: where the replaced database was kept


def backup(source: Path, dest: Path, *, progress: Progress | None = None) -> Copied:
    """Copy the database at `source` to `dest` (a file, replaced only once checked)."""
    started = time.monotonic()
    if not source.is_file():
        raise OperationFailed(f"there is no database at {source}")
    if dest.resolve() == source.resolve():
        raise OperationFailed("the backup must go to another file than the database")
    conn = _open(source)
    try:
        schema, resources = _describe(conn, source)
        size = _copy(conn, dest, progress)
    finally:
        conn.close()
    return Copied(dest, size, schema, resources, time.monotonic() - started)


def restore(source: Path, target: Path, *, progress: Progress | None = None) -> Copied:
    """Replace the database at `target` with a checked copy of the backup at `source`."""
    started = time.monotonic()
    if not source.is_file():
        raise OperationFailed(f"there is no backup at {source}")
    if target.exists() and source.resolve() == target.resolve():
        raise OperationFailed("the backup is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Held until the end: a daemon starting meanwhile finds the file in use.
        if not try_lock(fd):
            raise OperationFailed(f"database {target} is in use by a running no8sd; stop it "
                                  "first (systemctl stop no8sd)")
        conn = _open(source)
        try:
            schema, resources = _describe(conn, source)
            latest = migration_files()[-1][0]
            if schema > latest:
                raise OperationFailed(
                    f"the backup's schema version {schema} is newer than this no8sd "
                    f"understands ({latest}); restore it with a newer no8sd")
            staged = target.with_name(f".{target.name}.restoring")
            size = _copy(conn, staged, progress)
        finally:
            conn.close()
        try:
            kept = _set_aside(target)
            for suffix in ("-wal", "-shm"):  # the old file's; they must not meet the new one
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{target}{suffix}")
            os.replace(staged, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
            raise OperationFailed(f"cannot put the restored file in place: "
                                  f"{exc.strerror or exc}") from None
        with contextlib.suppress(OSError):
            dir_fd = os.open(target.parent, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)
    except OperationFailed:
        if created and target.stat().st_size == 0:
            target.unlink()  # only the lock file we made: leave no trace
        raise
    finally:
        os.close(fd)
    return Copied(target, size, schema, resources, time.monotonic() - started, kept)


def _open(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn
    except sqlite3.Error as exc:
        raise OperationFailed(f"cannot open {path}: {exc}") from None


def _describe(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """(schema version, resources) of a no8sd database; anything else is refused."""
    try:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        row = conn.execute("SELECT COUNT(*) FROM resources").fetchone()
    except sqlite3.Error as exc:
        raise OperationFailed(f"{path} is not a no8sd database ({exc})") from None
    return int(schema), int(row[0])


def _copy(conn: sqlite3.Connection, dest: Path, progress: Progress | None) -> int:
    try:
        return snapshot.copy(conn, dest, progress=progress, check=True)
    except snapshot.CopyFailed as exc:
        raise OperationFailed(f"cannot copy to {dest}: {exc}") from None


def _set_aside(target: Path) -> Path | None:
    """Fold the WAL of the database at `target` into it and keep it under another name
    (a hard link: the rename that follows swaps files without a moment of no file). A
    damaged database keeps its WAL beside the kept copy instead."""
    if target.stat().st_size == 0:
        return None  # the empty file our lock just created
    busy, damaged = 0, False
    try:
        old = sqlite3.connect(target, isolation_level=None)
        try:
            busy = old.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            old.close()
    except sqlite3.Error:
        damaged = True  # often why one restores: keep it as it is
    if busy:
        raise OperationFailed(f"{target} is in use (a `no8sd user` or `token` command?); "
                              "try again")
    kept = target.with_name(f"{target.name}.pre-restore-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.link(target, kept)
    except OSError:
        import shutil  # a file system without hard links

        shutil.copy2(target, kept)
    wal = Path(f"{target}-wal")
    if damaged and wal.exists():
        os.replace(wal, f"{kept}-wal")
    return kept
