"""The built-in `env` and `file` secret stores.

`env` serves the daemon's environment variables; `file` serves one file per secret from a
directory (NO8SD_SECRET_DIR, else systemd's $CREDENTIALS_DIRECTORY, which is what
`LoadCredential=` fills). Both implement the public SecretStore contract only.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from no8sd.plugins.secrets import SecretStore

REFUSED_PREFIXES = ("NO8SD_", "INITIAL_ADMIN_")


class EnvSecretStore(SecretStore):
    """Secrets are environment variables of the daemon."""

    @property
    def name(self) -> str:
        return "env"

    async def initialize(self, config: dict[str, Any]) -> None:
        """Nothing to set up."""

    async def get_secret(self, key: str) -> str:
        """The variable's value; unset or empty is KeyError. The daemon's own settings
        (NO8SD_*) and the first admin's bootstrap variables are never served."""
        if key.upper().startswith(REFUSED_PREFIXES):
            raise KeyError(f"Secret '{key}' is a daemon setting, not a secret for plugins")
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
