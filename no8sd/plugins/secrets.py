"""The secret store contract: where plugins get credentials, so specs never have to hold them.

`SecretStore` (upstream name: SecretStorePlugin) is what a store implements. Stores are
found through the `no8s.secret_stores` entry points besides the built-ins `env`, `file`
and `vault`; exactly one is active (`--secret-store`). Plugins read secrets with
`await ctx.get_secret(key)`. A store never logs secret values; its errors name keys only.
"""

from __future__ import annotations

import abc
from typing import Any


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
