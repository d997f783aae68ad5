"""Secret stores: where plugins get credentials, so specs never have to hold them.

`SecretStore` is the contract (upstream name: SecretStorePlugin). Stores are found
through the `no8s.secret_stores` entry points besides the built-ins `env`, `file` and
`vault`; exactly one is active (`--secret-store`, default `env`), started before the
plugins, and a store that cannot start stops the daemon. Plugins read secrets with
`await ctx.get_secret(key)`. Secret values are never logged; errors name keys only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from no8sd.errors import StartupError
from no8sd.plugins.entrypoints import register_entry_points

log = logging.getLogger("no8sd.secrets")

ENTRY_POINT_GROUP = "no8s.secret_stores"


class SecretStore(abc.ABC):
    """A source of secrets, looked up by key."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name chosen with --secret-store."""

    @property
    def version(self) -> str:
        """Store version, shown by GET /api/v1/plugins/secret-stores."""
        return "1.0.0"

    @abc.abstractmethod
    async def initialize(self, config: dict[str, Any]) -> None:
        """Take the configuration and check the store can be used (raise if not)."""

    @abc.abstractmethod
    async def get_secret(self, key: str) -> str:
        """Return the secret's value; raise KeyError when there is no such secret."""

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
        return None

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """The store's configuration, read from the environment; {} by default."""
        return {}


SecretStorePlugin = SecretStore  # the upstream name


class EnvSecretStore(SecretStore):
    """Secrets are environment variables of the daemon."""

    @property
    def name(self) -> str:
        return "env"

    async def initialize(self, config: dict[str, Any]) -> None:
        """Nothing to set up."""

    async def get_secret(self, key: str) -> str:
        """The variable's value; unset or empty is KeyError."""
        value = os.environ.get(key)
        if not value:
            raise KeyError(f"Secret '{key}' not found in environment variables.")
        return value


class FileSecretStore(SecretStore):
    """Secrets are files in one directory, one file per key (systemd's LoadCredential=)."""

    @property
    def name(self) -> str:
        return "file"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """NO8SD_SECRET_DIR, else systemd's $CREDENTIALS_DIRECTORY."""
        return {"directory": os.environ.get("NO8SD_SECRET_DIR")
                or os.environ.get("CREDENTIALS_DIRECTORY")}

    async def initialize(self, config: dict[str, Any]) -> None:
        """Check the directory exists."""
        directory = config.get("directory")
        if not directory:
            raise ValueError("the file secret store needs a directory: set NO8SD_SECRET_DIR "
                             "or run under systemd with LoadCredential=")
        path = Path(directory)
        if not path.is_dir():
            raise ValueError(f"secret directory {directory} does not exist")
        self.directory = path.resolve()

    async def get_secret(self, key: str) -> str:
        """The file's content (one trailing newline removed); a key naming anything but a
        plain file in the directory is refused."""
        if (not isinstance(key, str) or not key or key.startswith(".") or "/" in key
                or "\\" in key or "\0" in key):
            raise KeyError(f"Secret key {key!r} is not a plain file name")
        path = self.directory / key
        try:
            if path.resolve().parent != self.directory or not path.is_file():
                raise KeyError(f"Secret '{key}' not found in {self.directory}")
            value = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise KeyError(f"Secret '{key}' cannot be read from {self.directory}") from None
        if value.endswith("\r\n"):
            return value[:-2]
        return value[:-1] if value.endswith("\n") else value


def builtin_stores() -> list[type[SecretStore]]:
    """The stores every daemon has."""
    from no8sd.plugins.vault import VaultSecretStore

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
            register_entry_points(ENTRY_POINT_GROUP, self.register, "secret store plugin")

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

