"""SQL for resource types: write units (run by the single writer) and reads."""

from __future__ import annotations

import sqlite3
from typing import Any

from no8sd.errors import Conflict, NotFound
from no8sd.records import decode_type, dumps
from no8sd.store.db import Database, Tx

_COLUMNS = "id, name, version, schema, description, status, metadata, created_at, updated_at"


def insert(tx: Tx, name: str, version: str, schema: dict[str, Any], description: str | None,
           metadata: dict[str, Any], now: float) -> dict[str, Any]:
    """Insert a resource type; a duplicate name/version is a Conflict."""
    try:
        cur = tx.execute(
            "INSERT INTO resource_types (name, version, schema, description, status, metadata,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
            (name, version, dumps(schema), description, dumps(metadata), now, now),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"Resource type {name}/{version} already exists") from None
    return _get(tx, cur.lastrowid)


def update(tx: Tx, type_id: int, changes: dict[str, Any], now: float) -> dict[str, Any]:
    """Apply a partial update (schema, description, status, metadata)."""
    current = _get(tx, type_id)
    values = {key: changes[key] for key in ("schema", "description", "status", "metadata")
              if key in changes}
    if any(current[key] != value for key, value in values.items()):
        tx.execute(
            "UPDATE resource_types SET schema = ?, description = ?, status = ?, metadata = ?,"
            " updated_at = ? WHERE id = ?",
            (
                dumps(values.get("schema", current["schema"])),
                values.get("description", current["description"]),
                values.get("status", current["status"]),
                dumps(values.get("metadata", current["metadata"])),
                now,
                type_id,
            ),
        )
    return _get(tx, type_id)


def delete(tx: Tx, type_id: int) -> None:
    """Delete a resource type; refused while any resource still uses it."""
    _get(tx, type_id)
    used = tx.one("SELECT COUNT(*) FROM resources WHERE resource_type_id = ?", (type_id,))[0]
    if used:
        raise Conflict(f"Cannot delete: {used} resource(s) still reference this type")
    tx.execute("DELETE FROM resource_types WHERE id = ?", (type_id,))


def _get(tx: Tx, type_id: int) -> dict[str, Any]:
    row = tx.one(f"SELECT {_COLUMNS} FROM resource_types WHERE id = ?", (type_id,))
    if row is None:
        raise NotFound("Resource type not found")
    return decode_type(row)


async def get(db: Database, type_id: int) -> dict[str, Any]:
    """Read one resource type by id."""
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM resource_types WHERE id = ?", (type_id,))
    if row is None:
        raise NotFound("Resource type not found")
    return decode_type(row)


async def get_by_name(db: Database, name: str, version: str) -> dict[str, Any] | None:
    """Read one resource type by name and version, or None."""
    row = await db.fetchone(
        f"SELECT {_COLUMNS} FROM resource_types WHERE name = ? AND version = ?", (name, version)
    )
    return decode_type(row) if row is not None else None


async def list_types(db: Database, *, name: str | None, status: str | None, limit: int,
                     offset: int) -> list[dict[str, Any]]:
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
    return [decode_type(row) for row in rows]
