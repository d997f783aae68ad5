"""ReconcilerContext: a plugin's only handle on the daemon.

Each plugin gets its own context, scoped to the resource types it owns: it can read
due work and change status, conditions, finalizers and outputs of those resources,
and nothing else. Every method is one write unit in the store, so a status, its
standard conditions, its next due time and its event always change together.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from no8sd import lifecycle
from no8sd.events import Hub
from no8sd.plugins.base import ReconcileResult
from no8sd.records import resource_plugin
from no8sd.store import resources as store
from no8sd.store.db import Database, Tx
from no8sd.timeutil import now

log = logging.getLogger(__name__)

MAX_FETCH = 1000


@dataclass
class PluginServices:
    """What the host hands every context: the store, the hub and the rules."""

    db: Database
    hub: Hub
    rules: lifecycle.Scheduling = field(default_factory=lifecycle.Scheduling)
    history_limit: int = 100
    get_action_plugin: Callable[[str], Any] | None = None
    get_secret_store: Callable[[], Any] | None = None


@dataclass
class _Reconcile:
    """Per-reconcile notes kept in a contextvar by BaseReconciler."""

    resource_id: int
    status_written: bool = False


_current: contextvars.ContextVar[_Reconcile | None] = contextvars.ContextVar(
    "no8sd_current_reconcile", default=None
)


class ReconcilerContext:
    """The API a reconciler plugin uses to read due work and report what it did."""

    def __init__(self, services: PluginServices, plugin_name: str, resource_types: list[str],
                 shutdown_event: asyncio.Event) -> None:
        self._services = services
        self._scope = frozenset(resource_types)
        self._types = list(resource_types)
        self.plugin_name = plugin_name
        self.shutdown_event = shutdown_event
        self.event_bus = None  # upstream attribute; events reach plugins as wake-ups instead
        self.last_activity: float | None = None

    # ---- the upstream methods --------------------------------------------------------

    async def get_resources_needing_reconciliation(
        self, resource_type_names: list[str] | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Hand out due resources of this plugin's types, each leased to the caller."""
        types = self._wanted_types(resource_type_names)
        limit = max(0, min(int(limit), MAX_FETCH))
        return await self._claim(types, limit, frozenset(), routine_slots=limit // 4)

    async def update_status(self, resource_id: int, status: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set the phase; the standard conditions and the next due time follow from it."""
        status = getattr(status, "value", status)
        if status not in lifecycle.STATUSES:
            raise ValueError(f"'{status}' is not a valid status; use one of "
                             f"{', '.join(lifecycle.STATUSES)}")
        if status == lifecycle.DELETING:
            raise ValueError("status 'deleting' is set by the daemon when a resource is deleted")
        await self._write(store.set_status, resource_id, status=status, message=message,
                          observed_generation=_opt_int(observed_generation), now=now(),
                          rules=self._services.rules)
        current = _current.get()
        if current is not None and current.resource_id == resource_id:
            current.status_written = True

    async def set_condition(self, resource_id: int, condition_type: str, status: str,
                            reason: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set one named condition; lastTransitionTime moves only when its status changes."""
        if status not in lifecycle.CONDITION_STATUSES:
            raise ValueError(f"condition status must be one of "
                             f"{', '.join(lifecycle.CONDITION_STATUSES)}, not {status!r}")
        if condition_type in lifecycle.STANDARD_CONDITIONS:
            log.debug("%s sets standard condition %s itself", self.plugin_name, condition_type)
        await self._write(store.set_condition, resource_id, ctype=str(condition_type),
                          status=status, reason=str(reason), message=str(message or ""),
                          observed_generation=_opt_int(observed_generation), now=now())

    async def record_reconciliation(self, resource_id: int, result: ReconcileResult,
                                    duration_seconds: float | None = None,
                                    trigger_reason: str | None = None,
                                    drift_detected: bool = False) -> None:
        """Write a history entry; `result.requeue_after` sets the next due time."""
        await self._write(store.record, resource_id, **self._record_args(
            result, duration_seconds, trigger_reason, drift_detected))

    async def get_action_plugin(self, name: str) -> Any:
        """Return the named action plugin, initialised with its configuration."""
        getter = self._services.get_action_plugin
        if getter is None:
            raise ValueError(f"Unknown action plugin: {name}. Available plugins: none")
        return await getter(name)

    async def get_secret(self, key: str) -> str:
        """Read a secret from the configured secret store (KeyError when missing)."""
        getter = self._services.get_secret_store
        if getter is None:
            raise KeyError(f"Secret '{key}' not found: no secret store is configured")
        return await (await getter()).get_secret(key)

    async def add_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Add a finalizer if it is not there yet."""
        await self._write(store.add_finalizer, resource_id, str(finalizer), now())

    async def remove_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Remove a finalizer (every occurrence)."""
        await self._write(store.remove_finalizer, resource_id, str(finalizer), self.plugin_name,
                          now())

    async def get_finalizers(self, resource_id: int) -> list[str]:
        """List a resource's finalizers ([] if it no longer exists)."""
        return await store.get_finalizers(self._services.db, int(resource_id))

    async def hard_delete_resource(self, resource_id: int) -> bool:
        """Remove a deleting resource with no finalizers left; False otherwise."""
        return bool(await self._write(store.hard_delete, resource_id, now()))

    async def update_outputs(self, resource_id: int, outputs: dict[str, Any]) -> None:
        """Replace the resource's outputs (shown at /outputs and on the record)."""
        if not isinstance(outputs, dict):
            raise TypeError("outputs must be a dict")
        await self._write(store.set_outputs, resource_id, dict(outputs), now())

    # ---- used by BaseReconciler -------------------------------------------------------

    async def _claim(self, types: list[str], limit: int, exclude: frozenset[int], *,
                     routine_slots: int) -> list[dict[str, Any]]:
        if not types or limit <= 0:
            return []
        self.last_activity = now()
        claimed = await self._services.db.write(
            _claim_unit, types, limit, exclude, routine_slots, self._services.rules)
        return [resource_plugin(r) for r in claimed]

    async def _finish(self, resource: dict[str, Any], result: ReconcileResult, *,
                      status: str | None, duration_seconds: float, release: bool) -> None:
        """Write the final status (if the plugin did not), release a finished deletion and
        record history, as one change."""
        await self._write(
            _finish_unit, resource["id"], status, result.message, resource["generation"],
            release, self.plugin_name,
            self._record_args(result, duration_seconds, None, False),
        )

    async def _next_due(self) -> float | None:
        return await store.next_due(self._services.db, self._types)

    def _add_waker(self, waker: asyncio.Event) -> None:
        self._services.hub.add_waker(self._types, waker)

    def _remove_waker(self, waker: asyncio.Event) -> None:
        self._services.hub.remove_waker(self._types, waker)

    @staticmethod
    def _track(resource_id: int) -> _Reconcile:
        note = _Reconcile(resource_id)
        _current.set(note)
        return note

    # ---- plumbing --------------------------------------------------------------------

    def _wanted_types(self, names: list[str] | None) -> list[str]:
        if names is None:
            return self._types
        if isinstance(names, str):
            names = [names]
        foreign = [n for n in names if n not in self._scope]
        if foreign:
            log.warning("Reconciler '%s' asked for types it does not own: %s",
                        self.plugin_name, ", ".join(map(str, foreign)))
        return [n for n in self._types if n in set(names)]

    def _record_args(self, result: ReconcileResult, duration_seconds: float | None,
                     trigger_reason: str | None, drift_detected: bool) -> dict[str, Any]:
        requeue = getattr(result, "requeue_after", None)
        if requeue is not None and not (isinstance(requeue, int | float) and
                                        math.isfinite(requeue)):
            raise ValueError("requeue_after must be a number of seconds")
        return {
            "success": bool(getattr(result, "success", False)),
            "message": str(getattr(result, "message", "") or ""),
            "duration_seconds": None if duration_seconds is None else float(duration_seconds),
            "trigger_reason": trigger_reason,
            "drift_detected": bool(drift_detected),
            "requeue_after": requeue,
            "counts": (
                int(getattr(result, "resources_created", 0) or 0),
                int(getattr(result, "resources_updated", 0) or 0),
                int(getattr(result, "resources_deleted", 0) or 0),
            ),
            "history_limit": self._services.history_limit,
            "now": now(),
            "rules": self._services.rules,
        }

    async def _write(self, unit: Callable[..., Any], resource_id: int, *args: Any,
                     **kwargs: Any) -> Any:
        self.last_activity = now()
        return await self._services.db.write(
            _scoped, self._scope, self.plugin_name, unit, int(resource_id), args, kwargs)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _scoped(tx: Tx, scope: frozenset[str], plugin: str, unit: Callable[..., Any],
            resource_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run `unit` only if the resource belongs to one of the plugin's types."""
    type_name = store.type_of(tx, resource_id)
    if type_name is not None and type_name not in scope:
        raise PermissionError(f"resource {resource_id} is of type {type_name}, which "
                              f"reconciler '{plugin}' does not own")
    return unit(tx, resource_id, *args, **kwargs)


def _claim_unit(tx: Tx, types: list[str], limit: int, exclude: frozenset[int],
                routine_slots: int, rules: lifecycle.Scheduling) -> list[dict[str, Any]]:
    return store.claim_due(tx, types=types, limit=limit, exclude=exclude, now=now(), rules=rules,
                           routine_slots=routine_slots)


def _finish_unit(tx: Tx, resource_id: int, status: str | None, message: str, generation: int,
                 release: bool, plugin: str, record_args: dict[str, Any]) -> None:
    moment = record_args["now"]
    if status is not None:
        store.set_status(tx, resource_id, status=status, message=message,
                         observed_generation=generation if status == lifecycle.READY else None,
                         now=moment, rules=record_args["rules"])
    if release:
        store.remove_finalizer(tx, resource_id, plugin, plugin, moment)
        store.hard_delete(tx, resource_id, moment)
    store.record(tx, resource_id, **record_args)
