"""Reading a whole database file for `no8sd export`: one consistent moment, never a write.

The file is opened read-only (`mode=ro`), so the export can neither change it nor take
the daemon's lock; it works with or without a daemon running. Everything is read inside
one read transaction: in WAL mode that pins a snapshot, so the types, resources and
history exported are those of one moment however long the export takes, while the
daemon keeps committing (its checkpoints cannot fold the WAL past that snapshot until
the export ends). Resources are streamed from one cursor in id order, a batch at a time,
so memory stays flat whatever the number of resources.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

from no8sd.store.db import migration_files
from no8sd.store.rows import History, Resource, ResourceType

BATCH: Final = 500  # rows fetched from the cursor at a time


class ExportFailed(Exception):
    """The database cannot be read for an export; the message says why."""


class Snapshot:
    """The database at `path` as of one moment (use as a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> Snapshot:
        if not self.path.is_file():
            raise ExportFailed(f"there is no database at {self.path}")
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   isolation_level=None)
        except sqlite3.Error as exc:
            raise ExportFailed(f"cannot open {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("BEGIN")
            # The first read opens the transaction that pins the snapshot.
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT COUNT(*) FROM resources").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise ExportFailed(f"{self.path} is not a no8sd database ({exc})") from None
        latest = migration_files()[-1][0]
        if schema != latest:
            conn.close()
            hint = ("start this no8sd on it once to bring it up to date (a copy of the old "
                    "file is kept), or export it with the no8sd that wrote it"
                    if schema < latest else "export it with a newer no8sd")
            raise ExportFailed(f"{self.path} has schema version {schema}, this no8sd reads "
                               f"version {latest}: {hint}")
        self._conn = conn
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the snapshot is not open")
        return self._conn

    def types(self) -> list[ResourceType]:
        """Every resource type, by name then version."""
        rows = self._all(f"SELECT {ResourceType.COLUMNS} FROM resource_types "
                         "ORDER BY name, version")
        return [ResourceType.from_row(row) for row in rows]

    def counts(self) -> tuple[int, int]:
        """(resources not being deleted, resources being deleted)."""
        row = self._all("SELECT COUNT(*) - COUNT(deleted_at), COUNT(deleted_at) "
                        "FROM resources")[0]
        return int(row[0]), int(row[1])

    def resources(self) -> Iterator[Resource]:
        """Every resource not being deleted, in id order, streamed."""
        try:
            cursor = self.conn.execute(
                "SELECT * FROM resources WHERE deleted_at IS NULL ORDER BY id")
            while rows := cursor.fetchmany(BATCH):
                yield from (Resource.from_row(row) for row in rows)
        except sqlite3.Error as exc:
            raise ExportFailed(f"cannot read {self.path}: {exc}") from None

    def history(self, resource_id: int) -> list[History]:
        """A resource's history entries, oldest first."""
        rows = self._all("SELECT * FROM reconciliation_history WHERE resource_id = ? "
                         "ORDER BY id", (resource_id,))
        return [History.from_row(row) for row in rows]

    def _all(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ExportFailed(f"cannot read {self.path}: {exc}") from None
