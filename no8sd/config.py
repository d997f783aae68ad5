"""The daemon's settings, declared once: name, type, default, flag, environment variable, help.

Every option is a field of `Settings` carrying an `Option` (its flag, NO8SD_* variable,
help, and bounds). The command line is generated from these declarations
(no8sd.cli.options), and values are checked here, in `Settings.__post_init__`, whichever
way they came. Precedence: command-line flags > environment (NO8SD_*) > the config file
(`--config FILE`, TOML, standard library) > defaults. Nothing else reads the environment
for settings; everything receives a Settings.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from no8sd.lifecycle import Scheduling
from no8sd.timeutil import SYSTEM_CLOCK, Clock

APP_NAME: Final = "no8sd"
DB_FILENAME: Final = "no8sd.db"
CONFIG_ENV: Final = "NO8SD_CONFIG"


class ConfigError(ValueError):
    """A setting has an unusable value; the message names the option."""


def default_db_path() -> Path:
    """`$STATE_DIRECTORY/no8sd.db` under systemd, else the user data dir."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        # systemd passes a colon-separated list when several StateDirectory= are set.
        return Path(state.split(":")[0]) / DB_FILENAME
    import platformdirs  # only needed when no path is given

    return platformdirs.user_data_path(APP_NAME) / DB_FILENAME


@dataclass(frozen=True)
class Option:
    """How a setting is given on the command line, in the environment and in the file."""

    help: str
    kind: str = "str"  # str | int | float | bool | path | choice
    flag: str | None = None  # default: --field-name with dashes
    env: str | None = None  # default: NO8SD_FIELD_NAME
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False  # must be greater than 0
    multiple: bool = False
    metavar: str | None = None
    show_default: bool = True


def _option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
            secret: bool = False, **spec: Any) -> Any:
    """Declare a setting that is also an option (`secret`: never shown in repr)."""
    meta = {"option": Option(**spec)}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass
class Settings:
    """Everything configurable about one daemon."""

    db_path: Path = _option(
        factory=default_db_path, kind="path", flag="--db", env="NO8SD_DB", show_default=False,
        help="SQLite database file. Default: $STATE_DIRECTORY/no8sd.db under systemd, else "
             "no8sd.db in the user data directory.")
    hosts: tuple[str, ...] = _option(
        ("127.0.0.1",), flag="--host", env="NO8SD_HOST", multiple=True,
        help="Address to listen on (repeatable).")
    port: int = _option(8000, kind="int", minimum=0, maximum=65535,
                        help="TCP port (0 picks a free one).")
    log_level: str = _option("INFO", kind="choice",
                             choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="Log level.")
    plugins: tuple[str, ...] = _option(
        (), flag="--plugin", env="NO8SD_PLUGIN", multiple=True, metavar="MODULE:CLASS",
        help="Load a reconciler plugin that is not installed (repeatable).")
    input_plugins: tuple[str, ...] = _option(
        (), flag="--input", env="NO8SD_INPUT", multiple=True, metavar="MODULE:CLASS",
        help="Load an input plugin that is not installed (repeatable).")
    manifests: tuple[str, ...] = _option(
        (), flag="--manifests", env="NO8SD_MANIFESTS", multiple=True, metavar="DIR",
        help="A directory of manifests to keep applied (repeatable): applied at start and "
             "on every change, and what its files no longer declare is deleted.")
    entry_points: bool = _option(True, kind="bool",
                                 help="Discover installed plugins (no8s.reconcilers).")
    drift_interval: float = _option(300.0, kind="float", positive=True,
                                    help="Seconds after `ready` before a resource is "
                                         "re-checked for drift.")
    backoff_base: float = _option(10.0, kind="float", positive=True,
                                  help="First retry delay after `failed` (seconds).")
    backoff_max: float = _option(600.0, kind="float", positive=True,
                                 help="Longest retry delay (seconds).")
    reconcile_timeout: float = _option(300.0, kind="float", positive=True,
                                       help="Seconds a reconcile may take; also the lease on "
                                            "`reconciling`.")
    shutdown_grace: float = _option(10.0, kind="float", positive=True,
                                    help="Seconds plugins and requests get to finish on "
                                         "shutdown.")
    plugin_restart_base: float = _option(5.0, kind="float", positive=True,
                                         help="First delay before restarting a crashed plugin "
                                              "(doubles, max 300 s).")
    history_limit: int = _option(100, kind="int", minimum=1, maximum=100_000,
                                 help="History entries kept per resource.")
    event_retention_count: int = _option(
        20_000, kind="int", minimum=100, maximum=10_000_000, flag="--event-retention",
        env="NO8SD_EVENT_RETENTION", help="Events kept for SSE resume.")
    event_retention_age: float = _option(7 * 24 * 3600.0, kind="float", positive=True,
                                         help="Oldest event kept (seconds).")
    synchronous: str = _option("FULL", kind="choice", choices=("FULL", "NORMAL"),
                               help="SQLite durability: full survives power loss; normal is "
                                    "faster but may lose the last writes on power loss.")
    secret_store: str = _option("env", help="Secret store plugins read credentials from: env, "
                                            "file (NO8SD_SECRET_DIR or $CREDENTIALS_DIRECTORY), "
                                            "vault (VAULT_ADDR, VAULT_TOKEN), or an installed "
                                            "no8s.secret_stores plugin.")
    max_streams: int = _option(1000, kind="int", minimum=1, maximum=100_000,
                               help="Most SSE streams open at once; more get 503.")
    max_streams_per_user: int = _option(
        16, kind="int", minimum=1, maximum=100_000,
        help="Most SSE streams one user (or API token's user) may hold open; more get 429. "
             "With --auth none there is one local user and only --max-streams applies.")
    sse_heartbeat: float = _option(15.0, kind="float", positive=True,
                                   help="Seconds of silence before an SSE heartbeat comment.")
    loop_block_warning: float = _option(1.0, kind="float", positive=True,
                                        help="Warn, naming the plugin, when the event loop is "
                                             "blocked this long.")
    body_timeout: float = _option(30.0, kind="float", positive=True,
                                  help="Seconds a client gets to send a request body "
                                       "(slower: 408).")
    validation_budget: float = _option(
        0.5, kind="float", positive=True,
        help="Seconds checking one spec against its type's schema may take (longer: 400). "
             "Checks beyond the simple cases run off the event loop.")
    schema_budget: float = _option(
        2.0, kind="float", positive=True,
        help="Seconds checking a new or changed type's schema may take (longer: 400).")
    auth: str = _option("none", kind="choice", choices=("none", "token"),
                        help="none: no authentication, loopback addresses only; token: every "
                             "route but login and health needs a bearer token.")
    token_ttl: float = _option(24 * 3600.0, kind="float", positive=True,
                               help="Seconds a login token stays valid.")
    allowed_origins: tuple[str, ...] = _option(
        (), flag="--allowed-origin", env="NO8SD_ALLOWED_ORIGIN", multiple=True,
        metavar="ORIGIN",
        help="Another origin (scheme://host[:port]) whose web pages may change state "
             "through the API, e.g. https://no8sd.example.com behind a proxy (repeatable).")
    checkpoint: str = _option("auto", kind="choice", choices=("auto", "external"),
                              help="auto: no8sd folds the WAL back into the database and "
                                   "keeps it small; external: never (Litestream or another "
                                   "replication tool does it).")
    metrics: bool = _option(True, kind="bool",
                            help="Serve Prometheus metrics at /metrics (and count them).")
    metrics_public: bool = _option(False, kind="bool",
                                   help="With --auth token, let /metrics be read without a "
                                        "token.")
    ready_max_lag: float = _option(300.0, kind="float", positive=True,
                                   help="/readyz answers 503 once the oldest overdue "
                                        "reconcile has waited this long (seconds).")

    # Directory users (LDAP). Upstream's variable names; nothing LDAP loads without a URL.
    ldap_url: str | None = _option(
        None, env="LDAP_URL", metavar="URL",
        help="ldap:// or ldaps:// URL of a directory to sync users from and check their "
             "passwords against; unset: no directory users.")
    ldap_bind_dn: str | None = _option(
        None, env="LDAP_BIND_DN", metavar="DN",
        help="DN of the service account that searches the directory (unset: anonymous).")
    ldap_bind_password: str | None = _option(
        None, env="LDAP_BIND_PASSWORD", secret=True, show_default=False,
        help="The service account's password. Unset: the secret store's key "
             "ldap_bind_password, else $CREDENTIALS_DIRECTORY/ldap_bind_password.")
    ldap_base_dn: str | None = _option(None, env="LDAP_BASE_DN", metavar="DN",
                                       help="Where users are searched (subtree).")
    ldap_user_filter: str = _option("(objectClass=inetOrgPerson)", env="LDAP_USER_FILTER",
                                    help="LDAP filter selecting the users to sync.")
    ldap_attr_username: str = _option("uid", env="LDAP_ATTR_USERNAME",
                                      help="Attribute holding the username.")
    ldap_attr_email: str = _option("mail", env="LDAP_ATTR_EMAIL",
                                   help="Attribute holding the email address.")
    ldap_attr_display_name: str = _option("cn", env="LDAP_ATTR_DISPLAY_NAME",
                                          help="Attribute holding the display name.")
    ldap_sync_interval: float = _option(
        0.0, kind="float", minimum=0, env="LDAP_SYNC_INTERVAL",
        help="Seconds between background syncs from the directory (0: only on request).")
    ldap_starttls: bool = _option(False, kind="bool", env="LDAP_STARTTLS",
                                  help="Upgrade ldap:// connections with StartTLS "
                                       "(certificate verified).")
    ldap_ca_file: Path | None = _option(
        None, kind="path", env="LDAP_CA_FILE",
        help="PEM file of the CA(s) that sign the directory's certificate (default: the "
             "system's trusted CAs).")
    ldap_timeout: float = _option(
        5.0, kind="float", positive=True, env="LDAP_TIMEOUT",
        help="Seconds a login may wait for the directory (and each step of a sync).")

    # Not options: limits fixed by design, and what tests or the environment provide.
    max_body_bytes: int = 1024 * 1024
    """Largest accepted request body (bytes)."""
    login_max_failures_user: int = 5
    """Failed logins per username within the window before it is throttled (429)."""
    login_max_failures_address: int = 20
    """Failed logins per client address within the window before it is throttled (429)."""
    login_failure_window: float = 300.0
    """Sliding window (seconds) over which failed logins are counted."""
    initial_admin: tuple[str, str] | None = field(default=None, repr=False)
    """(username, password) of an admin to create when there are no users yet."""
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False, compare=False)
    """The clock every part of the daemon reads (tests substitute one)."""

    def __post_init__(self) -> None:
        self.db_path = Path(self.db_path)
        self.ldap_ca_file = Path(self.ldap_ca_file) if self.ldap_ca_file else None
        self.hosts = tuple(self.hosts) or ("127.0.0.1",)
        self.plugins = tuple(self.plugins)
        self.input_plugins = tuple(self.input_plugins)
        self.manifests = tuple(self.manifests)
        self.allowed_origins = tuple(self.allowed_origins)
        for f in dataclasses.fields(self):
            option = f.metadata.get("option")
            if option is not None:
                setattr(self, f.name, _checked(f.name, option, getattr(self, f.name)))
        if self.backoff_base > self.backoff_max:
            raise ConfigError(f"{flag_of('backoff_base')} ({self.backoff_base:g}) must not be "
                              f"above {flag_of('backoff_max')} ({self.backoff_max:g})")

    @property
    def scheduling(self) -> Scheduling:
        """The timing rules of no8sd.lifecycle."""
        return Scheduling(drift_interval=self.drift_interval, backoff_base=self.backoff_base,
                          backoff_max=self.backoff_max, reconcile_timeout=self.reconcile_timeout)


def options() -> list[tuple[str, Option, Any]]:
    """(field name, Option, default) of every setting that is an option, in order."""
    found = []
    for f in dataclasses.fields(Settings):
        option = f.metadata.get("option")
        if option is not None:
            default = f.default if f.default is not dataclasses.MISSING else None
            found.append((f.name, option, default))
    return found


def flag_of(name: str) -> str:
    """The command-line flag of a setting."""
    option = next(o for n, o, _ in options() if n == name)
    return option.flag or "--" + name.replace("_", "-")


def env_of(name: str, option: Option) -> str:
    """The environment variable of a setting."""
    return option.env or "NO8SD_" + name.upper()


def _checked(name: str, option: Option, value: Any) -> Any:
    """Check one value against its declaration; return it normalised."""
    where = flag_of(name)
    if option.kind == "choice":
        text = str(value).upper() if option.choices[0].isupper() else str(value).lower()
        if text not in option.choices:
            raise ConfigError(f"{where} must be one of {', '.join(option.choices)}, "
                              f"not {value!r}")
        return text
    if option.kind in ("int", "float") and not isinstance(value, bool):
        if option.positive and not value > 0:
            raise ConfigError(f"{where} must be greater than 0")
        if option.minimum is not None and value < option.minimum:
            raise ConfigError(f"{where} must be at least {option.minimum:g}")
        if option.maximum is not None and value > option.maximum:
            raise ConfigError(f"{where} must be at most {option.maximum:g}")
    return value


# ---- the config file --------------------------------------------------------------


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file into {field name: value}; unknown keys and wrong types are a
    ConfigError naming the file. Keys are option names (`drift-interval` or
    `drift_interval`); repeatable options take lists."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    declared = {name: (option, default) for name, option, default in options()}
    by_flag = {(o.flag or "--" + n.replace("_", "-"))[2:]: n for n, o, _ in options()}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = by_flag.get(key) or key.replace("-", "_")
        if name not in declared:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        option, _default = declared[name]
        values[name] = _from_file(path, key, option, value)
    return values


_FILE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "choice": (str,), "path": (str,), "bool": (bool,), "int": (int,),
    "float": (int, float),
}


def _from_file(path: Any, key: str, option: Option, value: Any) -> Any:
    expected = _FILE_TYPES[option.kind]
    items = value if option.multiple and isinstance(value, list) else [value]
    for item in items:
        if (isinstance(item, bool) and bool not in expected) or not isinstance(item, expected):
            kind = "a list of " + option.kind if option.multiple else option.kind
            raise ConfigError(f"config file {path}: {key} must be {kind}, not {item!r}")
    if option.multiple:
        return list(items)
    return float(value) if option.kind == "float" else value
