"""The rules of a resource's life: phases, standard conditions and scheduling.

Pure functions only: no I/O, no clock reads (callers pass `now`), no imports from the
rest of no8sd. Each `on_*`/`after_*` rule takes a resource's current state and answers
with the fields that change; the write units in no8sd.core.changes apply those answers
inside one transaction, so a status, its conditions and its next due time always change
together, and the store itself decides nothing.

Scheduling in one column: `next_reconcile_time` (NULL = nothing due). `due_class`
says how urgent the due work is, so fresh intent (create, spec change, trigger, delete)
is never queued behind a backlog of routine re-checks (drift, retries, lease expiry).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final, Protocol

PENDING: Final = "pending"
RECONCILING: Final = "reconciling"
READY: Final = "ready"
FAILED: Final = "failed"
DELETING: Final = "deleting"
STATUSES: Final = (PENDING, RECONCILING, READY, FAILED, DELETING)

URGENT: Final = 0  # due_class for create / spec change / trigger / delete
ROUTINE: Final = 1  # due_class for drift re-checks, retries and expired leases

STANDARD_CONDITIONS: Final = ("Ready", "Reconciling", "Degraded")
CONDITION_STATUSES: Final = ("True", "False", "Unknown")


@dataclass(frozen=True)
class Scheduling:
    """Timing rules; every value is in seconds."""

    drift_interval: float = 300.0
    backoff_base: float = 10.0
    backoff_factor: float = 2.0
    backoff_max: float = 600.0
    reconcile_timeout: float = 300.0


def backoff_delay(retry_count: int, rules: Scheduling, rng: random.Random | None = None) -> float:
    """Return the delay before retry number `retry_count + 1`, jittered and never above the cap."""
    exponent = min(retry_count, 64)  # keeps the power finite; the cap applies long before this
    delay = min(rules.backoff_max, rules.backoff_base * rules.backoff_factor**exponent)
    # Jitter downwards only (80-100 %), so the documented cap is a real maximum and
    # resources failing together do not retry in lockstep.
    return delay * (0.8 + 0.2 * (rng or random).random())


def standard_conditions(status: str, message: str) -> list[tuple[str, str, str, str]]:
    """Return (type, status, reason, message) for the standard conditions of a phase."""
    if status == RECONCILING:
        return [
            ("Ready", "Unknown", "ReconcileStarted", "Reconciliation in progress"),
            ("Reconciling", "True", "ReconcileStarted", "Reconciliation has started"),
        ]
    if status == READY:
        return [
            ("Ready", "True", "ReconcileSuccess", "Resource reconciled successfully"),
            ("Reconciling", "False", "ReconcileComplete", "Reconciliation completed"),
            ("Degraded", "False", "NoErrors", ""),
        ]
    if status == FAILED:
        text = message or "Reconciliation failed"
        return [
            ("Ready", "False", "ReconcileFailed", text),
            ("Reconciling", "False", "ReconcileFailed", ""),
            ("Degraded", "True", "ReconcileFailed", text),
        ]
    if status == DELETING:
        return [
            ("Ready", "Unknown", "Deleting", "Resource is being deleted"),
            ("Reconciling", "False", "Deleting", "Resource is being deleted"),
        ]
    return []


def set_condition(
    conditions: list[dict[str, Any]],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    observed_generation: int,
    now_iso: str,
) -> list[dict[str, Any]]:
    """Return a new condition list with one condition set.

    `lastTransitionTime` moves only when the condition's status changes. The standard
    conditions come first in a fixed order, the plugin's own follow in the order they
    were first set, so the list reads the same way on every GET.
    """
    previous = next((c for c in conditions if c.get("type") == ctype), None)
    changed = previous is None or previous.get("status") != status
    entry = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": (now_iso if changed or previous is None
                               else previous.get("lastTransitionTime", now_iso)),
        "observedGeneration": observed_generation,
    }
    result = [entry if c.get("type") == ctype else c for c in conditions]
    if previous is None:
        result.append(entry)
    return sort_conditions(result)


def sort_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order the standard conditions first (Ready, Reconciling, Degraded), others after."""
    rank = {name: i for i, name in enumerate(STANDARD_CONDITIONS)}
    indexed = list(enumerate(conditions))
    indexed.sort(key=lambda pair: (rank.get(str(pair[1].get("type")), len(rank)), pair[0]))
    return [c for _, c in indexed]


def apply_phase_conditions(
    conditions: list[dict[str, Any]],
    status: str,
    message: str,
    observed_generation: int,
    now_iso: str,
) -> list[dict[str, Any]]:
    """Apply the standard conditions that a phase change implies."""
    for ctype, cstatus, reason, cmessage in standard_conditions(status, message):
        conditions = set_condition(
            conditions, ctype, cstatus, reason, cmessage, observed_generation, now_iso
        )
    return conditions


class State(Protocol):
    """The fields of a resource that the rules read (no8sd.store.rows.Resource has them)."""

    @property
    def status(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def observed_generation(self) -> int: ...
    @property
    def retry_count(self) -> int: ...
    @property
    def conditions(self) -> list[dict[str, Any]]: ...
    @property
    def finalizers(self) -> list[str]: ...
    @property
    def next_reconcile_time(self) -> float | None: ...
    @property
    def due_class(self) -> int: ...
    @property
    def wanted_seq(self) -> int: ...
    @property
    def claimed_seq(self) -> int: ...
    @property
    def claimed_generation(self) -> int | None: ...
    @property
    def last_reconcile_time(self) -> float | None: ...
    @property
    def deleted_at(self) -> float | None: ...
    @property
    def leased(self) -> int: ...
    @property
    def wanted_by(self) -> str | None: ...


@dataclass(frozen=True)
class Due:
    """When a resource is next due, and how urgent that work is."""

    at: float | None
    due_class: int


def due_after_status(
    status: str,
    *,
    now: float,
    retry_count: int,
    dirty: bool,
    rules: Scheduling,
    rng: random.Random | None = None,
) -> tuple[Due, int]:
    """Return (next due, new retry_count) after a status write.

    `dirty` means new intent (a spec change, a trigger) arrived after the current
    reconcile was handed out; that work is due now whatever the outcome.
    """
    if status == READY:
        due = Due(now + rules.drift_interval, ROUTINE)
        retry_count = 0
    elif status == FAILED:
        due = Due(now + backoff_delay(retry_count, rules, rng), ROUTINE)
        retry_count += 1
    elif status == RECONCILING:
        # A lease: if the plugin dies mid-reconcile, the resource comes back after the timeout.
        due = Due(now + rules.reconcile_timeout, ROUTINE)
    else:  # pending: somebody asked for a fresh start
        due = Due(now, URGENT)
    if dirty and status != RECONCILING:
        due = Due(now, URGENT)
    return due, retry_count


def trigger_reason(
    *, status: str, generation: int, observed_generation: int, last_reconcile_time: float | None,
    due_class: int
) -> str:
    """Name why a resource is being handed out for reconciliation."""
    if status == DELETING:
        return "deletion"
    if last_reconcile_time is None and observed_generation == 0:
        return "initial"
    if generation > observed_generation:
        return "spec_change"
    if status == FAILED:
        return "retry"
    if due_class == URGENT:
        return "manual"
    return "scheduled"


# ---- the rules for each change, as field updates -----------------------------------


def due_now(r: State, now: float) -> dict[str, Any]:
    """Fresh intent (a create, spec change, trigger or delete): due now, urgent, and
    remembered as wanted, so a reconcile already running when it arrives is followed by
    another."""
    return {"next_reconcile_time": now, "due_class": URGENT, "wanted_seq": r.wanted_seq + 1}


def on_update(r: State, changed: dict[str, Any], now: float) -> dict[str, Any]:
    """Fields after spec / plugin_config / metadata changed (`changed` holds only real
    changes). A spec or plugin_config change is a new generation: pending, due now,
    retries reset. A metadata-only edit is not."""
    fields: dict[str, Any] = dict(changed, updated_at=now)
    if "spec" in changed or "plugin_config" in changed:
        fields.update(generation=r.generation + 1, status=PENDING, retry_count=0)
        fields.update(due_now(r, now))
    return fields


def on_delete(r: State, now: float, now_iso: str) -> dict[str, Any]:
    """Fields when deletion starts: deleting, with its conditions; due now while
    finalizers remain (the owner must clean up)."""
    fields: dict[str, Any] = {
        "status": DELETING, "status_message": "Resource is being deleted", "deleted_at": now,
        "updated_at": now, "retry_count": 0,
        "conditions": apply_phase_conditions(r.conditions, DELETING, "", r.generation, now_iso),
    }
    if r.finalizers:
        fields.update(due_now(r, now))
    return fields


def on_claim(r: State, now: float, rules: Scheduling) -> dict[str, Any]:
    """Fields when a resource is handed to its reconciler: leased for the reconcile
    timeout, with what was wanted and why it is being reconciled."""
    reason = trigger_reason(status=r.status, generation=r.generation,
                            observed_generation=r.observed_generation,
                            last_reconcile_time=r.last_reconcile_time, due_class=r.due_class)
    return {"next_reconcile_time": now + rules.reconcile_timeout, "due_class": ROUTINE,
            "claimed_seq": r.wanted_seq, "claimed_generation": r.generation,
            "claim_reason": reason, "claimed_by": r.wanted_by, "leased": 1}


def reconciled_generation(r: State) -> int:
    """The generation the current (or last) reconcile was handed."""
    return r.claimed_generation or r.generation


def after_status(r: State, status: str, message: str | None, observed_generation: int | None,
                 *, now: float, now_iso: str, rules: Scheduling,
                 rng: random.Random | None = None) -> dict[str, Any]:
    """Fields after a reconciler reports a phase: conditions and next due time follow."""
    dirty = r.wanted_seq > r.claimed_seq
    if observed_generation is None and status == READY:
        observed_generation = reconciled_generation(r)
    generation = observed_generation if observed_generation is not None else r.generation
    fields: dict[str, Any] = {"status_message": message or None, "updated_at": now}
    if status != RECONCILING:
        fields["leased"] = 0  # the reconcile reported its outcome
    if observed_generation is not None:
        fields["observed_generation"] = observed_generation
    if r.deleted_at is not None:
        # Deletion is final: the phase stays `deleting`; a failure still backs off.
        if status == FAILED:
            fields["conditions"] = apply_phase_conditions(r.conditions, status, message or "",
                                                          generation, now_iso)
            if r.next_reconcile_time is not None:
                due, retries = due_after_status(status, now=now, retry_count=r.retry_count,
                                                dirty=False, rules=rules, rng=rng)
                fields.update(next_reconcile_time=due.at, due_class=due.due_class,
                              retry_count=retries)
    elif status == READY and generation < r.generation:
        # Ready for a spec that has since changed: the new generation is still pending.
        fields.update(next_reconcile_time=now, due_class=URGENT, last_reconcile_time=now)
    else:
        due, retries = due_after_status(status, now=now, retry_count=r.retry_count, dirty=dirty,
                                        rules=rules, rng=rng)
        fields.update(
            status=status,
            conditions=apply_phase_conditions(r.conditions, status, message or "", generation,
                                              now_iso),
            next_reconcile_time=due.at, due_class=due.due_class, retry_count=retries)
        if status == READY:
            fields["last_reconcile_time"] = now
    return fields


def after_record(r: State, *, success: bool, requeue_after: float | None, now: float,
                 rules: Scheduling, rng: random.Random | None = None) -> dict[str, Any]:
    """Fields after a reconcile is recorded in the history: work that arrived meanwhile
    is due now; otherwise `requeue_after` sets the next due time; a failed deletion
    backs off."""
    fields: dict[str, Any] = {"leased": 0} if r.leased else {}
    if r.next_reconcile_time is None:
        pass  # nothing further is wanted (e.g. the owner already released a deleting resource)
    elif r.wanted_seq > r.claimed_seq:
        fields.update(next_reconcile_time=now, due_class=URGENT)
    elif requeue_after is not None:
        fields.update(next_reconcile_time=now + max(0.0, float(requeue_after)),
                      due_class=ROUTINE)
    elif not success and r.deleted_at is not None:
        due, retries = due_after_status(FAILED, now=now, retry_count=r.retry_count, dirty=False,
                                        rules=rules, rng=rng)
        fields.update(next_reconcile_time=due.at, due_class=due.due_class, retry_count=retries)
    return fields


def outcome_reported(r: State) -> bool:
    """Whether the reconciler reported ready or failed itself since the resource was
    handed out (the lease ends with a reported outcome)."""
    return not r.leased


def edited_finalizers(current: list[str], add: list[str], remove: list[str]) -> list[str]:
    """Add, then remove finalizers (order kept, no duplicates added)."""
    finalizers = list(current)
    for name in add:
        if name not in finalizers:
            finalizers.append(name)
    gone = set(remove)
    return [f for f in finalizers if f not in gone]


def on_finalizers(r: State, finalizers: list[str], owner: str | None,
                  now: float) -> dict[str, Any]:
    """Fields after the finalizers were edited: giving a deleting resource back to its
    owner means the owner has work again."""
    fields: dict[str, Any] = {"finalizers": finalizers, "updated_at": now}
    if r.deleted_at is not None and owner in finalizers and owner not in r.finalizers:
        fields.update(due_now(r, now))
    return fields


def on_release(r: State, finalizer: str, owner: str, now: float) -> dict[str, Any]:
    """Fields after a finalizer is removed; the owner releasing a deleting resource ends
    its due work (what remains is for whoever holds the other finalizers)."""
    fields: dict[str, Any] = {"finalizers": [f for f in r.finalizers if f != finalizer],
                              "updated_at": now}
    if r.deleted_at is not None and finalizer == owner:
        fields["next_reconcile_time"] = None
    return fields


def removable(r: State) -> bool:
    """A deleting resource with no finalizers left is removed."""
    return r.deleted_at is not None and not r.finalizers
