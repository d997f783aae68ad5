"""The write units for resources: every change to a resource is one of these.

A unit runs inside the single writer's transaction (no8sd.store.db). Each one loads the
row, asks no8sd.lifecycle what changes, saves that, and appends the event that announces
it, so no change can be half-made, unannounced or lost. The API's operations
(core.resources) and the plugins' contexts (host.context) both write through here.
"""

from __future__ import annotations

import json
import random
from typing import Any

from no8sd import lifecycle
from no8sd.core import views
from no8sd.errors import Conflict, NotFound
from no8sd.store import events
from no8sd.store import resources as store
from no8sd.store.db import Tx
from no8sd.store.rows import Resource, ResourceType, spec_hash
from no8sd.timeutil import iso

_rng = random.Random()


# ---- applying a decision ---------------------------------------------------------------


def _apply(tx: Tx, r: Resource, fields: dict[str, Any], now: float) -> Resource:
    """Save `fields`; work that became due now wakes the type's reconciler after commit.
    New intent remembers whose it is (`tx.actor`), for the history of the reconcile."""
    if "wanted_seq" in fields:
        fields = {**fields, "wanted_by": tx.actor}
    r = store.save(tx, r, **fields)
    due = fields.get("next_reconcile_time")
    if due is not None and due <= now:
        tx.wake.add(r.resource_type_name)
    return r


def _emit(tx: Tx, event_type: str, r: Resource, now: float) -> None:
    """Append the event for `r` as it stands; a resource is serialised once per state
    within a unit (a reconcile's MODIFIED and RECONCILED usually carry the same one)."""
    revision = tx.revisions.get(r.id, 0)
    rendered = tx.rendered.get(r.id)
    if rendered is None or rendered[0] != revision:
        rendered = tx.rendered[r.id] = (revision, views.dumps(views.resource_public(r)))
    events.append(tx, event_type, r,
                  views.event_data(event_type, r, now, rendered[1], tx.actor), now)


def _remove(tx: Tx, r: Resource, now: float) -> None:
    store.remove(tx, r)
    _emit(tx, events.REMOVED, r, now)


def _require(tx: Tx, resource_id: int) -> Resource:
    r = store.load(tx, resource_id)
    if r is None:
        raise NotFound("Resource not found")
    return r


def _same(a: Any, b: Any) -> bool:
    """Compare JSON values by their canonical text (so 1 and 1.0, True and 1 differ)."""
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def type_of(tx: Tx, resource_id: int) -> str | None:
    """A resource's type name inside a unit (None if it does not exist)."""
    r = store.load(tx, resource_id)
    return None if r is None else r.resource_type_name


# ---- what the API asks for ----------------------------------------------------------


def create(tx: Tx, *, resource_type: ResourceType, name: str, spec: dict[str, Any],
           plugin_config: dict[str, Any], metadata: dict[str, Any], action_plugin: str,
           finalizers: list[str], now: float) -> Resource:
    """Create a resource: pending, generation 1, due now; a taken name is a Conflict."""
    r = store.insert(tx, Resource(
        id=0, name=name, resource_type_id=resource_type.id,
        resource_type_name=resource_type.name, resource_type_version=resource_type.version,
        spec=spec, spec_hash=spec_hash(spec), plugin_config=plugin_config, metadata=metadata,
        action_plugin=action_plugin, finalizers=list(finalizers), created_at=now,
        updated_at=now, next_reconcile_time=now, due_class=lifecycle.URGENT,
        wanted_by=tx.actor))
    tx.wake.add(r.resource_type_name)
    _emit(tx, events.CREATED, r, now)
    return r


class Stale(Conflict):
    """The resource changed since the record a change was computed from was read."""

    def __init__(self) -> None:
        super().__init__("Resource changed meanwhile")


def update(tx: Tx, resource_id: int, changes: dict[str, Any], now: float, *,
           expect_updated_at: float | None = None) -> Resource:
    """Replace spec / plugin_config / metadata (see lifecycle.on_update); with
    `expect_updated_at`, only if the resource is still as it was then (else Stale)."""
    r = _require(tx, resource_id)
    if expect_updated_at is not None and r.updated_at != expect_updated_at:
        raise Stale()
    if r.deleted_at is not None:
        raise Conflict("Resource is being deleted")
    changed = {k: v for k, v in changes.items() if not _same(getattr(r, k), v)}
    if not changed:
        return r
    if "spec" in changed:
        changed["spec_hash"] = spec_hash(changed["spec"])
    r = _apply(tx, r, lifecycle.on_update(r, changed, now), now)
    _emit(tx, events.MODIFIED, r, now)
    return r


def delete(tx: Tx, resource_id: int, now: float) -> tuple[Resource, bool]:
    """Start deletion; return (resource, removed). Without finalizers the row goes at once."""
    r = _require(tx, resource_id)
    if r.deleted_at is not None:
        return r, False
    r = _apply(tx, r, lifecycle.on_delete(r, now, iso(now) or ""), now)
    _emit(tx, events.DELETED, r, now)
    if lifecycle.removable(r):
        _remove(tx, r, now)
        return r, True
    return r, False


def trigger(tx: Tx, resource_id: int, now: float) -> Resource:
    """Make a resource due now (a manual reconcile); its owner is woken after commit."""
    r = _require(tx, resource_id)
    return _apply(tx, r, lifecycle.due_now(r, now), now)


def edit_finalizers(tx: Tx, resource_id: int, add: list[str], remove: list[str],
                    owner: str | None, now: float) -> Resource | None:
    """Add, then remove finalizers; return None when that removed a deleting resource."""
    r = _require(tx, resource_id)
    finalizers = lifecycle.edited_finalizers(r.finalizers, add, remove)
    if r.deleted_at is not None and not finalizers:
        r = store.save(tx, r, finalizers=finalizers, updated_at=now)
        _remove(tx, r, now)
        return None
    if finalizers == r.finalizers:
        return r
    r = _apply(tx, r, lifecycle.on_finalizers(r, finalizers, owner, now), now)
    _emit(tx, events.MODIFIED, r, now)
    return r


def release_leases(tx: Tx, now: float) -> int:
    """Make every resource that was handed out when the daemon last stopped due now.

    Whoever held those leases is gone (a crash, a kill, a stop mid-reconcile), so waiting
    out the reconcile timeout would only delay the retry.
    """
    held = store.leased(tx)
    for resource_id, type_name in held:
        tx.touched.add(resource_id)
        tx.wake.add(type_name)
    store.release_all_leases(tx, due_at=now, due_class=lifecycle.URGENT)
    return len(held)


# ---- what a reconciler's context asks for -------------------------------------------


def claim(tx: Tx, *, types: list[str], limit: int, exclude: frozenset[int], now: float,
          rules: lifecycle.Scheduling, routine_slots: int = 0,
          waited: list[float] | None = None) -> list[Resource]:
    """Hand out up to `limit` due resources of `types`, each leased for the reconcile timeout.

    Urgent work comes first, but `routine_slots` are kept for routine work (when there is
    any), so a backlog of drift re-checks and retries keeps draining under a stream of
    fresh changes. `waited` gets how long each one handed out had been due (metrics).
    """
    if limit <= 0 or not types:
        return []
    reserve = min(max(routine_slots, 0), limit)
    urgent = store.due_ids(tx, types, lifecycle.URGENT, limit - reserve, exclude, now)
    routine = store.due_ids(tx, types, lifecycle.ROUTINE, limit - len(urgent), exclude, now)
    if len(urgent) + len(routine) < limit and len(urgent) == limit - reserve:
        # Routine work did not use its reserved slots: let more urgent work have them.
        urgent = store.due_ids(tx, types, lifecycle.URGENT, limit - len(routine), exclude, now)
    claimed = []
    for due, resource_id in urgent + routine:
        r = _require(tx, resource_id)
        claimed.append(store.save(tx, r, **lifecycle.on_claim(r, now, rules)))
        if waited is not None:
            waited.append(now - due)
    return claimed


def set_status(tx: Tx, resource_id: int, *, status: str, message: str | None,
               observed_generation: int | None, now: float,
               rules: lifecycle.Scheduling, announce: bool = True) -> Resource | None:
    """Write a phase with its standard conditions and next due time, as one change
    (announced with MODIFIED, unless the caller's own event will carry it)."""
    r = store.load(tx, resource_id)
    if r is None:
        return None
    fields = lifecycle.after_status(r, status, message, observed_generation, now=now,
                                    now_iso=iso(now) or "", rules=rules, rng=_rng)
    r = _apply(tx, r, fields, now)
    if announce:
        _emit(tx, events.MODIFIED, r, now)
    return r


def set_condition(tx: Tx, resource_id: int, *, ctype: str, status: str, reason: str,
                  message: str, observed_generation: int | None,
                  now: float) -> Resource | None:
    """Set one named condition; nothing is written when nothing would change."""
    r = store.load(tx, resource_id)
    if r is None:
        return None
    generation = (observed_generation if observed_generation is not None
                  else lifecycle.reconciled_generation(r))
    conditions = lifecycle.set_condition(r.conditions, ctype, status, reason, message,
                                         generation, iso(now) or "")
    if conditions == r.conditions:
        return r
    r = store.save(tx, r, conditions=conditions, updated_at=now)
    _emit(tx, events.MODIFIED, r, now)
    return r


def record(tx: Tx, resource_id: int, *, success: bool, message: str,
           duration_seconds: float | None, trigger_reason: str | None, drift_detected: bool,
           requeue_after: float | None, counts: tuple[int, int, int], history_limit: int,
           now: float, rules: lifecycle.Scheduling) -> Resource | None:
    """Write one history entry, honour requeue_after, and announce RECONCILED."""
    r = store.load(tx, resource_id)
    if r is None:
        return None  # removed while it was being reconciled: nothing left to record against
    store.add_history(tx, resource_id, generation=lifecycle.reconciled_generation(r),
                      success=success, message=message, counts=counts,
                      duration_seconds=duration_seconds,
                      trigger_reason=trigger_reason or r.claim_reason,
                      drift_detected=drift_detected, now=now, keep=history_limit,
                      triggered_by=r.claimed_by)
    fields = lifecycle.after_record(r, success=success, requeue_after=requeue_after, now=now,
                                    rules=rules, rng=_rng)
    r = _apply(tx, r, fields, now)
    _emit(tx, events.RECONCILED, r, now)
    return r


def finish(tx: Tx, resource_id: int, *, success: bool, message: str, errored: bool,
           plugin: str, record_args: dict[str, Any]) -> None:
    """The end of one reconcile run by BaseReconciler, as one change: the outcome status
    (unless the plugin reported one), a finished deletion's release, and the history. The
    status needs no event of its own: the RECONCILED event that follows carries it."""
    r = store.load(tx, resource_id)
    if r is None:
        return
    now = record_args["now"]
    if r.deleted_at is not None and success:
        remove_finalizer(tx, resource_id, plugin, plugin, now)
        hard_delete(tx, resource_id, now)
    elif errored or not lifecycle.outcome_reported(r):
        status = lifecycle.READY if success else lifecycle.FAILED
        set_status(tx, resource_id, status=status, message=message,
                   observed_generation=lifecycle.reconciled_generation(r) if success else None,
                   now=now, rules=record_args["rules"], announce=False)
    record(tx, resource_id, success=success, message=message, **record_args)


def add_finalizer(tx: Tx, resource_id: int, finalizer: str, now: float) -> bool:
    """Append a finalizer if absent; return whether the resource exists."""
    r = store.load(tx, resource_id)
    if r is None:
        return False
    if finalizer not in r.finalizers:
        r = store.save(tx, r, finalizers=[*r.finalizers, finalizer], updated_at=now)
        _emit(tx, events.MODIFIED, r, now)
    return True


def remove_finalizer(tx: Tx, resource_id: int, finalizer: str, owner: str, now: float) -> bool:
    """Drop every occurrence of a finalizer (see lifecycle.on_release)."""
    r = store.load(tx, resource_id)
    if r is None:
        return False
    if finalizer in r.finalizers:
        r = _apply(tx, r, lifecycle.on_release(r, finalizer, owner, now), now)
        _emit(tx, events.MODIFIED, r, now)
    return True


def hard_delete(tx: Tx, resource_id: int, now: float) -> bool:
    """Remove a deleting resource that has no finalizers left; otherwise do nothing."""
    r = store.load(tx, resource_id)
    if r is None or not lifecycle.removable(r):
        return False
    _remove(tx, r, now)
    return True


def merge_outputs(tx: Tx, resource_id: int, outputs: dict[str, Any], now: float) -> Resource:
    """Merge keys into a resource's outputs (PUT /outputs); a MODIFIED event if any changed."""
    r = _require(tx, resource_id)
    merged = {**r.outputs, **outputs}
    if not _same(r.outputs, merged):
        r = store.save(tx, r, outputs=merged, updated_at=now)
        _emit(tx, events.MODIFIED, r, now)
    return r


def set_outputs(tx: Tx, resource_id: int, outputs: dict[str, Any], now: float) -> bool:
    """Replace a resource's outputs; return whether the resource exists."""
    r = store.load(tx, resource_id)
    if r is None:
        return False
    if not _same(r.outputs, outputs):
        r = store.save(tx, r, outputs=outputs, updated_at=now)
        _emit(tx, events.MODIFIED, r, now)
    return True
