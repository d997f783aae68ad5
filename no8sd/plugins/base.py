"""The reconciler plugin contract: what a plugin subclasses and what it returns.

These names and signatures follow the upstream plugin documentation exactly, so a
plugin written for no8s-operator runs here unmodified. No I/O and no daemon internals
here: plugin authors read this module to learn the contract.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional, TypedDict

if TYPE_CHECKING:
    from no8sd.plugins.context import ReconcilerContext


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
