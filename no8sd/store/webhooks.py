"""SQL for admission webhooks: write units (run by the single writer) and reads."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from no8sd.errors import Conflict, NotFound
from no8sd.store.db import Database, Tx
from no8sd.timeutil import iso

_COLUMNS = ("id, name, webhook_url, webhook_type, operations, resource_type_name,"
            " resource_type_version, timeout_seconds, failure_policy, ordering, created_at,"
            " updated_at")
FIELDS = ("name", "webhook_url", "webhook_type", "operations", "resource_type_name",
          "resource_type_version", "timeout_seconds", "failure_policy", "ordering")
NOT_FOUND = "Admission webhook not found"


def decode(row: sqlite3.Row) -> dict[str, Any]:
    """Turn an admission_webhooks row into its REST record (ISO times)."""
    record = dict(row)
    record["operations"] = json.loads(record["operations"])
    record["created_at"] = iso(record["created_at"])
    record["updated_at"] = iso(record["updated_at"])
    return record


TABLE = "admission_webhooks"


def _duplicate(name: str) -> Conflict:
    return Conflict(f"Admission webhook '{name}' already exists")


def insert(tx: Tx, fields: dict[str, Any], now: float) -> dict[str, Any]:
    """Insert a webhook; a duplicate name is a Conflict."""
    values = [json.dumps(fields[f]) if f == "operations" else fields[f] for f in FIELDS]
    try:
        cur = tx.execute(
            f"INSERT INTO admission_webhooks ({', '.join(FIELDS)}, created_at, updated_at)"
            f" VALUES ({', '.join('?' * len(FIELDS))}, ?, ?)", (*values, now, now))
    except sqlite3.IntegrityError:
        raise _duplicate(fields["name"]) from None
    tx.changed.add(TABLE)
    return _get(tx, cur.lastrowid)


def update(tx: Tx, webhook_id: int, changes: dict[str, Any], now: float) -> dict[str, Any]:
    """Apply a partial update; keys present in `changes` are written (None included)."""
    _get(tx, webhook_id)
    columns = [f for f in FIELDS if f in changes]
    if columns:
        values = [json.dumps(changes[f]) if f == "operations" else changes[f] for f in columns]
        try:
            tx.execute(
                f"UPDATE admission_webhooks SET {', '.join(f'{c} = ?' for c in columns)},"
                " updated_at = ? WHERE id = ?", (*values, now, webhook_id))
        except sqlite3.IntegrityError:
            raise _duplicate(changes.get("name", "")) from None
        tx.changed.add(TABLE)
    return _get(tx, webhook_id)


def delete(tx: Tx, webhook_id: int) -> None:
    """Delete a webhook."""
    if tx.execute("DELETE FROM admission_webhooks WHERE id = ?", (webhook_id,)).rowcount == 0:
        raise NotFound(NOT_FOUND)
    tx.changed.add(TABLE)


def _get(tx: Tx, webhook_id: int) -> dict[str, Any]:
    row = tx.one(f"SELECT {_COLUMNS} FROM admission_webhooks WHERE id = ?", (webhook_id,))
    if row is None:
        raise NotFound(NOT_FOUND)
    return decode(row)


async def get(db: Database, webhook_id: int) -> dict[str, Any]:
    """Read one webhook by id."""
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM admission_webhooks WHERE id = ?",
                            (webhook_id,))
    if row is None:
        raise NotFound(NOT_FOUND)
    return decode(row)


async def list_webhooks(db: Database, *, type_name: str | None, version: str | None,
                        webhook_type: str | None) -> list[dict[str, Any]]:
    """List webhooks (exact-match filters), mutating before validating, then by ordering."""
    where, params = [], []
    for column, value in (("resource_type_name", type_name),
                          ("resource_type_version", version), ("webhook_type", webhook_type)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM admission_webhooks {clause}"
        " ORDER BY webhook_type, ordering, id", params)
    return [decode(row) for row in rows]


async def chain_for(db: Database, operation: str, type_name: str,
                    version: str) -> list[dict[str, Any]]:
    """The webhooks that apply to one operation on one type/version, in chain order.

    Every write asks this, so the (small) table is kept in memory and re-read only after
    a commit changed it.
    """

    async def load() -> list[dict[str, Any]]:
        rows = await db.fetchall(f"SELECT {_COLUMNS} FROM admission_webhooks"
                                 " ORDER BY webhook_type, ordering, id")
        return [decode(row) for row in rows]

    hooks = await db.cached_table(TABLE, load)
    return [hook for hook in hooks
            if hook["resource_type_name"] in (None, type_name)
            and hook["resource_type_version"] in (None, version)
            and operation in hook["operations"]]
