"""SQL for the event log: append inside a write unit, read after an id, prune by retention."""

from __future__ import annotations

import json
from typing import Any

from no8sd.records import event_envelope, resource_event_data
from no8sd.store.db import Database, Event, Tx

CREATED = "CREATED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
RECONCILED = "RECONCILED"
REMOVED = "REMOVED"
EVENT_TYPES = (CREATED, MODIFIED, DELETED, RECONCILED, REMOVED)
PRUNE_CHUNK = 5000


def emit(tx: Tx, event_type: str, resource: dict[str, Any], now: float) -> Event:
    """Append an event for `resource` to the log, in the caller's transaction."""
    rid = resource["id"]
    revision = tx.revisions.get(rid, 0)
    rendered = tx.rendered.get(rid)
    if rendered is None or rendered[0] != revision:
        # Serialise the resource once per state: a reconcile's MODIFIED and RECONCILED
        # usually carry the same one.
        rendered = tx.rendered[rid] = (revision, _dumps(resource_event_data(resource)))
    data = _dumps(event_envelope(event_type, resource, now))[:-1] + \
        ',"resource_data":' + rendered[1] + "}"
    cur = tx.execute(
        "INSERT INTO events (ts, event_type, resource_id, resource_type_name,"
        " resource_type_version, data) VALUES (?, ?, ?, ?, ?, ?)",
        (now, event_type, resource["id"], resource["resource_type_name"],
         resource["resource_type_version"], data),
    )
    event = Event(cur.lastrowid, event_type, resource["id"], resource["resource_type_name"],
                  resource["resource_type_version"], data, now)
    tx.events.append(event)
    return event


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _event(row: Any) -> Event:
    return Event(row["id"], row["event_type"], row["resource_id"], row["resource_type_name"],
                 row["resource_type_version"], row["data"], row["ts"])


async def after(db: Database, after_id: int, *, limit: int, resource_id: int | None = None,
                resource_type: str | None = None, version: str | None = None) -> list[Event]:
    """Read up to `limit` events with id > after_id, oldest first, optionally filtered."""
    where, params = ["id > ?"], [after_id]
    if resource_id is not None:
        where.append("resource_id = ?")
        params.append(resource_id)
    if resource_type is not None:
        where.append("resource_type_name = ?")
        params.append(resource_type)
    if version is not None:
        where.append("resource_type_version = ?")
        params.append(version)
    rows = await db.fetchall(
        "SELECT id, ts, event_type, resource_id, resource_type_name, resource_type_version, data"
        f" FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        (*params, limit),
    )
    return [_event(row) for row in rows]


async def bounds(db: Database) -> tuple[int, int]:
    """Return (oldest retained id, newest id); (0, last id ever) when the log is empty."""
    row = await db.fetchone("SELECT MIN(id), MAX(id) FROM events")
    if row is None or row[0] is None:
        seq = await db.fetchone("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        last = seq[0] if seq is not None else 0
        return last + 1, last
    return row[0], row[1]


def prune(tx: Tx, *, max_count: int, max_age: float, now: float, chunk: int = PRUNE_CHUNK) -> int:
    """Delete up to `chunk` events beyond the retention count or age (oldest first); return
    how many went. Callers repeat while a whole chunk went, so a big clean-up never holds
    the writer for long."""
    newest = tx.one("SELECT MAX(id) FROM events")[0]
    if newest is None:
        return 0
    return tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? OR ts < ?"
        " ORDER BY id LIMIT ?)", (newest - max_count, now - max_age, chunk)).rowcount
