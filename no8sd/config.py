"""One Settings object for the daemon: command-line flags > NO8SD_* environment > defaults.

The CLI maps its options (each with an NO8SD_* variable) into `Settings` in one place;
everything else receives a Settings and never reads the environment itself.
`platformdirs` supplies only the default database location.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from no8sd.lifecycle import Scheduling

APP_NAME = "no8sd"
DB_FILENAME = "no8sd.db"


def default_db_path() -> Path:
    """`$STATE_DIRECTORY/no8sd.db` under systemd, else the user data dir."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        # systemd passes a colon-separated list when several StateDirectory= are set.
        return Path(state.split(":")[0]) / DB_FILENAME
    return platformdirs.user_data_path(APP_NAME) / DB_FILENAME


@dataclass
class Settings:
    """Everything configurable about one daemon."""

    db_path: Path = field(default_factory=default_db_path)
    """The SQLite database file (created if missing)."""
    hosts: tuple[str, ...] = ("127.0.0.1",)
    """Addresses to listen on."""
    port: int = 8000
    """TCP port to listen on (0 = any free port)."""
    log_level: str = "INFO"
    plugins: tuple[str, ...] = ()
    """Extra reconciler plugins as module:Class, loaded besides the installed entry points."""
    entry_points: bool = True
    """Whether to discover installed plugins through the no8s.reconcilers entry points."""
    scheduling: Scheduling = field(default_factory=Scheduling)
    """Drift interval, failure backoff and reconcile timeout (seconds)."""
    shutdown_grace: float = 10.0
    """Seconds plugins and in-flight requests get to finish on shutdown."""
    plugin_restart_base: float = 5.0
    """First delay (seconds) before restarting a crashed plugin; doubles up to 300 s."""
    max_body_bytes: int = 1024 * 1024
    """Largest accepted request body (bytes)."""
    history_limit: int = 100
    """History entries kept per resource."""
    event_retention_count: int = 20_000
    """Events kept in the log for SSE resume (newest first)."""
    event_retention_age: float = 7 * 24 * 3600.0
    """Oldest event kept in the log (seconds)."""
    max_streams: int = 1000
    """Most SSE streams open at once; more are refused with 503."""
    sse_heartbeat: float = 15.0
    """Seconds of silence after which an SSE stream gets a heartbeat comment."""
    synchronous: str = "FULL"
    """SQLite synchronous level: FULL survives power loss; NORMAL is faster and may lose
    the last commits (never corrupts) on power loss."""
    loop_block_warning: float = 1.0
    """Warn, naming the plugin, when the event loop is blocked longer than this (seconds)."""
    body_timeout: float = 30.0
    """Seconds a client gets to send a request body; slower bodies get 408."""
    secret_store: str = "env"
    """The active secret store (env, file, vault or an installed no8s.secret_stores one)."""
    auth: str = "none"
    """Authentication: "none" (loopback only) or "token" (bearer tokens on every route)."""
    token_ttl: float = 24 * 3600.0
    """Seconds a login token stays valid."""
    login_max_failures_user: int = 5
    """Failed logins per username within the window before it is throttled (429)."""
    login_max_failures_address: int = 20
    """Failed logins per client address within the window before it is throttled (429)."""
    login_failure_window: float = 300.0
    """Sliding window (seconds) over which failed logins are counted."""
    initial_admin: tuple[str, str] | None = field(default=None, repr=False)
    """(username, password) of an admin to create when there are no users yet."""
