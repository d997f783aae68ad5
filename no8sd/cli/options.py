"""The daemon's command-line options, generated from the settings declaration.

Each `Option` in no8sd.config becomes one click option with its NO8SD_* variable shown in
`--help`. Defaults are not click's business: an option not given is left out, so the
config file (`--config`, read into click's default map) and then the declared default
apply, in that order. Values are checked once, by `Settings` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from no8sd import config
from no8sd.config import Option

F = Callable[..., Any]


def _type(option: Option) -> Any:
    if option.kind == "choice":
        return click.Choice([c.lower() for c in option.choices], case_sensitive=False)
    if option.kind == "int":
        return click.IntRange(None if option.minimum is None else int(option.minimum),
                              None if option.maximum is None else int(option.maximum))
    if option.kind == "float":
        return float
    if option.kind == "path":
        return click.Path(dir_okay=False)
    return str


def _shown(option: Option, default: Any) -> str | bool:
    if not option.show_default or default is None:
        return False
    if option.multiple:
        return ", ".join(default) if default else False
    if option.kind == "bool":
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default).lower() if option.kind == "choice" else str(default)


def _help(option: Option, default: Any) -> str:
    # The default goes into the text: click can only show a default it applies itself,
    # and these defaults are applied by Settings (after the config file).
    shown = _shown(option, default)
    return f"{option.help} Default: {shown}." if shown else option.help


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read the config file first, so its values are the defaults of every other option."""
    if value:
        try:
            values = config.read_config_file(value)
        except config.ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
        ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def settings_options(fn: F) -> F:
    """Decorate a click command with one option per declared setting, and `--config`."""
    for name, option, default in reversed(config.options()):
        flag = option.flag or "--" + name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}" if option.kind == "bool" else flag, name]
        fn = click.option(
            *decls, envvar=config.env_of(name, option), type=None if option.kind == "bool"
            else _type(option), default=None, multiple=option.multiple,
            help=_help(option, default), metavar=option.metavar, show_envvar=True,
        )(fn)
    return click.option(
        "--config", "config_file", envvar=config.CONFIG_ENV, is_eager=True, expose_value=True,
        type=click.Path(dir_okay=False, exists=True), callback=_load_config,
        help="TOML file with settings (keys as the option names); flags and NO8SD_* "
             "variables override it.", show_envvar=True)(fn)


def given(params: dict[str, Any]) -> dict[str, Any]:
    """The settings a user actually gave (flag, environment or config file)."""
    names = {name for name, _, _ in config.options()}
    return {k: v for k, v in params.items()
            if k in names and v is not None and v != ()}
