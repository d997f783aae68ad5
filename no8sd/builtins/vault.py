"""The `vault` secret store: HashiCorp Vault's KV version 2 engine over HTTP, token auth.

Configuration (environment): VAULT_ADDR (default http://127.0.0.1:8200), VAULT_TOKEN
(required), VAULT_NAMESPACE (optional, Vault Enterprise), VAULT_MOUNT (default `secret`).
A key is a secret path, optionally followed by `#field`; the field defaults to `value`.
Start-up checks the token with `auth/token/lookup-self`. One HTTP session, with
explicit timeouts, lives as long as the daemon.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import aiohttp

from no8sd.plugins.secrets import SecretStore

REQUEST_TIMEOUT = 10.0


class VaultSecretStore(SecretStore):
    """Reads secrets from a Vault KV v2 mount."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._addr = ""
        self._mount = "secret"

    @property
    def name(self) -> str:
        return "vault"

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_MOUNT."""
        env = os.environ
        return {"addr": env.get("VAULT_ADDR", "http://127.0.0.1:8200"),
                "token": env.get("VAULT_TOKEN", ""),
                "namespace": env.get("VAULT_NAMESPACE", ""),
                "mount": env.get("VAULT_MOUNT", "secret")}

    async def initialize(self, config: dict[str, Any]) -> None:
        """Open the session and check the token (ValueError if Vault refuses it)."""
        token = config.get("token")
        if not token:
            raise ValueError("VAULT_TOKEN is required for the vault secret store")
        self._addr = str(config.get("addr") or "http://127.0.0.1:8200").rstrip("/")
        self._mount = str(config.get("mount") or "secret").strip("/")
        headers = {"X-Vault-Token": str(token)}
        if config.get("namespace"):
            headers["X-Vault-Namespace"] = str(config["namespace"])
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        try:
            status, _ = await self._get("/v1/auth/token/lookup-self")
        except KeyError as exc:
            raise ValueError(f"cannot reach Vault at {self._addr}: {exc.args[0]}") from None
        if status != 200:
            raise ValueError(f"Vault at {self._addr} refused the token (HTTP {status})")

    async def get_secret(self, key: str) -> str:
        """The `value` field (or `path#field`) of the latest version of a KV v2 secret."""
        path, _, field = str(key).partition("#")
        field = field or "value"
        parts = path.strip("/").split("/")
        if not path.strip("/") or any(p in ("", ".", "..") for p in parts):
            raise KeyError(f"Secret key {key!r} is not a valid Vault path")
        url_path = "/".join(quote(p, safe="") for p in parts)
        status, body = await self._get(f"/v1/{quote(self._mount, safe='/')}/data/{url_path}")
        if status == 404:
            raise KeyError(f"Secret '{key}' not found in Vault")
        if status != 200 or not isinstance(body, dict):
            raise KeyError(f"Secret '{key}' could not be read from Vault (HTTP {status})")
        data = (body.get("data") or {}).get("data") or {}
        if field not in data:
            raise KeyError(f"Secret '{key}' has no field '{field}'; fields: "
                           f"{', '.join(sorted(data)) or 'none'}")
        return str(data[field])

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str) -> tuple[int, Any]:
        if self._session is None:
            raise KeyError("the vault secret store is not initialised")
        try:
            async with self._session.get(self._addr + path) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                return resp.status, body
        except TimeoutError:
            raise KeyError(f"Vault did not answer within {REQUEST_TIMEOUT:g}s") from None
        except aiohttp.ClientError as exc:
            raise KeyError(f"Vault request failed: {type(exc).__name__}") from None
