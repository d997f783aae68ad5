"""The plugin host: finds reconciler plugins, enforces type ownership, runs and supervises them.

Discovery reads the `no8s.reconcilers` entry points (plus `--plugin module:Class` for
plugins that are not installed). A plugin that fails to load, or claims a type another
plugin already owns, is logged and skipped; the rest run. Each plugin's `start(ctx)`
runs in its own task; a crash or an early return is logged and restarted with backoff,
never taking the daemon down. Shutdown sets the shutdown event, calls every `stop()`,
and cancels whatever is still running after the grace period. While plugins run, a
watchdog (watchdog.py) warns, naming the plugin, when one blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from no8sd import background
from no8sd.host import discovery, supervision
from no8sd.host.context import PluginContext, PluginServices
from no8sd.host.discovery import LoadError, Origin
from no8sd.host.watchdog import LoopWatchdog
from no8sd.plugins.reconciler import ReconcilerPlugin

log = logging.getLogger("no8sd.plugins")

ENTRY_POINT_GROUP = "no8s.reconcilers"


@dataclass
class PluginState:
    """What the host knows about one registered reconciler."""

    name: str
    version: str
    resource_types: list[str]
    source: str
    plugin: ReconcilerPlugin
    state: str = "registered"  # registered | running | crashed | stopped
    last_error: str | None = None
    restart_count: int = 0
    context: PluginContext | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """The public description (GET /api/v1/plugins/reconcilers, `no8sd plugins`)."""
        return {
            "name": self.name,
            "version": self.version,
            "resource_types": self.resource_types,
            "source": self.source,
            "state": self.state,
            "last_error": self.last_error,
            "restart_count": self.restart_count,
        }


class PluginHost:
    """Registry and supervisor of reconciler plugins."""

    def __init__(self, *, restart_base: float = 5.0, restart_max: float = 300.0,
                 block_threshold: float | None = 1.0) -> None:
        self.plugins: dict[str, PluginState] = {}
        self.owners: dict[str, str] = {}  # resource type name -> plugin name
        self.errors: list[LoadError] = []
        self.restart_base = restart_base
        self.restart_max = restart_max
        self.shutdown_event = asyncio.Event()
        self.watchdog: LoopWatchdog | None = None
        if block_threshold:
            self.watchdog = LoopWatchdog(block_threshold, classes=self._plugin_classes,
                                         on_block=self._blocked)

    # ---- discovery ------------------------------------------------------------------

    def discover(self, *, entry_points: bool = True, extra: list[str] | tuple[str, ...] = (),
                 instances: list[ReconcilerPlugin] | tuple[ReconcilerPlugin, ...] = ()) -> None:
        """Register plugins from entry points, `module:Class` specs and ready instances."""

        def make(cls: Any, origin: Origin) -> None:
            self.register(cls(), source=origin.source, version=origin.version)

        discovery.discover(ENTRY_POINT_GROUP, "reconciler plugin", make,
                           entry_points=entry_points, specs=extra, errors=self.errors)
        for instance in instances:
            source = f"instance {type(instance).__name__}"
            try:
                self.register(instance, source=source, version="local")
            except Exception as exc:
                log.error("Could not load reconciler plugin %s: %s",
                          type(instance).__name__, exc)
                self.errors.append(LoadError(source, f"{type(exc).__name__}: {exc}"))

    def register(self, plugin: ReconcilerPlugin, *, source: str = "local",
                 version: str = "unknown") -> PluginState:
        """Register one plugin instance; a type claimed twice raises ValueError."""
        if not isinstance(plugin, ReconcilerPlugin):
            raise TypeError(f"{type(plugin).__name__} is not a ReconcilerPlugin")
        name = plugin.name
        types = list(plugin.resource_types)
        if not isinstance(name, str) or not name:
            raise ValueError("a reconciler plugin needs a non-empty string name")
        if name in self.plugins:
            raise ValueError(f"A reconciler plugin named '{name}' is already registered")
        for type_name in types:
            owner = self.owners.get(type_name)
            if owner is not None:
                raise ValueError(
                    f"Resource type '{type_name}' is already claimed by reconciler '{owner}'. "
                    f"Cannot register '{name}'."
                )
        state = PluginState(name, version, types, source, plugin)
        self.plugins[name] = state
        for type_name in types:
            self.owners[type_name] = name
        log.info("Registered reconciler plugin: %s (resource types: %s)", name, ", ".join(types))
        return state

    def owner_of(self, type_name: str) -> str | None:
        """Return the name of the plugin that owns a resource type, if one is loaded."""
        return self.owners.get(type_name)

    # ---- running --------------------------------------------------------------------

    def start(self, services: PluginServices) -> None:
        """Start every registered plugin in its own supervised task."""
        self.shutdown_event.clear()
        for state in self.plugins.values():
            state.context = PluginContext(services, state.name, state.resource_types,
                                          self.shutdown_event)
            state.task = background.spawn(self._supervise(state), name=f"plugin:{state.name}")
        if self.watchdog is not None:
            self.watchdog.start()

    def _plugin_classes(self) -> dict[tuple[str, str], str]:
        """Map (module, class name) of each plugin's classes to the plugin's name, so the
        watchdog can name a blocker from a stack frame; a plugin's own class wins."""
        found: dict[tuple[str, str], str] = {}
        states = list(self.plugins.values())
        for state in states:
            cls = type(state.plugin)
            found.setdefault((cls.__module__, cls.__qualname__), state.name)
        for state in states:
            for cls in type(state.plugin).__mro__[1:]:
                if not cls.__module__.startswith(("no8sd.", "builtins", "abc")):
                    found.setdefault((cls.__module__, cls.__qualname__), state.name)
        return found

    def _blocked(self, name: str, seconds: float) -> None:
        state = self.plugins.get(name)
        if state is not None:
            state.last_error = f"blocked the event loop for {seconds:.1f}s"

    async def _supervise(self, state: PluginState) -> None:
        context = state.context
        assert context is not None
        await supervision.supervise(state, "reconciler plugin",
                                    lambda: state.plugin.start(context), self.shutdown_event,
                                    restart_base=self.restart_base,
                                    restart_max=self.restart_max)

    async def stop(self, grace: float) -> None:
        """Signal shutdown, call every stop(), cancel what is still running after `grace`."""
        await supervision.stop_all([(state, state.plugin.stop) for state in self.plugins.values()],
                                   "reconciler plugin", self.shutdown_event, grace)
        if self.watchdog is not None:
            self.watchdog.stop()
