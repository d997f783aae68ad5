"""The `no8sd` command: with no subcommand it serves; subcommands administer and inspect.

Every daemon option is generated from the settings declaration (no8sd.config), with an
NO8SD_* variable and a config-file key. Problems a user can fix (a bad value, a busy
port, an unusable database, another daemon on the same file) are one line on stderr
and exit code 1 (2 for a bad option).

Subcommands are imported only when invoked (`LazyGroup`), and the daemon's own modules
only when serving, so the client commands (`no8sd get ...`, which talk to a running
daemon over HTTP) start in a fraction of the daemon's start-up time. Exit codes of the
client commands: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict or denied, 5 timeout.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from functools import cached_property
from typing import Any

import click

from no8sd import __version__
from no8sd.cli.options import given, settings_options
from no8sd.config import ConfigError, Settings

# Subcommand name -> "module:attribute", imported when the subcommand runs.
COMMANDS = {
    "login": "no8sd.cli.login:login_command",
    "logout": "no8sd.cli.login:logout_command",
    "apply": "no8sd.cli.apply:apply_command",
    "get": "no8sd.cli.get:get_command",
    "describe": "no8sd.cli.describe:describe_command",
    "wait": "no8sd.cli.wait:wait_command",
    "delete": "no8sd.cli.control:delete_command",
    "reconcile": "no8sd.cli.control:reconcile_command",
    "history": "no8sd.cli.control:history_command",
    "finalizers": "no8sd.cli.control:finalizers_group",
    "types": "no8sd.cli.resource_types:types_group",
    "plugins": "no8sd.cli.plugins:plugins_command",
    "user": "no8sd.cli.admin:user_group",
    "token": "no8sd.cli.admin:token_group",
    "completion": "no8sd.cli.completion:completion_command",
    "backup": "no8sd.cli.ops:backup_command",
    "restore": "no8sd.cli.ops:restore_command",
    "export": "no8sd.cli.export:export_command",
    "import": "no8sd.cli.importing:import_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


class Invocation:
    """What the top-level options said; the daemon settings are built only when asked."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    @cached_property
    def settings(self) -> Settings:
        """Settings from what was given (flags > environment > config file > defaults)."""
        return build_settings(self.params)

    def gave(self, name: str) -> bool:
        """Whether a setting was given (flag, environment or config file)."""
        return name in given(self.params)


def setup_logging(level: str) -> None:
    """Log to stderr in the daemon's one format."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def build_settings(params: dict[str, Any], *, serving: bool = False) -> Settings:
    """Settings from what was given; when serving, with the first admin from the
    environment."""
    # Now in the settings: plugins, the env secret store and subprocesses never see it.
    os.environ.pop("LDAP_BIND_PASSWORD", None)
    try:
        if not serving:
            return Settings(**given(params))
        from no8sd.core.accounts import initial_admin_from_env

        return Settings(**given(params), initial_admin=initial_admin_from_env(os.environ))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(cls=LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@settings_options
@click.version_option(__version__, "--version", prog_name="no8sd")
@click.pass_context
def main(ctx: click.Context, /, **params: Any) -> None:
    """no8sd: Kubernetes-style reconciliation without Kubernetes, on SQLite.

    With no command, serve (the options above configure the daemon). The commands talk to
    a running daemon over HTTP (`login`, `apply`, `get`, `describe`, `wait`, ...) or work
    on its database file (`user`, `token` with --db).

    \b
    Examples:
      no8sd --db ./dns.db                    # serve
      no8sd apply -f manifests/              # create or update what the files declare
      no8sd get resources
      no8sd wait DnsRecord/v1 api-record --for=ready
    """
    ctx.obj = Invocation(params)
    if ctx.invoked_subcommand is not None:
        return
    settings = build_settings(params, serving=True)
    setup_logging(settings.log_level)
    import asyncio

    from no8sd.app import serve
    from no8sd.errors import StartupError

    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        click.echo(f"no8sd: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
