"""The `no8sd` command: with no subcommand it serves; `no8sd plugins` lists plugins.

Every option has an NO8SD_* environment variable. Options are mapped into one
`Settings` here and nowhere else. Problems a user can fix (busy port, unusable
database, another daemon on the same file) are one line on stderr and exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from no8sd import __version__
from no8sd.accounts import initial_admin_from_env
from no8sd.admin_cli import token_group, user_group
from no8sd.config import Settings, default_db_path
from no8sd.errors import StartupError
from no8sd.lifecycle import Scheduling

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _settings(params: dict[str, Any]) -> Settings:
    """Map the command-line options into Settings (the one place this happens)."""
    return Settings(
        db_path=Path(params["db"]) if params["db"] else default_db_path(),
        hosts=tuple(params["host"]) or ("127.0.0.1",),
        port=params["port"],
        log_level=params["log_level"].upper(),
        plugins=tuple(params["plugin"]),
        entry_points=params["entry_points"],
        scheduling=Scheduling(
            drift_interval=params["drift_interval"],
            backoff_base=params["backoff_base"],
            backoff_max=params["backoff_max"],
            reconcile_timeout=params["reconcile_timeout"],
        ),
        shutdown_grace=params["shutdown_grace"],
        plugin_restart_base=params["plugin_restart_base"],
        history_limit=params["history_limit"],
        event_retention_count=params["event_retention"],
        event_retention_age=params["event_retention_age"],
        synchronous=params["synchronous"].upper(),
        secret_store=params["secret_store"],
        max_streams=params["max_streams"],
        sse_heartbeat=params["sse_heartbeat"],
        loop_block_warning=params["loop_block_warning"],
        body_timeout=params["body_timeout"],
        auth=params["auth"].lower(),
        token_ttl=params["token_ttl"],
        initial_admin=initial_admin_from_env(os.environ),
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _positive(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value <= 0:
        raise click.BadParameter("must be greater than 0", param=param)
    return value


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="NO8SD_DB", type=click.Path(dir_okay=False),
              help="SQLite database file. Default: $STATE_DIRECTORY/no8sd.db under systemd, "
                   "else no8sd.db in the user data directory.")
@click.option("--host", envvar="NO8SD_HOST", multiple=True,
              help="Address to listen on (repeatable). Default: 127.0.0.1.")
@click.option("--port", envvar="NO8SD_PORT", type=click.IntRange(0, 65535), default=8000,
              show_default=True, help="TCP port (0 picks a free one).")
@click.option("--log-level", envvar="NO8SD_LOG_LEVEL", default="INFO", show_default=True,
              type=click.Choice(LOG_LEVELS, case_sensitive=False))
@click.option("--plugin", envvar="NO8SD_PLUGIN", multiple=True, metavar="MODULE:CLASS",
              help="Load a reconciler plugin that is not installed (repeatable).")
@click.option("--entry-points/--no-entry-points", envvar="NO8SD_ENTRY_POINTS", default=True,
              show_default=True, help="Discover installed plugins (no8s.reconcilers).")
@click.option("--drift-interval", envvar="NO8SD_DRIFT_INTERVAL", type=float, default=300.0,
              show_default=True, callback=_positive,
              help="Seconds after `ready` before a resource is re-checked for drift.")
@click.option("--backoff-base", envvar="NO8SD_BACKOFF_BASE", type=float, default=10.0,
              show_default=True, callback=_positive, help="First retry delay after `failed`.")
@click.option("--backoff-max", envvar="NO8SD_BACKOFF_MAX", type=float, default=600.0,
              show_default=True, callback=_positive, help="Longest retry delay (seconds).")
@click.option("--reconcile-timeout", envvar="NO8SD_RECONCILE_TIMEOUT", type=float, default=300.0,
              show_default=True, callback=_positive,
              help="Seconds a reconcile may take; also the lease on `reconciling`.")
@click.option("--shutdown-grace", envvar="NO8SD_SHUTDOWN_GRACE", type=float, default=10.0,
              show_default=True, callback=_positive,
              help="Seconds plugins and requests get to finish on shutdown.")
@click.option("--plugin-restart-base", envvar="NO8SD_PLUGIN_RESTART_BASE", type=float,
              default=5.0, show_default=True, callback=_positive,
              help="First delay before restarting a crashed plugin (doubles, max 300 s).")
@click.option("--history-limit", envvar="NO8SD_HISTORY_LIMIT", type=click.IntRange(1, 100_000),
              default=100, show_default=True, help="History entries kept per resource.")
@click.option("--event-retention", envvar="NO8SD_EVENT_RETENTION",
              type=click.IntRange(100, 10_000_000), default=20_000, show_default=True,
              help="Events kept for SSE resume.")
@click.option("--event-retention-age", envvar="NO8SD_EVENT_RETENTION_AGE", type=float,
              default=7 * 24 * 3600.0, show_default=True, callback=_positive,
              help="Oldest event kept (seconds).")
@click.option("--synchronous", envvar="NO8SD_SYNCHRONOUS", default="full", show_default=True,
              type=click.Choice(["full", "normal"], case_sensitive=False),
              help="SQLite durability: full survives power loss; normal is faster but may "
                   "lose the last writes on power loss.")
@click.option("--secret-store", envvar="NO8SD_SECRET_STORE", default="env", show_default=True,
              help="Secret store plugins read credentials from: env, file (NO8SD_SECRET_DIR or "
                   "$CREDENTIALS_DIRECTORY), vault (VAULT_ADDR, VAULT_TOKEN), or an installed "
                   "no8s.secret_stores plugin.")
@click.option("--max-streams", envvar="NO8SD_MAX_STREAMS", type=click.IntRange(1, 100_000),
              default=1000, show_default=True,
              help="Most SSE streams open at once; more get 503.")
@click.option("--sse-heartbeat", envvar="NO8SD_SSE_HEARTBEAT", type=float, default=15.0,
              show_default=True, callback=_positive,
              help="Seconds of silence before an SSE heartbeat comment.")
@click.option("--loop-block-warning", envvar="NO8SD_LOOP_BLOCK_WARNING", type=float,
              default=1.0, show_default=True, callback=_positive,
              help="Warn, naming the plugin, when the event loop is blocked this long.")
@click.option("--body-timeout", envvar="NO8SD_BODY_TIMEOUT", type=float, default=30.0,
              show_default=True, callback=_positive,
              help="Seconds a client gets to send a request body (slower: 408).")
@click.option("--auth", envvar="NO8SD_AUTH", default="none", show_default=True,
              type=click.Choice(["none", "token"], case_sensitive=False),
              help="none: no authentication, loopback addresses only; token: every route "
                   "but login and health needs a bearer token.")
@click.option("--token-ttl", envvar="NO8SD_TOKEN_TTL", type=float, default=24 * 3600.0,
              show_default=True, callback=_positive, help="Seconds a login token stays valid.")
@click.version_option(__version__, "--version", prog_name="no8sd")
@click.pass_context
def main(ctx: click.Context, **params: Any) -> None:
    """no8sd: Kubernetes-style reconciliation without Kubernetes, on SQLite."""
    ctx.obj = params
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(params)
    _setup_logging(settings.log_level)
    from no8sd.app import serve

    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        click.echo(f"no8sd: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


@main.command("plugins")
@click.pass_obj
def plugins_command(params: dict[str, Any]) -> None:
    """List the reconciler plugins that would be loaded, and any that fail to load."""
    _setup_logging("ERROR")
    from no8sd.plugins.host import PluginHost

    host = PluginHost()
    host.discover(entry_points=params["entry_points"], extra=list(params["plugin"]))
    if not host.plugins and not host.errors:
        click.echo("No reconciler plugins found.")
    for state in host.plugins.values():
        click.echo(f"{state.name} {state.version}: {', '.join(state.resource_types)}"
                   f"  [{state.source}]")
    for error in host.errors:
        click.echo(f"failed: {error.source}: {error.error}")


main.add_command(user_group)
main.add_command(token_group)

# `no8sd --help` shows each option's NO8SD_* variable next to it.
for _option in main.params:
    if isinstance(_option, click.Option) and _option.envvar:
        _option.show_envvar = True
