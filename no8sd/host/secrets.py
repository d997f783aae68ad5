"""The registry of secret stores: discovery, and the one active store.

Built-ins `env`, `file` and `vault` first, then the `no8s.secret_stores` entry points.
Exactly one store is active (`--secret-store`, default `env`); it is started before the
plugins, and a store that cannot start stops the daemon with one line.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from no8sd.errors import StartupError
from no8sd.host import discovery
from no8sd.plugins.secrets import SecretStore

log = logging.getLogger("no8sd.secrets")

ENTRY_POINT_GROUP = "no8s.secret_stores"


def builtin_stores() -> list[type[SecretStore]]:
    """The stores every daemon has."""
    from no8sd.builtins.secret_stores import EnvSecretStore, FileSecretStore
    from no8sd.builtins.vault import VaultSecretStore

    return [EnvSecretStore, FileSecretStore, VaultSecretStore]


class SecretStores:
    """Known secret stores; exactly one is active."""

    def __init__(self, active: str = "env") -> None:
        self.active_name = active
        self._classes: dict[str, type[SecretStore]] = {}
        self._versions: dict[str, str] = {}
        self._active: SecretStore | None = None

    def discover(self, *, entry_points: bool = True) -> None:
        """Register the built-ins and the `no8s.secret_stores` entry points."""
        for cls in builtin_stores():
            self.register(cls)
        if entry_points:
            discovery.register_entry_points(ENTRY_POINT_GROUP, self.register,
                                            "secret store plugin")

    def register(self, cls: type[SecretStore]) -> None:
        """Register a SecretStore class under its name."""
        if not (isinstance(cls, type) and issubclass(cls, SecretStore)):
            raise TypeError(f"{cls!r} is not a SecretStore class")
        probe = cls()
        self._classes[probe.name] = cls
        self._versions[probe.name] = str(probe.version)

    def describe(self) -> list[dict[str, Any]]:
        """`{name, version, active}` of each store (GET /api/v1/plugins/secret-stores)."""
        return [{"name": name, "version": self._versions[name],
                 "active": name == self.active_name} for name in self._classes]

    async def start(self) -> None:
        """Create and initialise the active store; any problem is a StartupError."""
        cls = self._classes.get(self.active_name)
        if cls is None:
            raise StartupError(f"Unknown secret store plugin: '{self.active_name}'. "
                               f"Available plugins: {', '.join(self._classes)}")
        store = cls()
        try:
            await store.initialize(dict(cls.load_config_from_env()))
        except Exception as exc:
            with contextlib.suppress(Exception):
                await store.close()
            raise StartupError(f"secret store '{self.active_name}' cannot start: {exc}"
                               ) from None
        self._active = store
        log.info("Using secret store: %s", self.active_name)

    async def active(self) -> SecretStore:
        """The active, initialised store."""
        if self._active is None:
            raise KeyError("no secret store is running")
        return self._active

    async def close(self) -> None:
        """Close the active store."""
        if self._active is not None:
            try:
                await self._active.close()
            except Exception as exc:
                log.error("Secret store %s failed to close: %s", self.active_name, exc)
            self._active = None

