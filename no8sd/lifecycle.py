"""The rules of a resource's life: phases, standard conditions and scheduling.

Pure functions only: no I/O, no clock reads (callers pass `now`), no imports from the
rest of no8sd. The store calls these inside its write transactions so that a status,
its conditions and its next due time always change together.

Scheduling in one column: `next_reconcile_time` (NULL = nothing due). `due_class`
says how urgent the due work is, so fresh intent (create, spec change, trigger, delete)
is never queued behind a backlog of routine re-checks (drift, retries, lease expiry).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

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
        "lastTransitionTime": now_iso if changed else previous.get("lastTransitionTime", now_iso),
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
    indexed.sort(key=lambda pair: (rank.get(pair[1].get("type"), len(rank)), pair[0]))
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
