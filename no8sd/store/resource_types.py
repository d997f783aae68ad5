"""SQL for resource types: write units (run by the single writer) and reads.

Every write asks for its type, so the (small) table is held in memory by the store's
cache and re-read only after a commit changed it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from no8sd.errors import Conflict, NotFound
from no8sd.store.db import Database, Tx, last_id
from no8sd.store.rows import ResourceType, dumps

TABLE = "resource_types"
_COLUMNS = ResourceType.COLUMNS


def insert(tx: Tx, name: str, version: str, schema: dict[str, Any], description: str | None,
           metadata: dict[str, Any], now: float) -> ResourceType:
    """Insert a resource type; a duplicate name/version is a Conflict."""
    try:
        cur = tx.execute(
            "INSERT INTO resource_types (name, version, schema, description, status, metadata,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
            (name, version, dumps(schema), description, dumps(metadata), now, now),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"Resource type {name}/{version} already exists") from None
    tx.changed.add(TABLE)
    return get_tx(tx, last_id(cur))


def update(tx: Tx, type_id: int, changes: dict[str, Any], now: float) -> ResourceType:
    """Apply a partial update (schema, description, status, metadata)."""
    current = get_tx(tx, type_id)
    values = {key: changes[key] for key in ("schema", "description", "status", "metadata")
              if key in changes}
    if any(getattr(current, key) != value for key, value in values.items()):
        tx.execute(
            "UPDATE resource_types SET schema = ?, description = ?, status = ?, metadata = ?,"
            " updated_at = ? WHERE id = ?",
            (
                dumps(values.get("schema", current.schema)),
                values.get("description", current.description),
                values.get("status", current.status),
                dumps(values.get("metadata", current.metadata)),
                now,
                type_id,
            ),
        )
        tx.changed.add(TABLE)
    return get_tx(tx, type_id)


def delete(tx: Tx, type_id: int) -> None:
    """Delete a resource type; refused while any resource still uses it."""
    get_tx(tx, type_id)
    row = tx.one("SELECT COUNT(*) FROM resources WHERE resource_type_id = ?", (type_id,))
    used = row[0] if row is not None else 0
    if used:
        raise Conflict(f"Cannot delete: {used} resource(s) still reference this type")
    tx.execute("DELETE FROM resource_types WHERE id = ?", (type_id,))
    tx.changed.add(TABLE)


def get_tx(tx: Tx, type_id: int) -> ResourceType:
    """Read one resource type inside a unit (404 if absent)."""
    row = tx.one(f"SELECT {_COLUMNS} FROM resource_types WHERE id = ?", (type_id,))
    if row is None:
        raise NotFound("Resource type not found")
    return ResourceType.from_row(row)


async def _all(db: Database) -> dict[tuple[str, str], ResourceType]:
    async def load() -> dict[tuple[str, str], ResourceType]:
        rows = await db.fetchall(f"SELECT {_COLUMNS} FROM resource_types")
        found = [ResourceType.from_row(row) for row in rows]
        return {(t.name, t.version): t for t in found}

    return await db.cached_table(TABLE, load)


async def get(db: Database, type_id: int) -> ResourceType:
    """Read one resource type by id."""
    for found in (await _all(db)).values():
        if found.id == type_id:
            return found
    raise NotFound("Resource type not found")


async def get_by_name(db: Database, name: str, version: str) -> ResourceType | None:
    """Read one resource type by name and version, or None."""
    return (await _all(db)).get((name, version))


async def all_types(db: Database) -> list[ResourceType]:
    """Every resource type, ordered by name, then version."""
    return sorted((await _all(db)).values(), key=lambda t: (t.name, t.version, t.id))


async def list_types(db: Database, *, name: str | None, status: str | None, limit: int,
                     offset: int) -> list[ResourceType]:
    """List resource types ordered by name, then version."""
    where, params = [], []
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM resource_types {clause} ORDER BY name, version, id"
        " LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [ResourceType.from_row(row) for row in rows]
