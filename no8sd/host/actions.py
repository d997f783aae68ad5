"""The registry of action plugins: discovery, one shared instance each, configuration.

Built-in `github_actions` first, then the `no8s.actions` entry points in the order
they are found. A plugin that fails to load is logged and skipped. Each plugin gets one
shared instance, initialised on first use with its `load_config_from_env()` (so a
token set in the environment is always applied, whoever asks first), and closed at
shutdown. Every instance reads the daemon's clock (`ActionPlugin.monotonic`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from no8sd.host.discovery import register_entry_points
from no8sd.plugins.actions import ActionPlugin
from no8sd.timeutil import SYSTEM_CLOCK, Clock

log = logging.getLogger("no8sd.plugins")

ENTRY_POINT_GROUP = "no8s.actions"


@dataclass
class _Entry:
    name: str
    version: str
    cls: type[ActionPlugin]
    instance: ActionPlugin | None = None
    ready: bool = False  # initialize() has run on `instance`


def _builtin() -> list[type[ActionPlugin]]:
    from no8sd.builtins.github_actions import GitHubActionsPlugin

    return [GitHubActionsPlugin]


class ActionRegistry:
    """Known action plugins and their shared, initialised instances."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = asyncio.Lock()
        self._clock = clock

    def discover(self, *, entry_points: bool = True,
                 extra: tuple[type[ActionPlugin], ...] = ()) -> None:
        """Register the built-ins, the `no8s.actions` entry points and extra classes."""
        for cls in _builtin():
            self.register(cls)
        if entry_points:
            register_entry_points(ENTRY_POINT_GROUP, self.register, "action plugin")
        for cls in extra:
            self.register(cls)

    def register(self, cls: type[ActionPlugin]) -> None:
        """Register an ActionPlugin class (instantiated once here to read its name)."""
        if not (isinstance(cls, type) and issubclass(cls, ActionPlugin)):
            raise TypeError(f"{cls!r} is not an ActionPlugin class")
        probe = cls()
        probe.monotonic = self._clock.monotonic
        name, version = str(probe.name), str(probe.version)
        if name in self._entries:
            log.warning("Replacing action plugin %s with %s", name, cls.__name__)
        self._entries[name] = _Entry(name, version, cls, probe)
        log.info("Registered action plugin: %s %s", name, version)

    def names(self) -> list[str]:
        """Names of the available action plugins, in registration order."""
        return list(self._entries)

    def describe(self) -> list[dict[str, str]]:
        """`{name, version}` of each plugin (GET /api/v1/plugins/actions)."""
        return [{"name": e.name, "version": e.version} for e in self._entries.values()]

    async def get(self, name: str) -> ActionPlugin:
        """The shared instance of a plugin, initialised with its environment configuration
        the first time it is asked for."""
        entry = self._entries.get(name)
        if entry is None:
            raise ValueError(f"Unknown action plugin: {name}. Available plugins: "
                             f"{', '.join(self._entries) or 'none'}")
        async with self._lock:
            if entry.ready and entry.instance is not None:
                return entry.instance
            instance = entry.instance or entry.cls()
            instance.monotonic = self._clock.monotonic
            await instance.initialize(dict(entry.cls.load_config_from_env()))
            entry.instance = instance
            entry.ready = True
            return instance

    async def close(self) -> None:
        """Close every initialised instance (errors are logged)."""
        for entry in self._entries.values():
            if entry.instance is not None and entry.ready:
                try:
                    await entry.instance.close()
                except Exception as exc:
                    log.error("Action plugin %s failed to close: %s", entry.name, exc)
