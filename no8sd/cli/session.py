"""Which daemon the client commands talk to, as whom: flags, environment, the stored login.

`--server URL` / `NO8SD_SERVER` and `--token T` / `NO8SD_TOKEN` win; otherwise the login
stored by `no8sd login` is used (the server last logged in to, and the token stored for
that server); otherwise http://127.0.0.1:8000 without a token (a daemon with
authentication off). Logins live in `login.json` in the user config directory
(platformdirs: `~/.config/no8sd/` on Linux, `$XDG_CONFIG_HOME/no8sd/` when set), readable
by the owner only (mode 0600), one token per server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from no8sd.cli.http import DEFAULT_SERVER, ClientError, Connection

F = TypeVar("F", bound=Callable[..., Any])
LOGIN_FILE: Final = "login.json"
_META = "no8sd.connection"


def login_path() -> Path:
    """Where logins are stored."""
    import platformdirs  # only when a stored login is needed

    return platformdirs.user_config_path("no8sd") / LOGIN_FILE


def load_logins() -> dict[str, Any]:
    """The stored logins: {"current": URL, "servers": {URL: {"token", "username"}}}."""
    path = login_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"current": None, "servers": {}}
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the stored login {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        raise ClientError(f"the stored login {path} is damaged; remove it and log in again")
    return data


def save_logins(data: dict[str, Any]) -> Path:
    """Write the logins atomically, readable by the owner only."""
    path = login_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = path.with_name(f".{LOGIN_FILE}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        os.write(fd, (json.dumps(data, indent=2) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(scratch, path)
    return path


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta.setdefault(_META, {})[param.name] = value


def connection_options(fn: F) -> F:
    """Add --server and --token to a client command (read back by `connect`)."""
    fn = click.option("--token", envvar="NO8SD_TOKEN", expose_value=False, callback=_remember,
                      show_envvar=True, metavar="TOKEN",
                      help="Bearer token (default: the one stored by `no8sd login`).")(fn)
    return click.option("--server", envvar="NO8SD_SERVER", expose_value=False,
                        callback=_remember, show_envvar=True, metavar="URL",
                        help="The daemon's URL (default: the last `no8sd login`, else "
                             f"{DEFAULT_SERVER}).")(fn)


def given() -> dict[str, str]:
    """The --server / --token given to the running command (flag or environment)."""
    ctx = click.get_current_context(silent=True)  # none while completing a shell word
    found: dict[str, str] = ctx.meta.get(_META, {}) if ctx is not None else {}
    return found


def resolve() -> tuple[str, str | None]:
    """(server, token) for this command: flags and environment, the stored login, the
    default server."""
    chosen = given()
    # The environment directly too: shell completion runs without the options' callbacks.
    server = chosen.get("server") or os.environ.get("NO8SD_SERVER") or None
    token = chosen.get("token") or os.environ.get("NO8SD_TOKEN") or None
    if server is None or token is None:
        logins = load_logins()
        server = server or logins.get("current") or DEFAULT_SERVER
        if token is None:
            token = (logins["servers"].get(server.rstrip("/")) or {}).get("token")
    return server, token


def connect(*, timeout: float | None = None) -> Connection:
    """A connection to the daemon this command talks to."""
    server, token = resolve()
    if timeout is None:
        return Connection(server, token)
    return Connection(server, token, timeout=timeout)
