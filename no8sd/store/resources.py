"""SQL for resources and their history: write units run by the single writer, and reads.

Every unit reads the row, applies the rules from `no8sd.lifecycle`, writes it back and
appends its event in the same transaction, so no change can be half-made or lost.
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

from no8sd import lifecycle
from no8sd.errors import Conflict, NotFound
from no8sd.records import decode_resource, dumps, spec_hash
from no8sd.store import events
from no8sd.store.db import Database, Tx
from no8sd.timeutil import iso

_rng = random.Random()


# ---- helpers ------------------------------------------------------------------------


def _load(tx: Tx, resource_id: int) -> dict[str, Any] | None:
    """Read a resource once per unit; later reads in the same unit reuse the dict, which
    `_save` keeps current."""
    found = tx.rows.get(resource_id)
    if found is None:
        row = tx.one("SELECT * FROM resources WHERE id = ?", (resource_id,))
        if row is None:
            return None
        found = tx.rows[resource_id] = decode_resource(row)
    return found


def type_of(tx: Tx, resource_id: int) -> str | None:
    """Return a resource's type name inside a unit (None if it does not exist)."""
    resource = _load(tx, resource_id)
    return None if resource is None else resource["resource_type_name"]


def _require(tx: Tx, resource_id: int) -> dict[str, Any]:
    resource = _load(tx, resource_id)
    if resource is None:
        raise NotFound("Resource not found")
    return resource


_JSON_FIELDS = frozenset(("spec", "plugin_config", "metadata", "outputs", "conditions",
                          "finalizers"))


def _save(tx: Tx, resource: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Write `fields` to the row and return the updated dict."""
    assignments = ", ".join(f"{name} = ?" for name in fields)
    values = [dumps(v) if name in _JSON_FIELDS else v for name, v in fields.items()]
    tx.execute(f"UPDATE resources SET {assignments} WHERE id = ?", (*values, resource["id"]))
    tx.touched.add(resource["id"])
    tx.revisions[resource["id"]] = tx.revisions.get(resource["id"], 0) + 1
    resource.update(fields)
    return resource


def _same(a: Any, b: Any) -> bool:
    """Compare JSON values by their canonical text (so 1 and 1.0, True and 1 differ)."""
    return dumps_sorted(a) == dumps_sorted(b)


def dumps_sorted(value: Any) -> str:
    """Canonical JSON text used for change detection."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _due_now(tx: Tx, resource: dict[str, Any], now: float) -> dict[str, Any]:
    """Mark fresh intent: due now, urgent, and remembered as wanted."""
    tx.wake.add(resource["resource_type_name"])
    return _save(tx, resource, next_reconcile_time=now, due_class=lifecycle.URGENT,
                 wanted_seq=resource["wanted_seq"] + 1)


def _remove(tx: Tx, resource: dict[str, Any], now: float) -> None:
    tx.execute("DELETE FROM resources WHERE id = ?", (resource["id"],))
    tx.touched.add(resource["id"])
    tx.rows.pop(resource["id"], None)
    events.emit(tx, events.REMOVED, resource, now)


# ---- units called from the API -----------------------------------------------------


def insert(tx: Tx, *, resource_type: dict[str, Any], name: str, spec: dict[str, Any],
           plugin_config: dict[str, Any], metadata: dict[str, Any], action_plugin: str,
           finalizers: list[str], now: float) -> dict[str, Any]:
    """Create a resource: pending, generation 1, due now; a duplicate name is a Conflict."""
    try:
        cur = tx.execute(
            "INSERT INTO resources (name, resource_type_id, resource_type_name,"
            " resource_type_version, action_plugin, spec, plugin_config, metadata, spec_hash,"
            " finalizers, next_reconcile_time, due_class, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, resource_type["id"], resource_type["name"], resource_type["version"],
             action_plugin, dumps(spec), dumps(plugin_config), dumps(metadata), spec_hash(spec),
             dumps(finalizers), now, lifecycle.URGENT, now, now),
        )
    except sqlite3.IntegrityError:
        raise Conflict(
            f"Resource '{name}' of type {resource_type['name']} already exists"
        ) from None
    # The new row, as a SELECT would return it (test_store checks they agree), built here
    # instead of read back: creates are the hottest write.
    resource = tx.rows[cur.lastrowid] = {
        "id": cur.lastrowid, "name": name, "resource_type_id": resource_type["id"],
        "resource_type_name": resource_type["name"],
        "resource_type_version": resource_type["version"], "action_plugin": action_plugin,
        "spec": spec, "plugin_config": plugin_config, "metadata": metadata, "outputs": {},
        "spec_hash": spec_hash(spec), "status": lifecycle.PENDING, "status_message": None,
        "generation": 1, "observed_generation": 0, "conditions": [],
        "finalizers": list(finalizers), "retry_count": 0, "next_reconcile_time": now,
        "due_class": lifecycle.URGENT, "wanted_seq": 1, "claimed_seq": 0,
        "claimed_generation": None, "claim_reason": None, "last_reconcile_time": None,
        "created_at": now, "updated_at": now, "deleted_at": None, "leased": 0,
    }
    tx.touched.add(resource["id"])
    tx.wake.add(resource["resource_type_name"])
    events.emit(tx, events.CREATED, resource, now)
    return resource


def update(tx: Tx, resource_id: int, changes: dict[str, Any], now: float) -> dict[str, Any]:
    """Replace spec / plugin_config / metadata; a spec or plugin_config change is a new
    generation (pending, due now, retries reset); a metadata-only edit is not."""
    resource = _require(tx, resource_id)
    if resource["deleted_at"] is not None:
        raise Conflict("Resource is being deleted")
    changed = {k: v for k, v in changes.items() if not _same(resource[k], v)}
    if not changed:
        return resource
    fields: dict[str, Any] = dict(changed, updated_at=now)
    if "spec" in changed or "plugin_config" in changed:
        fields.update(
            generation=resource["generation"] + 1,
            status=lifecycle.PENDING,
            retry_count=0,
        )
        if "spec" in changed:
            fields["spec_hash"] = spec_hash(changed["spec"])
        _save(tx, resource, **fields)
        _due_now(tx, resource, now)
    else:
        _save(tx, resource, **fields)
    events.emit(tx, events.MODIFIED, resource, now)
    return resource


def mark_deleted(tx: Tx, resource_id: int, now: float) -> tuple[dict[str, Any], bool]:
    """Start deletion; return (resource, removed). Without finalizers the row goes at once."""
    resource = _require(tx, resource_id)
    if resource["deleted_at"] is not None:
        return resource, False
    conditions = lifecycle.apply_phase_conditions(
        resource["conditions"], lifecycle.DELETING, "", resource["generation"], iso(now) or ""
    )
    _save(tx, resource, status=lifecycle.DELETING, status_message="Resource is being deleted",
          deleted_at=now, updated_at=now, conditions=conditions, retry_count=0)
    if resource["finalizers"]:
        _due_now(tx, resource, now)  # before the event, so it shows the new due time
    events.emit(tx, events.DELETED, resource, now)
    if not resource["finalizers"]:
        _remove(tx, resource, now)
        return resource, True
    return resource, False


def trigger(tx: Tx, resource_id: int, now: float) -> dict[str, Any]:
    """Make a resource due now (a manual reconcile); its owner is woken after commit."""
    resource = _require(tx, resource_id)
    return _due_now(tx, resource, now)


def edit_finalizers(tx: Tx, resource_id: int, add: list[str], remove: list[str], owner: str | None,
                    now: float) -> dict[str, Any] | None:
    """Add, then remove finalizers; return None when that removed a deleting resource."""
    resource = _require(tx, resource_id)
    finalizers = list(resource["finalizers"])
    for name in add:
        if name not in finalizers:
            finalizers.append(name)
    finalizers = [f for f in finalizers if f not in set(remove)]
    deleting = resource["deleted_at"] is not None
    if deleting and not finalizers:
        _save(tx, resource, finalizers=finalizers, updated_at=now)
        _remove(tx, resource, now)
        return None
    if finalizers == resource["finalizers"]:
        return resource
    # Giving a deleting resource back to its owner means the owner has work again.
    owner_back = deleting and owner in finalizers and owner not in resource["finalizers"]
    _save(tx, resource, finalizers=finalizers, updated_at=now)
    if owner_back:
        _due_now(tx, resource, now)
    events.emit(tx, events.MODIFIED, resource, now)
    return resource


# ---- units called through a plugin's ReconcilerContext -----------------------------


def claim_due(tx: Tx, *, types: list[str], limit: int, exclude: frozenset[int], now: float,
              rules: lifecycle.Scheduling, routine_slots: int = 0) -> list[dict[str, Any]]:
    """Hand out up to `limit` due resources of `types`, each leased for the reconcile timeout.

    Urgent work comes first, but `routine_slots` are kept for routine work (when there is
    any), so a backlog of drift re-checks and retries keeps draining under a stream of
    fresh changes.
    """
    if limit <= 0 or not types:
        return []
    reserve = min(max(routine_slots, 0), limit)
    urgent = _due_ids(tx, types, lifecycle.URGENT, limit - reserve, exclude, now)
    routine = _due_ids(tx, types, lifecycle.ROUTINE, limit - len(urgent), exclude, now)
    if len(urgent) + len(routine) < limit and len(urgent) == limit - reserve:
        # Routine work did not use its reserved slots: let more urgent work have them.
        urgent = _due_ids(tx, types, lifecycle.URGENT, limit - len(routine), exclude, now)
    claimed = []
    for _, resource_id in urgent + routine:
        resource = _load(tx, resource_id)
        assert resource is not None
        reason = lifecycle.trigger_reason(
            status=resource["status"], generation=resource["generation"],
            observed_generation=resource["observed_generation"],
            last_reconcile_time=resource["last_reconcile_time"], due_class=resource["due_class"],
        )
        _save(tx, resource, next_reconcile_time=now + rules.reconcile_timeout,
              due_class=lifecycle.ROUTINE, claimed_seq=resource["wanted_seq"],
              claimed_generation=resource["generation"], claim_reason=reason, leased=1)
        claimed.append(resource)
    return claimed


def _due_ids(tx: Tx, types: list[str], due_class: int, limit: int, exclude: frozenset[int],
             now: float) -> list[tuple[float, int]]:
    if limit <= 0:
        return []
    found: list[tuple[float, int]] = []
    for type_name in types:
        rows = tx.execute(
            "SELECT next_reconcile_time, id FROM resources INDEXED BY resources_due"
            " WHERE resource_type_name = ? AND due_class = ? AND next_reconcile_time <= ?"
            " AND next_reconcile_time IS NOT NULL ORDER BY next_reconcile_time LIMIT ?",
            (type_name, due_class, now, limit + len(exclude)),
        ).fetchall()
        found.extend((row[0], row[1]) for row in rows if row[1] not in exclude)
    found.sort()
    return found[:limit]


def set_status(tx: Tx, resource_id: int, *, status: str, message: str | None,
               observed_generation: int | None, now: float,
               rules: lifecycle.Scheduling) -> dict[str, Any] | None:
    """Write a phase with its standard conditions and next due time, as one change."""
    resource = _load(tx, resource_id)
    if resource is None:
        return None
    now_iso = iso(now) or ""
    dirty = resource["wanted_seq"] > resource["claimed_seq"]
    if observed_generation is None and status == lifecycle.READY:
        observed_generation = resource["claimed_generation"] or resource["generation"]
    generation = observed_generation if observed_generation is not None else resource[
        "generation"]
    fields: dict[str, Any] = {"status_message": message or None, "updated_at": now}
    if status != lifecycle.RECONCILING:
        fields["leased"] = 0  # the reconcile reported its outcome
    if observed_generation is not None:
        fields["observed_generation"] = observed_generation
    if resource["deleted_at"] is not None:
        # Deletion is final: the phase stays `deleting`; a failure still backs off.
        if status == lifecycle.FAILED:
            fields["conditions"] = lifecycle.apply_phase_conditions(
                resource["conditions"], status, message or "", generation, now_iso)
            if resource["next_reconcile_time"] is not None:
                due, retries = lifecycle.due_after_status(
                    status, now=now, retry_count=resource["retry_count"], dirty=False,
                    rules=rules, rng=_rng)
                fields.update(next_reconcile_time=due.at, due_class=due.due_class,
                              retry_count=retries)
    elif status == lifecycle.READY and generation < resource["generation"]:
        # Ready for a spec that has since changed: the new generation is still pending.
        fields.update(next_reconcile_time=now, due_class=lifecycle.URGENT,
                      last_reconcile_time=now)
        tx.wake.add(resource["resource_type_name"])
    else:
        due, retries = lifecycle.due_after_status(
            status, now=now, retry_count=resource["retry_count"], dirty=dirty, rules=rules,
            rng=_rng)
        fields.update(
            status=status,
            conditions=lifecycle.apply_phase_conditions(
                resource["conditions"], status, message or "", generation, now_iso),
            next_reconcile_time=due.at,
            due_class=due.due_class,
            retry_count=retries,
        )
        if status == lifecycle.READY:
            fields["last_reconcile_time"] = now
        if due.at is not None and due.at <= now:
            tx.wake.add(resource["resource_type_name"])
    _save(tx, resource, **fields)
    events.emit(tx, events.MODIFIED, resource, now)
    return resource


def set_condition(tx: Tx, resource_id: int, *, ctype: str, status: str, reason: str,
                  message: str, observed_generation: int | None,
                  now: float) -> dict[str, Any] | None:
    """Set one named condition; nothing is written when nothing would change."""
    resource = _load(tx, resource_id)
    if resource is None:
        return None
    generation = (observed_generation if observed_generation is not None
                  else resource["claimed_generation"] or resource["generation"])
    conditions = lifecycle.set_condition(resource["conditions"], ctype, status, reason, message,
                                         generation, iso(now) or "")
    if conditions == resource["conditions"]:
        return resource
    _save(tx, resource, conditions=conditions, updated_at=now)
    events.emit(tx, events.MODIFIED, resource, now)
    return resource


def record(tx: Tx, resource_id: int, *, success: bool, message: str,
           duration_seconds: float | None, trigger_reason: str | None, drift_detected: bool,
           requeue_after: float | None, counts: tuple[int, int, int], history_limit: int,
           now: float, rules: lifecycle.Scheduling) -> dict[str, Any] | None:
    """Write one history entry, honour requeue_after, and announce RECONCILED."""
    resource = _load(tx, resource_id)
    if resource is None:
        return None  # removed while it was being reconciled: nothing left to record against
    tx.execute(
        "INSERT INTO reconciliation_history (resource_id, generation, success, phase, message,"
        " error_message, resources_created, resources_updated, resources_deleted,"
        " duration_seconds, trigger_reason, drift_detected, reconcile_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (resource_id, resource["claimed_generation"] or resource["generation"], int(success),
         "completed" if success else "failed", message, None if success else message,
         *counts, duration_seconds, trigger_reason or resource["claim_reason"],
         int(drift_detected), now),
    )
    # Keep the newest `history_limit` entries of this resource.
    tx.execute(
        "DELETE FROM reconciliation_history WHERE resource_id = ? AND id <= ("
        " SELECT id FROM reconciliation_history WHERE resource_id = ?"
        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (resource_id, resource_id, history_limit),
    )
    dirty = resource["wanted_seq"] > resource["claimed_seq"]
    fields: dict[str, Any] = {"leased": 0} if resource["leased"] else {}
    if resource["next_reconcile_time"] is None:
        pass  # nothing further is wanted (e.g. the owner already released a deleting resource)
    elif dirty:
        fields.update(next_reconcile_time=now, due_class=lifecycle.URGENT)
    elif requeue_after is not None:
        fields.update(next_reconcile_time=now + max(0.0, float(requeue_after)),
                      due_class=lifecycle.ROUTINE)
    elif not success and resource["deleted_at"] is not None:
        due, retries = lifecycle.due_after_status(
            lifecycle.FAILED, now=now, retry_count=resource["retry_count"], dirty=False,
            rules=rules, rng=_rng)
        fields.update(next_reconcile_time=due.at, due_class=due.due_class, retry_count=retries)
    if fields:
        _save(tx, resource, **fields)
        if fields.get("next_reconcile_time", now + 1) <= now:
            tx.wake.add(resource["resource_type_name"])
    events.emit(tx, events.RECONCILED, resource, now)
    return resource


def release_leases(tx: Tx, now: float) -> int:
    """Make every resource that was handed out when the daemon last stopped due now.

    Whoever held those leases is gone (a crash, a kill, a stop mid-reconcile), so waiting
    out the reconcile timeout would only delay the retry.
    """
    rows = tx.execute("SELECT id, resource_type_name FROM resources INDEXED BY resources_leased"
                      " WHERE leased = 1").fetchall()
    for row in rows:
        tx.touched.add(row[0])
        tx.wake.add(row[1])
    tx.execute("UPDATE resources SET leased = 0, next_reconcile_time = ?, due_class = ?"
               " WHERE leased = 1 AND next_reconcile_time IS NOT NULL",
               (now, lifecycle.URGENT))
    tx.execute("UPDATE resources SET leased = 0 WHERE leased = 1")
    return len(rows)


def add_finalizer(tx: Tx, resource_id: int, finalizer: str, now: float) -> bool:
    """Append a finalizer if absent; return whether the resource exists."""
    resource = _load(tx, resource_id)
    if resource is None:
        return False
    if finalizer not in resource["finalizers"]:
        _save(tx, resource, finalizers=[*resource["finalizers"], finalizer], updated_at=now)
        events.emit(tx, events.MODIFIED, resource, now)
    return True


def remove_finalizer(tx: Tx, resource_id: int, finalizer: str, owner: str, now: float) -> bool:
    """Drop every occurrence of a finalizer; the owner releasing a deleting resource ends
    its due work (what remains is for whoever holds the other finalizers)."""
    resource = _load(tx, resource_id)
    if resource is None:
        return False
    if finalizer in resource["finalizers"]:
        fields: dict[str, Any] = {
            "finalizers": [f for f in resource["finalizers"] if f != finalizer],
            "updated_at": now,
        }
        if resource["deleted_at"] is not None and finalizer == owner:
            fields["next_reconcile_time"] = None
        _save(tx, resource, **fields)
        events.emit(tx, events.MODIFIED, resource, now)
    return True


def hard_delete(tx: Tx, resource_id: int, now: float) -> bool:
    """Remove a deleting resource that has no finalizers left; otherwise do nothing."""
    resource = _load(tx, resource_id)
    if resource is None or resource["deleted_at"] is None or resource["finalizers"]:
        return False
    _remove(tx, resource, now)
    return True


def set_outputs(tx: Tx, resource_id: int, outputs: dict[str, Any], now: float) -> bool:
    """Replace a resource's outputs; return whether the resource exists."""
    resource = _load(tx, resource_id)
    if resource is None:
        return False
    if not _same(resource["outputs"], outputs):
        _save(tx, resource, outputs=outputs, updated_at=now)
        events.emit(tx, events.MODIFIED, resource, now)
    return True


def get_finalizers_tx(tx: Tx, resource_id: int) -> list[str]:
    """Read finalizers inside a unit."""
    resource = _load(tx, resource_id)
    return list(resource["finalizers"]) if resource is not None else []


# ---- reads ------------------------------------------------------------------------


async def get(db: Database, resource_id: int) -> dict[str, Any]:
    """Read one resource by id (the returned dict is shared: do not modify it)."""
    found = await find(db, resource_id)
    if found is None:
        raise NotFound("Resource not found")
    return found


async def find(db: Database, resource_id: int) -> dict[str, Any] | None:
    """Read one resource by id, or None (the returned dict is shared: do not modify it)."""
    cache = db.resource_cache
    cached = cache.get(resource_id)
    if cached is not None:
        return cached
    token = cache.begin_fill(resource_id)
    row = await db.fetchone("SELECT * FROM resources WHERE id = ?", (resource_id,))
    found = decode_resource(row) if row is not None else None
    cache.finish_fill(resource_id, token, found)
    return found


async def get_by_name(db: Database, type_name: str, version: str, name: str) -> dict[str, Any]:
    """Read one resource by type, version and name."""
    row = await db.fetchone(
        "SELECT * FROM resources WHERE resource_type_name = ? AND name = ?"
        " AND resource_type_version = ?",
        (type_name, name, version),
    )
    if row is None:
        raise NotFound("Resource not found")
    return decode_resource(row)


async def list_resources(db: Database, *, status: str | None, type_name: str | None,
                         version: str | None, limit: int, offset: int,
                         allowed: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """List resources in id order with optional filters.

    `allowed` restricts rows to (type, version) pairs, "*" meaning any; None = no restriction.
    """
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if type_name is not None:
        where.append("resource_type_name = ?")
        params.append(type_name)
    if version is not None:
        where.append("resource_type_version = ?")
        params.append(version)
    if allowed is not None:
        if not allowed:
            return []
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
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetchall(
        f"SELECT * FROM resources {clause} ORDER BY id LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [decode_resource(row) for row in rows]


async def next_due(db: Database, types: list[str]) -> float | None:
    """Return the earliest next_reconcile_time among `types` (index lookups only)."""
    earliest: float | None = None
    for type_name in types:
        for due_class in (lifecycle.URGENT, lifecycle.ROUTINE):
            row = await db.fetchone(
                "SELECT next_reconcile_time FROM resources INDEXED BY resources_due"
                " WHERE resource_type_name = ? AND due_class = ?"
                " AND next_reconcile_time IS NOT NULL ORDER BY next_reconcile_time LIMIT 1",
                (type_name, due_class),
            )
            if row is not None and (earliest is None or row[0] < earliest):
                earliest = row[0]
    return earliest


async def get_finalizers(db: Database, resource_id: int) -> list[str]:
    """Read a resource's finalizers ([] when it does not exist)."""
    row = await db.fetchone("SELECT finalizers FROM resources WHERE id = ?", (resource_id,))
    if row is None:
        return []
    return list(json.loads(row[0]))


async def history(db: Database, resource_id: int, limit: int) -> list[sqlite3.Row]:
    """Read a resource's newest history entries first."""
    return await db.fetchall(
        "SELECT * FROM reconciliation_history WHERE resource_id = ? ORDER BY id DESC LIMIT ?",
        (resource_id, limit),
    )
