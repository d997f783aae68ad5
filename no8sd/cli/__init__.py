"""The `no8sd` command: with no subcommand it serves; subcommands administer and inspect.

Every daemon option is generated from the settings declaration (no8sd.config), with an
NO8SD_* variable and a config-file key. Problems a user can fix (a bad value, a busy
port, an unusable database, another daemon on the same file) are one line on stderr
and exit code 1 (2 for a bad option).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import click

from no8sd import __version__
from no8sd.cli.admin import token_group, user_group
from no8sd.cli.options import given, settings_options
from no8sd.config import ConfigError, Settings
from no8sd.core.accounts import initial_admin_from_env
from no8sd.errors import StartupError


def setup_logging(level: str) -> None:
    """Log to stderr in the daemon's one format."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def build_settings(params: dict[str, Any]) -> Settings:
    """Settings from what was given (flags > environment > config file > defaults)."""
    # Now in the settings: plugins, the env secret store and subprocesses never see it.
    os.environ.pop("LDAP_BIND_PASSWORD", None)
    try:
        return Settings(**given(params), initial_admin=initial_admin_from_env(os.environ))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@settings_options
@click.version_option(__version__, "--version", prog_name="no8sd")
@click.pass_context
def main(ctx: click.Context, /, **params: Any) -> None:
    """no8sd: Kubernetes-style reconciliation without Kubernetes, on SQLite."""
    settings = build_settings(params)
    ctx.obj = settings
    if ctx.invoked_subcommand is not None:
        return
    setup_logging(settings.log_level)
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
def plugins_command(settings: Settings) -> None:
    """List the reconciler plugins that would be loaded, and any that fail to load."""
    setup_logging("ERROR")
    from no8sd.host.reconcilers import PluginHost

    host = PluginHost()
    host.discover(entry_points=settings.entry_points, extra=list(settings.plugins))
    if not host.plugins and not host.errors:
        click.echo("No reconciler plugins found.")
    for state in host.plugins.values():
        click.echo(f"{state.name} {state.version}: {', '.join(state.resource_types)}"
                   f"  [{state.source}]")
    for error in host.errors:
        click.echo(f"failed: {error.source}: {error.error}")


main.add_command(user_group)
main.add_command(token_group)
