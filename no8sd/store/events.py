"""SQL for the event log: append inside a write unit, read after an id, prune by retention."""

from __future__ import annotations

from typing import Any, Final

from no8sd.store.db import Database, Tx, last_id
from no8sd.store.packing import pack
from no8sd.store.rows import Event, Resource

CREATED: Final = "CREATED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
RECONCILED: Final = "RECONCILED"
REMOVED: Final = "REMOVED"
# A chunk is one unit run on the event loop: 1,000 events take ~10 ms (5,000: ~40 ms,
# measured), about one batch's budget, so pruning never stalls requests for long.
PRUNE_CHUNK: Final = 1000


def append(tx: Tx, event_type: str, resource: Resource, data: str, now: float) -> Event:
    """Append an event for `resource` with its serialised payload, in the caller's transaction;
    it is announced to watchers once the transaction commits."""
    cur = tx.execute(
        "INSERT INTO events (ts, event_type, resource_id, resource_type_name,"
        " resource_type_version, data) VALUES (?, ?, ?, ?, ?, ?)",
        (now, event_type, resource.id, resource.resource_type_name,
         resource.resource_type_version, pack(data)),
    )
    event = Event(last_id(cur), event_type, resource.id, resource.resource_type_name,
                  resource.resource_type_version, data, now)
    tx.events.append(event)
    return event


async def after(db: Database, after_id: int, *, limit: int, resource_id: int | None = None,
                resource_type: str | None = None, version: str | None = None,
                resource_types: tuple[str, ...] | None = None) -> list[Event]:
    """Read up to `limit` events with id > after_id, oldest first, optionally filtered."""
    where: list[str] = ["id > ?"]
    params: list[Any] = [after_id]
    if resource_id is not None:
        where.append("resource_id = ?")
        params.append(resource_id)
    if resource_type is not None:
        where.append("resource_type_name = ?")
        params.append(resource_type)
    if version is not None:
        where.append("resource_type_version = ?")
        params.append(version)
    if resource_types is not None:
        where.append(f"resource_type_name IN ({', '.join('?' * len(resource_types))})")
        params.extend(resource_types)
    rows = await db.fetchall(
        "SELECT id, ts, event_type, resource_id, resource_type_name, resource_type_version, data"
        f" FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        (*params, limit),
    )
    return [Event.from_row(row) for row in rows]


async def bounds(db: Database) -> tuple[int, int]:
    """Return (oldest retained id, newest id); (last + 1, last id ever) when the log is empty."""
    row = await db.fetchone("SELECT MIN(id), MAX(id) FROM events")
    if row is None or row[0] is None:
        seq = await db.fetchone("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        last = seq[0] if seq is not None else 0
        return last + 1, last
    return row[0], row[1]


async def prunable(db: Database, *, max_count: int, max_age: float, now: float) -> bool:
    """Whether the log holds more than `max_count` events or one older than `max_age`: a
    read, so an idle daemon's minutely retention check writes (and syncs) nothing."""
    row = await db.fetchone("SELECT MIN(id), MAX(id), MIN(ts) FROM events")
    if row is None or row[0] is None:
        return False
    oldest_id, newest_id, oldest_ts = row
    return bool(newest_id - max_count >= oldest_id or oldest_ts < now - max_age)


def prune(tx: Tx, *, max_count: int, max_age: float, now: float, chunk: int = PRUNE_CHUNK) -> int:
    """Delete up to `chunk` events beyond the retention count or age (oldest first); return
    how many went. Callers repeat while a whole chunk went, so a big clean-up never holds
    the writer for long."""
    row = tx.one("SELECT MAX(id) FROM events")
    newest = row[0] if row is not None else None
    if newest is None:
        return 0
    return tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? OR ts < ?"
        " ORDER BY id LIMIT ?)", (newest - max_count, now - max_age, chunk)).rowcount
