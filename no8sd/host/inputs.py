"""The input plugin host: finds input plugins, gives each its InputContext, runs and
supervises them.

Discovery: the `no8s.inputs` entry points, `--input module:Class` for plugins that are
not installed, and the built-in `manifests` input when `--manifests DIR` is given. Each
plugin is initialised with `load_config_from_env()` (a plugin whose initialize fails is
logged and left out), then its `start(ctx)` runs supervised like a reconciler's (a crash
is logged and restarted with backoff; a hang never holds the daemon up). Its context acts
as the principal `input:NAME` through the core, so validation, admission, authorization
scopes, events and history apply to its changes as to anyone's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from no8sd import background
from no8sd.core.principal import Principal
from no8sd.core.views import outcome_view, resource_rest, type_rest
from no8sd.host import discovery, supervision
from no8sd.host.context import follow
from no8sd.host.discovery import LoadError, Origin
from no8sd.plugins.inputs import InputContext, InputPlugin, ValidationResult
from no8sd.plugins.reconciler import WatchEvent
from no8sd.store.rows import ResourceType

if TYPE_CHECKING:
    from no8sd.core import Core

log = logging.getLogger("no8sd.plugins")

ENTRY_POINT_GROUP = "no8s.inputs"
HEALTH_TIMEOUT = 2.0  # seconds a plugin's health_check may take before it counts as failing


@dataclass
class InputState:
    """What the host knows about one input plugin."""

    name: str
    version: str
    source: str
    plugin: InputPlugin
    state: str = "registered"  # registered | running | crashed | stopped
    last_error: str | None = None
    restart_count: int = 0
    context: PluginInputContext | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def describe(self) -> dict[str, Any]:
        """The public description (GET /api/v1/plugins/inputs)."""
        healthy: bool | None = None
        message = self.last_error or ""
        if self.state == "running":
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    healthy, message = await self.plugin.health_check()
            except Exception as exc:
                healthy, message = False, f"health_check failed: {type(exc).__name__}: {exc}"
        return {"name": self.name, "version": self.version, "source": self.source,
                "state": self.state, "healthy": healthy, "health_message": str(message),
                "last_error": self.last_error, "restart_count": self.restart_count}


class PluginInputContext(InputContext):
    """An input plugin's handle on the daemon: the API's operations, as `input:NAME`."""

    def __init__(self, core: Core, name: str, shutdown_event: asyncio.Event,
                 action_plugins: Callable[[], list[str]]) -> None:
        self._core = core
        self.principal = f"input:{name}"
        self._caller = Principal(user_id=None, username=self.principal, is_admin=True)
        self.shutdown_event = shutdown_event
        self._action_plugins = action_plugins

    async def apply(self, manifests: list[Any], *,
                    dry_run: bool = False) -> list[dict[str, Any]]:
        """Server-side apply, as POST /api/v1/apply does."""
        outcomes = await self._core.applier.apply(manifests, self._caller, dry_run=dry_run)
        return [outcome_view(outcome) for outcome in outcomes]

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a resource (the body POST /api/v1/resources takes)."""
        created = await self._core.resources.create(
            name=body["name"], type_name=body["resource_type_name"],
            version=body["resource_type_version"], spec=body.get("spec"),
            plugin_config=body.get("plugin_config"), metadata=body.get("metadata"),
            action_plugin=body.get("action_plugin") or "", actor=self.principal)
        return resource_rest(created)

    async def update(self, resource_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Replace spec / metadata / plugin_config (as PUT)."""
        wanted = {k: v for k, v in fields.items()
                  if k in ("spec", "metadata", "plugin_config") and v is not None}
        return resource_rest(await self._core.resources.update(int(resource_id), wanted,
                                                               actor=self.principal))

    async def patch(self, resource_id: int, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch spec / metadata / plugin_config (as PATCH)."""
        return resource_rest(await self._core.resources.patch(int(resource_id), patch,
                                                              actor=self.principal))

    async def delete(self, resource_id: int) -> None:
        """Start deleting a resource."""
        await self._core.resources.delete(int(resource_id), actor=self.principal)

    async def trigger(self, resource_id: int) -> None:
        """Make a resource due now."""
        await self._core.resources.trigger(int(resource_id), actor=self.principal)

    async def get(self, resource_id: int) -> dict[str, Any] | None:
        """A resource by id, or None."""
        found = await self._core.resources.find(int(resource_id))
        return resource_rest(found) if found is not None else None

    async def get_by_name(self, resource_type: str, name: str,
                          version: str | None = None) -> dict[str, Any] | None:
        """A resource by type and name, or None."""
        found = await self._core.resources.find_by_name(resource_type, name, version)
        return resource_rest(found) if found is not None else None

    async def list_resources(self, resource_type: str | None = None,
                             version: str | None = None, status: str | None = None,
                             where: dict[str, Any] | None = None,
                             limit: int = 100) -> list[dict[str, Any]]:
        """Resources in id order, with the same `where` as plugin contexts."""
        found = await self._core.resources.query(type_name=resource_type, version=version,
                                                 status=status, where=where,
                                                 limit=max(0, min(int(limit), 1000)))
        return [resource_rest(r) for r in found]

    async def resource_types(self) -> list[dict[str, Any]]:
        """Every resource type, by name and version."""
        found: list[ResourceType] = []
        while True:
            page = await self._core.types.page(limit=1000, offset=len(found))
            found.extend(page)
            if len(page) < 1000:
                return [type_rest(t) for t in found]

    async def watch(self, resource_types: list[str] | None = None,
                    after_event_id: int | None = None) -> AsyncIterator[WatchEvent]:
        """Follow committed changes (ends at shutdown)."""
        async for event in follow(self._core, self.shutdown_event, resource_types,
                                  after_event_id):
            yield event

    def validate_action_plugin(self, name: str) -> ValidationResult:
        """Whether `name` is one of this daemon's action plugins."""
        available = self._action_plugins()
        if name in available:
            return ValidationResult(True)
        return ValidationResult(False, f"Unknown action plugin: {name}. Available plugins: "
                                       f"{', '.join(available) or 'none'}")


class InputHost:
    """Registry and supervisor of input plugins."""

    def __init__(self, *, restart_base: float = 5.0, restart_max: float = 300.0) -> None:
        self.plugins: dict[str, InputState] = {}
        self.errors: list[LoadError] = []
        self.restart_base = restart_base
        self.restart_max = restart_max
        self.shutdown_event = asyncio.Event()

    def discover(self, *, entry_points: bool = True, extra: list[str] | tuple[str, ...] = (),
                 instances: Sequence[InputPlugin] = ()) -> None:
        """Register input plugins from entry points, `module:Class` specs and instances."""

        def make(cls: Any, origin: Origin) -> None:
            self.register(cls(), source=origin.source, version=origin.version)

        discovery.discover(ENTRY_POINT_GROUP, "input plugin", make, entry_points=entry_points,
                           specs=extra, errors=self.errors)
        for instance in instances:
            self.register(instance, source=f"built in ({type(instance).__name__})",
                          version=str(instance.version))

    def register(self, plugin: InputPlugin, *, source: str, version: str) -> InputState:
        """Register one input plugin instance (a name used twice is a ValueError)."""
        if not isinstance(plugin, InputPlugin):
            raise TypeError(f"{type(plugin).__name__} is not an InputPlugin")
        name = plugin.name
        if not isinstance(name, str) or not name:
            raise ValueError("an input plugin needs a non-empty string name")
        if name in self.plugins:
            raise ValueError(f"An input plugin named '{name}' is already registered")
        shown = str(getattr(plugin, "version", version) or version)
        state = InputState(name, shown, source, plugin)
        self.plugins[name] = state
        log.info("Registered input plugin: %s %s", name, shown)
        return state

    async def start(self, core: Core, action_plugins: Callable[[], list[str]]) -> None:
        """Initialise every plugin with its configuration, then start each in its own
        supervised task; one whose initialize fails is logged and left out."""
        self.shutdown_event.clear()
        for name, state in list(self.plugins.items()):
            try:
                await state.plugin.initialize(dict(type(state.plugin).load_config_from_env()))
            except Exception as exc:
                state.state = "crashed"
                state.last_error = f"initialize failed: {type(exc).__name__}: {exc}"
                log.error("Input plugin '%s' could not be initialised: %s", name, exc)
                continue
            state.context = PluginInputContext(core, name, self.shutdown_event, action_plugins)
            state.task = background.spawn(self._supervise(state), name=f"input:{name}")

    async def _supervise(self, state: InputState) -> None:
        context = state.context
        assert context is not None
        run: Callable[[], Awaitable[None]] = lambda: state.plugin.start(context)  # noqa: E731
        await supervision.supervise(state, "input plugin", run, self.shutdown_event,
                                    restart_base=self.restart_base,
                                    restart_max=self.restart_max)

    async def stop(self, grace: float) -> None:
        """Signal shutdown, stop every plugin, cancel what is still running after `grace`."""
        await supervision.stop_all([(s, s.plugin.stop) for s in self.plugins.values()],
                                   "input plugin", self.shutdown_event, grace)

    async def describe(self) -> list[dict[str, Any]]:
        """Each input plugin's state and health, in registration order."""
        return [await state.describe() for state in self.plugins.values()]
