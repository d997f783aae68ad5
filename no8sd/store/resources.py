"""SQL for resources and their history: the primitives write units are made of, and reads.

Nothing here decides anything: the rules (which fields a create, an update, a status or a
claim changes; when work is due) live in no8sd.lifecycle and are applied by the write
units in no8sd.core.changes. This module loads a row, saves changed fields, inserts and
removes rows, appends history, and answers queries, each as the indexes allow.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from typing import Any

from no8sd import lifecycle
from no8sd.errors import Conflict
from no8sd.store.db import Database, Tx, last_id
from no8sd.store.packing import pack_words, unpack
from no8sd.store.rows import History, Resource, dumps

JSON_FIELDS = frozenset(Resource.JSON_COLUMNS)


def _stored(name: str, value: Any) -> Any:
    """A field's value as its column holds it (JSON as text; conditions packed)."""
    if name == "conditions":
        return pack_words(dumps(value))
    return dumps(value) if name in JSON_FIELDS else value

# ---- write primitives (inside a unit) -------------------------------------------------


def load(tx: Tx, resource_id: int) -> Resource | None:
    """A resource as this unit sees it: what the unit itself wrote, else what earlier units
    of its batch wrote, else the committed copy the cache holds, else the row itself."""
    found = tx.rows.get(resource_id)
    if found is not None:
        return found
    if resource_id in tx.removed:
        return None
    if resource_id in tx.batch_rows:
        found = tx.batch_rows[resource_id]
    else:
        found = tx.cache.resource(resource_id) if tx.cache is not None else None
        if found is None:
            row = tx.one("SELECT * FROM resources WHERE id = ?", (resource_id,))
            found = Resource.from_row(row) if row is not None else None
    if found is not None:
        tx.rows[resource_id] = found
    return found


def save(tx: Tx, resource: Resource, **fields: Any) -> Resource:
    """Write `fields` to the row; return the updated record."""
    if not fields:
        return resource
    assignments = ", ".join(f"{name} = ?" for name in fields)
    values = [_stored(name, v) for name, v in fields.items()]
    tx.execute(f"UPDATE resources SET {assignments} WHERE id = ?", (*values, resource.id))
    updated = dataclasses.replace(resource, **fields)
    tx.rows[resource.id] = updated
    tx.touched.add(resource.id)
    tx.revisions[resource.id] = tx.revisions.get(resource.id, 0) + 1
    return updated


def insert(tx: Tx, new: Resource) -> Resource:
    """Insert a new resource row (its id is assigned here); a taken name is a Conflict."""
    columns = [f.name for f in dataclasses.fields(Resource) if f.name != "id"]
    values = [_stored(c, getattr(new, c)) for c in columns]
    try:
        cur = tx.execute(f"INSERT INTO resources ({', '.join(columns)})"
                         f" VALUES ({', '.join('?' * len(columns))})", values)
    except sqlite3.IntegrityError:
        raise Conflict(
            f"Resource '{new.name}' of type {new.resource_type_name} already exists"
        ) from None
    # Built, not read back: creates are the hottest write, and the row is exactly `new`.
    resource = tx.rows[last_id(cur)] = dataclasses.replace(new, id=last_id(cur))
    tx.touched.add(resource.id)
    return resource


def remove(tx: Tx, resource: Resource) -> None:
    """Delete a resource row (its history goes with it)."""
    tx.execute("DELETE FROM resources WHERE id = ?", (resource.id,))
    tx.touched.add(resource.id)
    tx.rows.pop(resource.id, None)
    tx.removed.add(resource.id)


def due_ids(tx: Tx, types: list[str], due_class: int, limit: int, exclude: frozenset[int],
            now: float) -> list[tuple[float, int]]:
    """(due time, id) of up to `limit` resources of `types` due by `now`, earliest first."""
    if limit <= 0:
        return []
    found: list[tuple[float, int]] = []
    for type_name in types:
        rows = tx.execute(DUE_SQL, (type_name, due_class, now, limit + len(exclude))).fetchall()
        found.extend((row[0], row[1]) for row in rows if row[1] not in exclude)
    found.sort()
    return found[:limit]


DUE_SQL = ("SELECT next_reconcile_time, id FROM resources INDEXED BY resources_due"
           " WHERE resource_type_name = ? AND due_class = ? AND next_reconcile_time <= ?"
           " AND next_reconcile_time IS NOT NULL ORDER BY next_reconcile_time LIMIT ?")


def leased(tx: Tx) -> list[tuple[int, str]]:
    """(id, type name) of every resource marked as handed out to a reconciler."""
    rows = tx.execute("SELECT id, resource_type_name FROM resources INDEXED BY resources_leased"
                      " WHERE leased = 1").fetchall()
    return [(row[0], row[1]) for row in rows]


def release_all_leases(tx: Tx, *, due_at: float, due_class: int) -> None:
    """Clear every lease; those still due get `due_at`/`due_class`."""
    tx.execute("UPDATE resources SET leased = 0, next_reconcile_time = ?, due_class = ?"
               " WHERE leased = 1 AND next_reconcile_time IS NOT NULL", (due_at, due_class))
    tx.execute("UPDATE resources SET leased = 0 WHERE leased = 1")


def add_history(tx: Tx, resource_id: int, *, generation: int, success: bool, message: str,
                counts: tuple[int, int, int], duration_seconds: float | None,
                trigger_reason: str | None, drift_detected: bool, now: float,
                keep: int, triggered_by: str | None = None) -> None:
    """Append a history entry and keep only the newest `keep` of this resource."""
    tx.execute(
        "INSERT INTO reconciliation_history (resource_id, generation, success, phase, message,"
        " error_message, resources_created, resources_updated, resources_deleted,"
        " duration_seconds, trigger_reason, drift_detected, reconcile_time, triggered_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (resource_id, generation, int(success), "completed" if success else "failed", message,
         None if success else message, *counts, duration_seconds, trigger_reason,
         int(drift_detected), now, triggered_by),
    )
    tx.execute(
        "DELETE FROM reconciliation_history WHERE resource_id = ? AND id <= ("
        " SELECT id FROM reconciliation_history WHERE resource_id = ?"
        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (resource_id, resource_id, keep),
    )


# ---- reads ------------------------------------------------------------------------


async def find(db: Database, resource_id: int) -> Resource | None:
    """Read one resource by id, or None (served from the cache when it holds it)."""
    db.check_other_writers()
    cache = db.cache
    cached = cache.resource(resource_id)
    if cached is not None:
        return cached
    token = cache.begin_fill(resource_id)
    row = await db.fetchone("SELECT * FROM resources WHERE id = ?", (resource_id,))
    found = Resource.from_row(row) if row is not None else None
    cache.finish_fill(resource_id, token, found)
    return found


async def find_by_name(db: Database, type_name: str, version: str | None,
                       name: str) -> Resource | None:
    """Read one resource by type, name and (optionally) version, or None."""
    if version is None:
        row = await db.fetchone(
            "SELECT * FROM resources WHERE resource_type_name = ? AND name = ?",
            (type_name, name))
    else:
        row = await db.fetchone(
            "SELECT * FROM resources WHERE resource_type_name = ? AND name = ?"
            " AND resource_type_version = ?", (type_name, name, version))
    return Resource.from_row(row) if row is not None else None


async def list_resources(db: Database, *, status: str | None, type_name: str | None,
                         version: str | None, limit: int, offset: int,
                         allowed: list[tuple[str, str]] | None = None) -> list[Resource]:
    """List resources in id order with optional filters.

    `allowed` restricts rows to (type, version) pairs, "*" meaning any; None = no restriction.
    """
    found = _where(status=status, type_name=type_name, version=version, allowed=allowed)
    if found is None:
        return []
    clause, params = found
    rows = await db.fetchall(
        f"SELECT * FROM resources {clause} ORDER BY id LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [Resource.from_row(row) for row in rows]


REST_COLUMNS = ("id, name, resource_type_name, resource_type_version, action_plugin, status,"
                " status_message, generation, observed_generation, finalizers, conditions,"
                " created_at, updated_at, last_reconcile_time, spec, plugin_config, metadata,"
                " outputs, retry_count, next_reconcile_time, deleted_at")
_CONDITIONS = 10  # the position of conditions in REST_COLUMNS


async def page_rows(db: Database, *, status: str | None, type_name: str | None,
                    version: str | None, limit: int, offset: int, after_id: int | None,
                    allowed: list[tuple[str, str]] | None = None) -> list[tuple[Any, ...]]:
    """One page of resources in id order, as raw rows of REST_COLUMNS (JSON columns still
    text, conditions unpacked), after `after_id` (keyset) or skipping `offset`.

    The page's ids are chosen from an index that holds the filter's columns and the id in
    id order (a deep offset steps over index entries, not over rows), and only that page's
    rows are read.
    """
    found = _where(status=status, type_name=type_name, version=version, allowed=allowed)
    if found is None:
        return []
    clause, params = found
    if after_id is not None:
        clause = f"{clause} AND id > ?" if clause else "WHERE id > ?"
        params.append(after_id)
    index = _order_index(status=status, type_name=type_name, version=version)
    hint = f"INDEXED BY {index}" if index is not None and allowed is None else ""
    # One statement, one trip to the reader thread: the subquery picks the page's ids
    # from the index, the outer query reads just those rows (SQLite walks the ids of an
    # IN list in order, so ORDER BY costs no sort).
    rows = await db.fetchall(
        f"SELECT {REST_COLUMNS} FROM resources WHERE id IN (SELECT id FROM resources {hint}"
        f" {clause} ORDER BY id LIMIT ? OFFSET ?) ORDER BY id",
        (*params, limit, offset if after_id is None else 0))
    return [(*row[:_CONDITIONS], unpack(row[_CONDITIONS]), *row[_CONDITIONS + 1:])
            for row in rows]


def _order_index(*, status: str | None, type_name: str | None, version: str | None
                 ) -> str | None:
    """The index whose entries are the filter's rows in id order (see 0007_pages.sql)."""
    if type_name is not None and version is not None:
        return "resources_by_type"
    if type_name is not None:
        return "resources_by_type_name_id"
    if version is None and status is not None:
        return "resources_by_status"
    if status is None and version is None:
        return "resources_ids"
    return None


def _where(*, status: str | None, type_name: str | None, version: str | None,
           allowed: list[tuple[str, str]] | None, name_contains: str | None = None
           ) -> tuple[str, list[Any]] | None:
    """The WHERE clause and parameters of the list filters; None when `allowed` admits
    nothing. `allowed` holds (type, version) pairs, "*" meaning any; None = everything."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("resource_type_name", type_name),
                          ("resource_type_version", version)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if name_contains is not None:
        # As a subquery, the names are scanned in the (type, name) index, not the table.
        where.append("id IN (SELECT id FROM resources WHERE name LIKE ? ESCAPE '\\')")
        escaped = re.sub(r"([\\%_])", r"\\\1", name_contains)
        params.append(f"%{escaped}%")
    if allowed is not None:
        if not allowed:
            return None
        scopes = []
        for scope_type, scope_version in allowed:
            parts = []
            if scope_type != "*":
                parts.append("resource_type_name = ?")
                params.append(scope_type)
            if scope_version != "*":
                parts.append("resource_type_version = ?")
                params.append(scope_version)
            scopes.append("(" + (" AND ".join(parts) or "1") + ")")
        where.append("(" + " OR ".join(scopes) + ")")
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


# Sort orders of `search`: each ends in a unique key, so pages never overlap or skip.
SORTS: dict[str, tuple[str, ...]] = {
    "created": ("id",),
    "name": ("name", "id"),
    "type": ("resource_type_name", "name"),  # (type, name) is unique and indexed
    "status": ("status", "id"),
    "updated": ("updated_at", "id"),
}


async def search(db: Database, *, status: str | None, type_name: str | None,
                 version: str | None, name_contains: str | None, sort: str, descending: bool,
                 limit: int, offset: int, allowed: list[tuple[str, str]] | None
                 ) -> tuple[int, list[Resource]]:
    """(how many match, one sorted page of them) for the list filters plus a name search.

    The page's ids are chosen first, selecting only the sort key and the id, so SQLite
    can answer from an index where one fits and a sort holds keys, not rows; then only
    that page's rows are read.
    """
    found = _where(status=status, type_name=type_name, version=version, allowed=allowed,
                   name_contains=name_contains)
    if found is None:
        return 0, []
    clause, params = found
    direction = " DESC" if descending else ""
    order = ", ".join(column + direction for column in SORTS[sort])
    counted = await db.fetchone(f"SELECT COUNT(*) FROM resources {clause}", params)
    total = counted[0] if counted is not None else 0
    id_rows = await db.fetchall(
        f"SELECT id FROM resources {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, limit, offset))
    ids = [row[0] for row in id_rows]
    if not ids:
        return total, []
    rows = await db.fetchall(
        f"SELECT * FROM resources WHERE id IN ({', '.join('?' * len(ids))})", ids)
    by_id = {row["id"]: Resource.from_row(row) for row in rows}
    # A row removed between the two reads is simply left out of this page.
    return total, [by_id[i] for i in ids if i in by_id]


async def count_by_state(db: Database) -> list[tuple[str, str, str, int]]:
    """(type, version, status, count) for every combination that has resources.

    Counted from the indexes: usually most resources are `ready`, so the totals per type
    and version come from a covering index, only the resources in other states are
    looked up one by one, and `ready` is the remainder, in one statement (one snapshot).
    When most are not ready, one plain scan of the table is cheaper than the lookups.
    """
    per_status = {row[0]: row[1] for row in await db.fetchall(
        "SELECT status, COUNT(*) FROM resources INDEXED BY resources_by_status GROUP BY status")}
    others = sum(n for status, n in per_status.items() if status != lifecycle.READY)
    # A lookup costs about three times a scanned row (measured: tests/bench/bench_ui.py).
    if others * 3 > per_status.get(lifecycle.READY, 0):
        rows = await db.fetchall(
            "SELECT resource_type_name, resource_type_version, status, COUNT(*)"
            " FROM resources NOT INDEXED GROUP BY 1, 2, 3")
    else:
        not_ready = [s for s in lifecycle.STATUSES if s != lifecycle.READY]
        rows = await db.fetchall(
            "WITH totals AS (SELECT resource_type_name AS t, resource_type_version AS v,"
            "   COUNT(*) AS n FROM resources INDEXED BY resources_by_type GROUP BY 1, 2),"
            " others AS MATERIALIZED (SELECT resource_type_name AS t,"
            "   resource_type_version AS v, status AS s, COUNT(*) AS n"
            "   FROM resources INDEXED BY resources_by_status"
            f"   WHERE status IN ({', '.join('?' * len(not_ready))}) GROUP BY 1, 2, 3)"
            " SELECT t, v, s, n FROM others UNION ALL"
            " SELECT t, v, ?, n - COALESCE((SELECT SUM(o.n) FROM others AS o"
            "   WHERE o.t = totals.t AND o.v = totals.v), 0) FROM totals",
            (*not_ready, lifecycle.READY))
    return [(row[0], row[1], row[2], row[3]) for row in rows if row[3] > 0]


async def next_due(db: Database, types: list[str], due_classes: tuple[int, ...]) -> float | None:
    """Return the earliest next_reconcile_time among `types` (index lookups only)."""
    earliest: float | None = None
    for type_name in types:
        for due_class in due_classes:
            row = await db.fetchone(
                "SELECT next_reconcile_time FROM resources INDEXED BY resources_due"
                " WHERE resource_type_name = ? AND due_class = ?"
                " AND next_reconcile_time IS NOT NULL ORDER BY next_reconcile_time LIMIT 1",
                (type_name, due_class),
            )
            if row is not None and (earliest is None or row[0] < earliest):
                earliest = row[0]
    return earliest


async def counts(db: Database) -> dict[tuple[str, str], int]:
    """{(type name, status): number of resources} over the whole table."""
    rows = await db.fetchall("SELECT resource_type_name, status, COUNT(*) FROM resources"
                             " GROUP BY resource_type_name, status")
    return {(row[0], row[1]): row[2] for row in rows}


async def due_count(db: Database, types: list[str], due_classes: tuple[int, ...],
                    now: float) -> int:
    """How many resources of `types` are due by `now` (index range counts only)."""
    total = 0
    for type_name in types:
        for due_class in due_classes:
            row = await db.fetchone(
                "SELECT COUNT(*) FROM resources INDEXED BY resources_due"
                " WHERE resource_type_name = ? AND due_class = ?"
                " AND next_reconcile_time IS NOT NULL AND next_reconcile_time <= ?",
                (type_name, due_class, now))
            total += row[0] if row is not None else 0
    return total


async def finalizers(db: Database, resource_id: int) -> list[str]:
    """Read a resource's finalizers ([] when it does not exist)."""
    row = await db.fetchone("SELECT finalizers FROM resources WHERE id = ?", (resource_id,))
    if row is None:
        return []
    return list(json.loads(row[0]))


async def history(db: Database, resource_id: int, limit: int) -> list[History]:
    """Read a resource's newest history entries first."""
    rows = await db.fetchall(
        "SELECT * FROM reconciliation_history WHERE resource_id = ? ORDER BY id DESC LIMIT ?",
        (resource_id, limit),
    )
    return [History.from_row(row) for row in rows]


# ---- queries on values inside the JSON columns -------------------------------------

WHERE_ROOTS = ("spec", "metadata", "outputs")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _json_path(segments: list[str]) -> str:
    return "$" + "".join(f'."{segment}"' for segment in segments)


def _split(path: str) -> tuple[str, list[str]]:
    """("spec", ["a", "b"]) for "spec.a.b"; ValueError for anything else."""
    root, *segments = path.split(".")
    if root not in WHERE_ROOTS:
        raise ValueError(f"bad path {path!r}: it must start with one of "
                         f"{', '.join(WHERE_ROOTS)}")
    if not segments or not all(_SEGMENT.match(s) for s in segments):
        raise ValueError(f"bad path {path!r}: use dotted names of letters, digits, '_' "
                         "and '-' (spec.role, outputs.members[])")
    return root, segments


def _equals(column: str, path: str, value: Any) -> tuple[str, list[Any]]:
    """SQL that is true when the JSON value at `path` in `column` equals `value`, with the
    same JSON type (so 1 matches neither true nor "1")."""
    kind = f"json_type({column}, ?)"
    if value is None:
        return f"{kind} = 'null'", [path]
    if isinstance(value, bool):
        return f"{kind} = ?", [path, "true" if value else "false"]
    if isinstance(value, int | float):
        return (f"({kind} IN ('integer', 'real') AND json_extract({column}, ?) = ?)",
                [path, path, value])
    if isinstance(value, str):
        return f"({kind} = 'text' AND json_extract({column}, ?) = ?)", [path, path, value]
    raise ValueError(f"{value!r} cannot be compared: use a string, a number, true, false "
                     "or null")


def compile_where(where: dict[str, Any]) -> tuple[str, list[Any]]:
    """Turn a `where` filter into SQL with SQLite's JSON functions.

    `{"spec.role": "primary"}`: the value at that path equals "primary".
    `{"outputs.members[]": {"instance_id": "i-1"}}`: the array at that path holds an
    element whose fields equal all those given (each field may be dotted too).
    A bad path or value is a ValueError.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for path, value in where.items():
        if not isinstance(path, str):
            raise ValueError(f"bad path {path!r}: paths are strings")
        if path.endswith("[]"):
            root, segments = _split(path[:-2])
            if not isinstance(value, dict) or not value:
                raise ValueError(f"{path!r} needs an object of the fields an element must "
                                 "have")
            inner: list[str] = []
            inner_params: list[Any] = []
            for field, wanted in value.items():
                if not isinstance(field, str) or not all(
                        _SEGMENT.match(s) for s in field.split(".")):
                    raise ValueError(f"bad field {field!r} in {path!r}")
                sql, args = _equals("e.value", _json_path(field.split(".")), wanted)
                inner.append(sql)
                inner_params.extend(args)
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({root}, ?) AS e WHERE "
                           f"json_type(e.value) = 'object' AND {' AND '.join(inner)})")
            params.extend([_json_path(segments), *inner_params])
        else:
            root, segments = _split(path)
            sql, args = _equals(root, _json_path(segments), value)
            clauses.append(sql)
            params.extend(args)
    return " AND ".join(clauses), params


async def query(db: Database, *, type_name: str | None, version: str | None,
                status: str | None, where: dict[str, Any], limit: int) -> list[Resource]:
    """Resources in id order matching the filters. A `where` filter needs a type: the
    type's index narrows the rows, and the JSON conditions are checked on those alone
    (a scan bounded by the type's size, never the whole table)."""
    clauses: list[str] = []
    params: list[Any] = []
    if type_name is not None:
        clauses.append("resource_type_name = ?")
        params.append(type_name)
    elif where:
        raise ValueError("a where filter needs resource_type (it is checked on that type's "
                         "resources only)")
    if version is not None:
        clauses.append("resource_type_version = ?")
        params.append(version)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if where:
        sql, args = compile_where(where)
        clauses.append(sql)
        params.extend(args)
    clause = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await db.fetchall(f"SELECT * FROM resources {clause} ORDER BY id LIMIT ?",
                             (*params, limit))
    return [Resource.from_row(row) for row in rows]
