"""The ReconcilerContext a plugin is given: the daemon's side of the contract.

Each plugin gets its own context, scoped to the resource types it owns: it can claim due
work and change status, conditions, finalizers and outputs of those resources, and
nothing else. Every method is one write unit (no8sd.core.changes), so a status, its
standard conditions, its next due time and its event always change together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from no8sd import jsoncodec, lifecycle
from no8sd.core import changes
from no8sd.core.hub import Hub
from no8sd.core.views import resource_plugin, resource_rest
from no8sd.core.watch import Cursor
from no8sd.plugins.reconciler import (
    ReconcilerContext,
    ReconcileResult,
    ResourceRecord,
    WatchEvent,
)
from no8sd.store import resources as store
from no8sd.store.db import Database, Tx
from no8sd.timeutil import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from no8sd.core import Core
    from no8sd.metrics import Metrics

log = logging.getLogger(__name__)

MAX_FETCH = 1000


@dataclass
class PluginServices:
    """What the host hands every context: the store, the hub, the rules and the clock."""

    db: Database
    hub: Hub
    rules: lifecycle.Scheduling = field(default_factory=lifecycle.Scheduling)
    history_limit: int = 100
    clock: Clock = SYSTEM_CLOCK
    get_action_plugin: Callable[[str], Awaitable[Any]] | None = None
    get_secret_store: Callable[[], Awaitable[Any]] | None = None
    core: Core | None = None  # reads of other resources, patches and watching go through it
    metrics: Metrics | None = None  # None: metrics are off


class PluginContext(ReconcilerContext):
    """The context of one reconciler plugin."""

    def __init__(self, services: PluginServices, plugin_name: str, resource_types: list[str],
                 shutdown_event: asyncio.Event) -> None:
        self._services = services
        self._scope = frozenset(resource_types)
        self._types = list(resource_types)
        self.plugin_name = plugin_name
        self.shutdown_event = shutdown_event
        self.event_bus = None  # upstream attribute; events reach plugins as wake-ups instead
        self.last_activity: float | None = None
        self._in_flight: dict[int, float] = {}  # resource id -> monotonic time it was claimed

    @property
    def _clock(self) -> Clock:
        return self._services.clock

    # ---- the upstream methods --------------------------------------------------------

    async def get_resources_needing_reconciliation(
        self, resource_type_names: list[str] | None = None, limit: int = 10
    ) -> list[ResourceRecord]:
        """Hand out due resources of this plugin's types, each leased to the caller."""
        types = self._wanted_types(resource_type_names)
        limit = max(0, min(int(limit), MAX_FETCH))
        return await self._claim(types, limit, frozenset(), limit // 4)

    async def update_status(self, resource_id: int, status: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set the phase; the standard conditions and the next due time follow from it."""
        status = getattr(status, "value", status)
        if status not in lifecycle.STATUSES:
            raise ValueError(f"'{status}' is not a valid status; use one of "
                             f"{', '.join(lifecycle.STATUSES)}")
        if status == lifecycle.DELETING:
            raise ValueError("status 'deleting' is set by the daemon when a resource is deleted")
        await self._write(changes.set_status, resource_id, status=status, message=message,
                          observed_generation=_opt_int(observed_generation),
                          now=self._clock.now(), rules=self._services.rules)

    async def set_condition(self, resource_id: int, condition_type: str, status: str,
                            reason: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set one named condition; lastTransitionTime moves only when its status changes."""
        if status not in lifecycle.CONDITION_STATUSES:
            raise ValueError(f"condition status must be one of "
                             f"{', '.join(lifecycle.CONDITION_STATUSES)}, not {status!r}")
        if condition_type in lifecycle.STANDARD_CONDITIONS:
            log.debug("%s sets standard condition %s itself", self.plugin_name, condition_type)
        await self._write(changes.set_condition, resource_id, ctype=str(condition_type),
                          status=status, reason=str(reason), message=str(message or ""),
                          observed_generation=_opt_int(observed_generation),
                          now=self._clock.now())

    async def record_reconciliation(self, resource_id: int, result: ReconcileResult,
                                    duration_seconds: float | None = None,
                                    trigger_reason: str | None = None,
                                    drift_detected: bool = False) -> None:
        """Write a history entry; `result.requeue_after` sets the next due time."""
        success, message = _outcome(result)
        args = self._record_args(result, duration_seconds, trigger_reason, drift_detected)
        await self._write(changes.record, resource_id, success=success, message=message,
                          **args)
        self._finished(resource_id, success, args)

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
        secret: str = await (await getter()).get_secret(key)
        return secret

    async def add_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Add a finalizer if it is not there yet."""
        await self._write(changes.add_finalizer, resource_id, str(finalizer), self._clock.now())

    async def remove_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Remove a finalizer (every occurrence)."""
        await self._write(changes.remove_finalizer, resource_id, str(finalizer),
                          self.plugin_name, self._clock.now())

    async def get_finalizers(self, resource_id: int) -> list[str]:
        """List a resource's finalizers ([] if it no longer exists)."""
        return await store.finalizers(self._services.db, int(resource_id))

    async def hard_delete_resource(self, resource_id: int) -> bool:
        """Remove a deleting resource with no finalizers left; False otherwise."""
        return bool(await self._write(changes.hard_delete, resource_id, self._clock.now()))

    async def update_outputs(self, resource_id: int, outputs: dict[str, Any]) -> None:
        """Replace the resource's outputs (shown at /outputs and on the record)."""
        if not isinstance(outputs, dict):
            raise TypeError("outputs must be a dict")
        await self._write(changes.set_outputs, resource_id, dict(outputs), self._clock.now())

    # ---- reading and composing resources ----------------------------------------------

    @property
    def _core(self) -> Core:
        core = self._services.core
        if core is None:
            raise RuntimeError("this context was built without the core")
        return core

    @property
    def actor(self) -> str:
        """Who this plugin's changes are made by, in events and history."""
        return f"reconciler:{self.plugin_name}"

    async def get_resource(self, resource_id: int) -> dict[str, Any] | None:
        """Any resource by id, as the REST API shows it; None if there is none."""
        found = await self._core.resources.find(int(resource_id))
        return resource_rest(found) if found is not None else None

    async def get_resource_by_name(self, resource_type: str, name: str,
                                   version: str | None = None) -> dict[str, Any] | None:
        """A resource by type and name (and version), or None."""
        found = await store.find_by_name(self._services.db, str(resource_type), version,
                                         str(name))
        return resource_rest(found) if found is not None else None

    async def list_resources(self, resource_type: str | None = None,
                             version: str | None = None, status: str | None = None,
                             where: dict[str, Any] | None = None,
                             limit: int = 100) -> list[dict[str, Any]]:
        """Resources in id order (see the contract for `where`), as the REST API shows them."""
        if where is not None and not isinstance(where, dict):
            raise ValueError("where must be a dict of dotted paths to values")
        limit = max(0, min(int(limit), MAX_FETCH))
        found = await self._core.resources.query(type_name=resource_type, version=version,
                                                 status=status, where=where, limit=limit)
        return [resource_rest(r) for r in found]

    async def patch_metadata(self, resource_id: int, patch: dict[str, Any]) -> None:
        """Merge-patch a resource's metadata (no new generation)."""
        await self._patch(resource_id, "metadata", patch)

    async def patch_spec(self, resource_id: int, patch: dict[str, Any]) -> None:
        """Merge-patch a resource's spec (validated, admission, a new generation)."""
        await self._patch(resource_id, "spec", patch)

    async def _patch(self, resource_id: int, field_name: str, patch: dict[str, Any]) -> None:
        if not isinstance(patch, dict):
            raise TypeError(f"a {field_name} patch must be a dict")
        found = await self._core.resources.find(int(resource_id))
        if found is not None and found.resource_type_name not in self._scope:
            raise PermissionError(f"resource {resource_id} is of type "
                                  f"{found.resource_type_name}, which reconciler "
                                  f"'{self.plugin_name}' does not own")
        self.last_activity = self._clock.now()
        await self._core.resources.patch(int(resource_id), {field_name: patch},
                                         actor=self.actor)

    async def watch(self, resource_types: list[str] | None = None,
                    after_event_id: int | None = None) -> AsyncIterator[WatchEvent]:
        """Follow committed events (see the contract); ends at shutdown."""
        async for event in follow(self._core, self.shutdown_event, resource_types,
                                  after_event_id):
            yield event

    # ---- the standard loop's building blocks -----------------------------------------

    @property
    def reconcile_timeout(self) -> float:
        """Seconds one reconcile may take (the daemon's --reconcile-timeout)."""
        return self._services.rules.reconcile_timeout

    async def claim(self, limit: int, *, exclude: frozenset[int] = frozenset(),
                    routine_slots: int = 0) -> list[ResourceRecord]:
        """Hand out up to `limit` due resources of this plugin's types."""
        return await self._claim(self._types, max(0, int(limit)), frozenset(exclude),
                                 routine_slots)

    async def finish_reconcile(self, resource: ResourceRecord, result: ReconcileResult, *,
                               duration_seconds: float, errored: bool = False) -> None:
        """Record one reconcile of a claimed resource (see the contract), as one change."""
        success, message = _outcome(result)
        args = self._record_args(result, duration_seconds, None, False)
        # A finished deletion releases the finalizer and may remove the resource: that must
        # not be lost. Any other outcome is repeated by the next reconcile if it is.
        releases = success and resource["status"] == "deleting"
        await self._write_as(releases, changes.finish, resource["id"], success=success,
                             message=message, errored=errored, plugin=self.plugin_name,
                             record_args=args)
        self._finished(resource["id"], success and not errored, args)

    def in_flight(self) -> tuple[int, float]:
        """(reconciles running now, seconds the longest of them has run). A claim not
        finished within the reconcile timeout has lost its lease and no longer counts."""
        now = time.monotonic()
        expired = now - self.reconcile_timeout
        for rid in [rid for rid, at in self._in_flight.items() if at < expired]:
            del self._in_flight[rid]
        oldest = min(self._in_flight.values(), default=now)
        return len(self._in_flight), now - oldest

    def _finished(self, resource_id: Any, success: bool, args: dict[str, Any]) -> None:
        started = self._in_flight.pop(int(resource_id), None)
        metrics = self._services.metrics
        if metrics is None:
            return
        seconds = args["duration_seconds"]
        if seconds is None and started is not None:
            seconds = time.monotonic() - started
        metrics.observe_reconcile(self.plugin_name, success=success,
                                  requeue_after=args["requeue_after"] is not None,
                                  seconds=seconds)

    async def seconds_until_due(self) -> float | None:
        """Seconds until this plugin's next resource is due (0 when one is due now)."""
        due = await store.next_due(self._services.db, self._types,
                                   (lifecycle.URGENT, lifecycle.ROUTINE))
        return None if due is None else max(0.0, due - self._clock.now())

    @contextlib.contextmanager
    def work_doorbell(self) -> Iterator[asyncio.Event]:
        """An event set whenever work of this plugin's types becomes due now."""
        bell = asyncio.Event()
        self._services.hub.add_waker(self._types, bell)
        try:
            yield bell
        finally:
            self._services.hub.remove_waker(self._types, bell)

    # ---- plumbing --------------------------------------------------------------------

    async def _claim(self, types: list[str], limit: int, exclude: frozenset[int],
                     routine_slots: int) -> list[ResourceRecord]:
        if not types or limit <= 0:
            return []
        self.last_activity = self._clock.now()
        waited: list[float] = []
        claimed = await self._services.db.write_as(
            self.actor, changes.claim, durable=False, types=types, limit=limit,
            exclude=exclude,
            now=self._clock.now(),
            rules=self._services.rules, routine_slots=routine_slots, waited=waited)
        at = time.monotonic()
        for r in claimed:
            self._in_flight[r.id] = at
        if self._services.metrics is not None:
            self._services.metrics.observe_claim(self.plugin_name, waited)
        return [resource_plugin(r) for r in claimed]  # type: ignore[misc]

    def _wanted_types(self, names: list[str] | str | None) -> list[str]:
        if names is None:
            return self._types
        if isinstance(names, str):  # a plugin passing one name instead of a list
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
            "now": self._clock.now(),
            "rules": self._services.rules,
        }

    async def _write(self, unit: Callable[..., Any], resource_id: int, *args: Any,
                     **kwargs: Any) -> Any:
        """Write durably, as the upstream methods always have: the plugin may read its own
        write at once. Only the standard loop's claim and finish (which nobody reads back
        before the next claim) are answered before their commit reaches the disk."""
        return await self._write_as(True, unit, resource_id, *args, **kwargs)

    async def _write_as(self, durable: bool, unit: Callable[..., Any], resource_id: int,
                        *args: Any, **kwargs: Any) -> Any:
        self.last_activity = self._clock.now()
        return await self._services.db.write_as(
            self.actor, _scoped, self._scope, self.plugin_name, unit, int(resource_id), args,
            kwargs, durable=durable)


async def follow(core: Core, shutdown: asyncio.Event, resource_types: list[str] | None,
                 after_event_id: int | None) -> AsyncIterator[WatchEvent]:
    """Committed events (of `resource_types`, or all) after `after_event_id` (or from now),
    as plugins see them, until `shutdown` is set; a GAP first when the resume point is gone."""
    types = [resource_types] if isinstance(resource_types, str) else resource_types
    with Cursor(core, None if after_event_id is None else int(after_event_id),
                resource_types=types) as cursor:
        gap = await cursor.gap()
        if gap is not None:
            yield WatchEvent(id=gap.resume_after, event_type="GAP", resource_id=None,
                             resource_name=None, resource_type_name=None,
                             resource_type_version=None, resource_data=None, timestamp=None,
                             actor=None)
        while not shutdown.is_set():
            for event in await cursor.batch():
                data = jsoncodec.loads(event.data)
                yield WatchEvent(id=event.id, event_type=event.event_type,
                                 resource_id=event.resource_id,
                                 resource_name=data.get("resource_name"),
                                 resource_type_name=event.resource_type_name,
                                 resource_type_version=event.resource_type_version,
                                 resource_data=data.get("resource_data"),
                                 timestamp=data.get("timestamp"), actor=data.get("actor"))
            stop = asyncio.ensure_future(shutdown.wait())
            more = asyncio.ensure_future(cursor.wait())
            try:
                await asyncio.wait((stop, more), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                more.cancel()


def _outcome(result: ReconcileResult) -> tuple[bool, str]:
    return (bool(getattr(result, "success", False)),
            str(getattr(result, "message", "") or ""))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _scoped(tx: Tx, scope: frozenset[str], plugin: str, unit: Callable[..., Any],
            resource_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run `unit` only if the resource belongs to one of the plugin's types."""
    type_name = changes.type_of(tx, resource_id)
    if type_name is not None and type_name not in scope:
        raise PermissionError(f"resource {resource_id} is of type {type_name}, which "
                              f"reconciler '{plugin}' does not own")
    return unit(tx, resource_id, *args, **kwargs)
