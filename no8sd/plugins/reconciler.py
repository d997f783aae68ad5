"""The reconciler plugin contract: what a plugin subclasses, what it is handed, what it returns.

Names and signatures of ReconcilerPlugin, ReconcileResult and the upstream methods of
ReconcilerContext follow the upstream plugin documentation exactly, so a plugin written
for no8s-operator runs here unmodified. This module is read by plugin authors to learn
the contract: it does no I/O and imports nothing of the daemon.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Optional, TypedDict

# The phases of a resource. The daemon sets DELETING itself; plugins report the others.
PENDING: Final = "pending"
RECONCILING: Final = "reconciling"
READY: Final = "ready"
FAILED: Final = "failed"
DELETING: Final = "deleting"


@dataclass
class ReconcileResult:
    """The outcome of one reconcile: like controller-runtime's ctrl.Result plus a message."""

    success: bool = False
    message: str = ""
    requeue_after: Optional[int] = None  # noqa: UP045 - the documented signature


class ResourceRecord(TypedDict):
    """A resource as a plugin sees it (times are aware UTC datetimes)."""

    id: int
    name: str
    resource_type_name: str
    resource_type_version: str
    action_plugin: str
    spec: dict[str, Any]
    plugin_config: dict[str, Any]
    metadata: dict[str, Any]
    status: str
    generation: int
    observed_generation: int
    status_message: str | None
    conditions: list[dict[str, Any]]
    finalizers: list[str]
    spec_hash: str
    outputs: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    last_reconcile_time: datetime | None
    next_reconcile_time: datetime | None
    retry_count: int


class WatchEvent(TypedDict):
    """A committed change, as `ReconcilerContext.watch` yields it: the same event, with the
    same id, as the SSE stream carries. `event_type` is CREATED, MODIFIED, DELETED,
    RECONCILED, REMOVED, or GAP (events after the resume point are gone: re-read what you
    follow, then carry on; `resource_data` is then None)."""

    id: int
    event_type: str
    resource_id: int | None
    resource_name: str | None
    resource_type_name: str | None
    resource_type_version: str | None
    resource_data: dict[str, Any] | None
    timestamp: str | None
    actor: str | None


class ReconcilerContext(abc.ABC):
    """A plugin's only handle on the daemon, scoped to the resource types it owns.

    The daemon creates one per plugin and passes it to `start()`. The first group of
    methods is the upstream contract; the second is what `BaseReconciler`'s loop uses
    (plugins with a loop of their own may use it too). Every write is one transaction:
    a status, its standard conditions, its next due time and its event change together.
    """

    plugin_name: str
    """The plugin's name (also the finalizer it puts on the resources it owns)."""
    shutdown_event: asyncio.Event
    """Set when the daemon shuts down; `start()` should return soon after."""

    # ---- the upstream contract -------------------------------------------------------

    @abc.abstractmethod
    async def get_resources_needing_reconciliation(
        self, resource_type_names: list[str] | None = None, limit: int = 10
    ) -> list[ResourceRecord]:
        """Hand out due resources of this plugin's types, each leased to the caller."""

    @abc.abstractmethod
    async def update_status(self, resource_id: int, status: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set the phase (pending, reconciling, ready, failed); the standard conditions
        and the next due time follow from it."""

    @abc.abstractmethod
    async def set_condition(self, resource_id: int, condition_type: str, status: str,
                            reason: str, message: str = "",
                            observed_generation: int | None = None) -> None:
        """Set one named condition; lastTransitionTime moves only when its status changes."""

    @abc.abstractmethod
    async def record_reconciliation(self, resource_id: int, result: ReconcileResult,
                                    duration_seconds: float | None = None,
                                    trigger_reason: str | None = None,
                                    drift_detected: bool = False) -> None:
        """Write a history entry; `result.requeue_after` sets the next due time."""

    @abc.abstractmethod
    async def add_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Add a finalizer if it is not there yet."""

    @abc.abstractmethod
    async def remove_finalizer(self, resource_id: int, finalizer: str) -> None:
        """Remove a finalizer (every occurrence)."""

    @abc.abstractmethod
    async def get_finalizers(self, resource_id: int) -> list[str]:
        """List a resource's finalizers ([] if it no longer exists)."""

    @abc.abstractmethod
    async def hard_delete_resource(self, resource_id: int) -> bool:
        """Remove a deleting resource with no finalizers left; False otherwise."""

    @abc.abstractmethod
    async def update_outputs(self, resource_id: int, outputs: dict[str, Any]) -> None:
        """Replace the resource's outputs (shown at /outputs and on the record)."""

    @abc.abstractmethod
    async def get_action_plugin(self, name: str) -> Any:
        """Return the named action plugin, initialised with its configuration."""

    @abc.abstractmethod
    async def get_secret(self, key: str) -> str:
        """Read a secret from the configured secret store (KeyError when missing)."""

    # ---- reading and composing resources ----------------------------------------------

    @abc.abstractmethod
    async def get_resource(self, resource_id: int) -> dict[str, Any] | None:
        """Any resource by id, shaped as GET /api/v1/resources/{id} shows it; None if
        there is none. Plugins may read every type."""

    @abc.abstractmethod
    async def get_resource_by_name(self, resource_type: str, name: str,
                                   version: str | None = None) -> dict[str, Any] | None:
        """A resource by type and name (names are unique per type), or None."""

    @abc.abstractmethod
    async def list_resources(self, resource_type: str | None = None,
                             version: str | None = None, status: str | None = None,
                             where: dict[str, Any] | None = None,
                             limit: int = 100) -> list[dict[str, Any]]:
        """Resources in id order, shaped as the REST API shows them.

        `where` filters on JSON values inside spec, metadata or outputs, in SQL: a plain
        dotted path means "equals" (`{"spec.role": "primary"}`); a path ending in `[]` means
        "the array holds an element with all these fields"
        (`{"outputs.members[]": {"instance_id": "i-0abc001"}}`). A `where` needs
        `resource_type`; a bad path is a ValueError.
        """

    @abc.abstractmethod
    async def patch_metadata(self, resource_id: int, patch: dict[str, Any]) -> None:
        """Merge-patch (RFC 7396) a resource's metadata, e.g. to keep a state machine there.
        No new generation; resources of this plugin's types only."""

    @abc.abstractmethod
    async def patch_spec(self, resource_id: int, patch: dict[str, Any]) -> None:
        """Merge-patch a resource's spec: validated against its schema and admission like a
        PUT, a new generation, reconciled again. Resources of this plugin's types only."""

    @abc.abstractmethod
    def watch(self, resource_types: list[str] | None = None,
              after_event_id: int | None = None) -> AsyncIterator[WatchEvent]:
        """Follow committed changes (of `resource_types`, or all), from after
        `after_event_id` (or from now), without polling and without missing one across a
        restart: remember the last id handled and pass it back. Ends at shutdown."""

    # ---- the standard loop's building blocks -----------------------------------------

    @property
    @abc.abstractmethod
    def reconcile_timeout(self) -> float:
        """Seconds one reconcile may take (the daemon's --reconcile-timeout)."""

    @abc.abstractmethod
    async def claim(self, limit: int, *, exclude: frozenset[int] = frozenset(),
                    routine_slots: int = 0) -> list[ResourceRecord]:
        """Hand out up to `limit` due resources, never one in `exclude`.

        Fresh intent (create, spec change, trigger, delete) comes first, but
        `routine_slots` are kept for routine work (drift re-checks, retries) when there is
        any, so a backlog keeps draining under a stream of changes.
        """

    @abc.abstractmethod
    async def finish_reconcile(self, resource: ResourceRecord, result: ReconcileResult, *,
                               duration_seconds: float, errored: bool = False) -> None:
        """Record one reconcile of a claimed resource, as one change.

        The history entry is written; unless the plugin reported an outcome itself
        (ready or failed) since the claim, success makes the resource ready and failure
        makes it failed. `errored` (an exception or a timeout) always makes it failed.
        For a deleting resource, success releases the plugin's finalizer and removes the
        resource once no finalizers remain.
        """

    @abc.abstractmethod
    async def seconds_until_due(self) -> float | None:
        """Seconds until the plugin's next resource is due (0 if one is due now); None if
        nothing is scheduled."""

    @abc.abstractmethod
    def work_doorbell(self) -> contextlib.AbstractContextManager[asyncio.Event]:
        """A context manager giving an event that is set whenever work of the plugin's
        types becomes due now (clear it before each wait)."""


class ReconcilerPlugin(abc.ABC):
    """A controller for one or more resource types, discovered via `no8s.reconcilers`."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Unique plugin name; also the finalizer put on the resources it owns."""

    @property
    @abc.abstractmethod
    def resource_types(self) -> list[str]:
        """Resource type names this reconciler owns (each type has one owner)."""

    @abc.abstractmethod
    async def start(self, ctx: ReconcilerContext) -> None:
        """Run until `ctx.shutdown_event` is set; the daemon runs this in its own task."""

    @abc.abstractmethod
    async def reconcile(self, resource: dict[str, Any], ctx: ReconcilerContext) -> ReconcileResult:
        """Drive one resource toward its spec."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release what `start` acquired; called once on shutdown."""


