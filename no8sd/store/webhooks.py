"""SQL for admission webhooks: write units (run by the single writer) and reads.

Every resource write asks which webhooks apply, so the (small) table is held in memory
by the store's cache and re-read only after a commit changed it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from no8sd.errors import Conflict, NotFound
from no8sd.store.db import Database, Tx, last_id
from no8sd.store.rows import Webhook

TABLE = "admission_webhooks"
FIELDS = Webhook.FIELDS
NOT_FOUND = "Admission webhook not found"
_COLUMNS = Webhook.COLUMNS


def _duplicate(name: str) -> Conflict:
    return Conflict(f"Admission webhook '{name}' already exists")


def _encode(field: str, value: Any) -> Any:
    return json.dumps(value) if field == "operations" else value


def insert(tx: Tx, fields: dict[str, Any], now: float) -> Webhook:
    """Insert a webhook; a duplicate name is a Conflict."""
    values = [_encode(f, fields[f]) for f in FIELDS]
    try:
        cur = tx.execute(
            f"INSERT INTO admission_webhooks ({', '.join(FIELDS)}, created_at, updated_at)"
            f" VALUES ({', '.join('?' * len(FIELDS))}, ?, ?)", (*values, now, now))
    except sqlite3.IntegrityError:
        raise _duplicate(fields["name"]) from None
    tx.changed.add(TABLE)
    return _get(tx, last_id(cur))


def update(tx: Tx, webhook_id: int, changes: dict[str, Any], now: float) -> Webhook:
    """Apply a partial update; keys present in `changes` are written (None included)."""
    _get(tx, webhook_id)
    columns = [f for f in FIELDS if f in changes]
    if columns:
        values = [_encode(f, changes[f]) for f in columns]
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


def _get(tx: Tx, webhook_id: int) -> Webhook:
    row = tx.one(f"SELECT {_COLUMNS} FROM admission_webhooks WHERE id = ?", (webhook_id,))
    if row is None:
        raise NotFound(NOT_FOUND)
    return Webhook.from_row(row)


async def all_webhooks(db: Database) -> list[Webhook]:
    """Every webhook in chain order (mutating before validating, then by ordering)."""

    async def load() -> list[Webhook]:
        rows = await db.fetchall(f"SELECT {_COLUMNS} FROM admission_webhooks"
                                 " ORDER BY webhook_type, ordering, id")
        return [Webhook.from_row(row) for row in rows]

    return await db.cached_table(TABLE, load)


async def get(db: Database, webhook_id: int) -> Webhook:
    """Read one webhook by id."""
    for hook in await all_webhooks(db):
        if hook.id == webhook_id:
            return hook
    raise NotFound(NOT_FOUND)


async def list_webhooks(db: Database, *, type_name: str | None, version: str | None,
                        webhook_type: str | None) -> list[Webhook]:
    """List webhooks (exact-match filters), mutating before validating, then by ordering."""
    return [hook for hook in await all_webhooks(db)
            if (type_name is None or hook.resource_type_name == type_name)
            and (version is None or hook.resource_type_version == version)
            and (webhook_type is None or hook.webhook_type == webhook_type)]


async def chain_for(db: Database, operation: str, type_name: str, version: str) -> list[Webhook]:
    """The webhooks that apply to one operation on one type/version, in chain order."""
    return [hook for hook in await all_webhooks(db) if hook.matches(operation, type_name, version)]
