"""A consistent copy of a live SQLite database, written atomically.

SQLite's online backup API copies pages in steps. Between steps it would normally
restart from the first page whenever another connection (the daemon's writer) commits,
so under a steady write load a stepped backup of a big file might never finish. Holding
one read transaction on the source for the whole copy pins a snapshot instead: every
step reads the same committed state, the copy is exactly the database as of its first
step, and nothing restarts. In WAL mode a reader never blocks writers, so the daemon
keeps committing meanwhile; the only cost is that checkpoints cannot fold the WAL past
that snapshot until the copy ends, so the WAL grows by what is written during the copy.

The copy is written to a temporary file beside the destination, optionally checked
with `PRAGMA integrity_check`, synced, and renamed into place: the destination is
either the complete, checked copy or untouched.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

STEP_PAGES = 1024  # pages copied per step (4 MiB with 4 KiB pages): progress granularity
Progress = Callable[[int, int], None]  # (pages copied, pages in total)


class CopyFailed(Exception):
    """The copy could not be made or did not pass its check; the destination is untouched."""


def copy(source: sqlite3.Connection, dest: str | os.PathLike[str], *,
         progress: Progress | None = None, check: bool = True, mode: int = 0o600) -> int:
    """Copy the database open on `source` to `dest` (replaced atomically); return its size.

    `source` must not be inside a transaction; it is left outside one.
    """
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, mode)
        target = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.execute("BEGIN")
            try:
                # The first read opens the transaction that pins the snapshot.
                source.execute("SELECT count(*) FROM sqlite_master").fetchone()

                def step(_status: int, remaining: int, total: int) -> None:
                    if progress is not None:
                        progress(total - remaining, total)

                source.backup(target, pages=STEP_PAGES, progress=step, sleep=0.01)
            finally:
                source.execute("COMMIT")
            if check:
                result = integrity(target)
                if result != "ok":
                    raise CopyFailed(f"the copy failed its integrity check: {result}")
        finally:
            target.close()
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        return dest.stat().st_size
    except sqlite3.Error as exc:
        raise CopyFailed(str(exc)) from None
    except OSError as exc:
        raise CopyFailed(f"{exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def integrity(conn: sqlite3.Connection) -> str:
    """`PRAGMA integrity_check` in one line: "ok", or the first problems found."""
    rows = conn.execute("PRAGMA integrity_check(20)").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (not every file system lets a directory be synced)."""
    with contextlib.suppress(OSError):
        _fsync(path)
