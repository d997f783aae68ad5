"""The input plugin contract: plugins that turn outside events into resource changes.

An input plugin (a GitOps poller, a file watcher, a queue listener, a webhook receiver ...)
is found through the `no8s.inputs` entry-point group. The daemon creates it, passes it
`load_config_from_env()` through `initialize()`, and runs `start(ctx)` in its own task:
a crash is logged and the plugin restarted with backoff, and a plugin that hangs never
holds the daemon up. Names follow upstream's InputPlugin.

Instead of a database handle, the plugin gets an `InputContext`: the operations the HTTP
API offers (apply, create, update, patch, delete, trigger, get, list, watch), made as the
principal `input:NAME`, which the events and the reconcile history name. The context can
also be called like upstream's `on_resource_event` callback.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from no8sd.plugins.actions import ResourceSpec
from no8sd.plugins.reconciler import WatchEvent

ResourceCallback = Callable[[str, ResourceSpec], Awaitable[None]]
"""Upstream's callback type: `await on_resource_event(event_type, spec)`."""


@dataclass
class ValidationResult:
    """Whether something an input plugin was given is usable, and why not."""

    is_valid: bool
    error_message: Optional[str] = None  # noqa: UP045 - the documented signature


class InputContext(abc.ABC):
    """What an input plugin may do, as the principal `input:NAME`.

    Records come back shaped as the REST API shows them. Errors are the daemon's own:
    `no8sd.errors`-style exceptions carry `.status` (the HTTP status the same request would
    get) and `.detail`; a plugin may simply let them propagate or log them.
    """

    principal: str
    """`input:NAME`: who this plugin's changes are made by, in events and history."""
    shutdown_event: asyncio.Event
    """Set when the daemon shuts down; `start()` should return soon after."""

    @abc.abstractmethod
    async def apply(self, manifests: list[Any], *, dry_run: bool = False) -> list[dict[str, Any]]:
        """Server-side apply (as POST /api/v1/apply): create what is missing, update what
        differs, leave the rest; one result per manifest (`created`, `configured`,
        `unchanged`, or `error` with its status and detail)."""

    @abc.abstractmethod
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a resource (the body POST /api/v1/resources takes)."""

    @abc.abstractmethod
    async def update(self, resource_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Replace spec / metadata / plugin_config (as PUT)."""

    @abc.abstractmethod
    async def patch(self, resource_id: int, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch spec / metadata / plugin_config (RFC 7396, as PATCH)."""

    @abc.abstractmethod
    async def delete(self, resource_id: int) -> None:
        """Start deleting a resource (it goes once its finalizers are released)."""

    @abc.abstractmethod
    async def trigger(self, resource_id: int) -> None:
        """Make a resource due now (as POST /api/v1/resources/{id}/reconcile)."""

    @abc.abstractmethod
    async def get(self, resource_id: int) -> dict[str, Any] | None:
        """A resource by id, or None."""

    @abc.abstractmethod
    async def get_by_name(self, resource_type: str, name: str,
                          version: str | None = None) -> dict[str, Any] | None:
        """A resource by type and name, or None."""

    @abc.abstractmethod
    async def list_resources(self, resource_type: str | None = None,
                             version: str | None = None,
                   status: str | None = None, where: dict[str, Any] | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        """Resources in id order; `where` as ReconcilerContext.list_resources takes it."""

    @abc.abstractmethod
    async def resource_types(self) -> list[dict[str, Any]]:
        """Every resource type, as GET /api/v1/resource-types shows them."""

    @abc.abstractmethod
    def watch(self, resource_types: list[str] | None = None,
              after_event_id: int | None = None) -> AsyncIterator[WatchEvent]:
        """Follow committed changes, as ReconcilerContext.watch does."""

    @abc.abstractmethod
    def validate_action_plugin(self, name: str) -> ValidationResult:
        """Whether `name` is an action plugin of this daemon."""

    async def __call__(self, event_type: str, spec: ResourceSpec) -> None:
        """Upstream's `on_resource_event(event_type, spec)`: the resources named
        `spec.name` (of any type this daemon has) are reconciled now."""
        for found in await self.list_resources(limit=1000):
            if found["name"] == spec.name:
                await self.trigger(found["id"])


class InputPlugin(abc.ABC):
    """A source of resource changes from outside; discovered via `no8s.inputs`."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Unique plugin name (the principal is `input:NAME`)."""

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """Plugin version, shown by GET /api/v1/plugins/inputs."""

    @abc.abstractmethod
    async def initialize(self, config: dict[str, Any]) -> None:
        """Receive the configuration (`load_config_from_env()`); called once, first."""

    @abc.abstractmethod
    async def start(self, ctx: InputContext) -> None:
        """Run until `ctx.shutdown_event` is set (in its own task)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release what `start` acquired; called once on shutdown."""

    async def health_check(self) -> tuple[bool, str]:
        """(healthy, message), shown by GET /api/v1/plugins/inputs."""
        return True, "running"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """The plugin's configuration, read from the environment; {} by default."""
        return {}
