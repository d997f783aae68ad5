"""`no8sd completion SHELL`: the shell completion script (click's), to source or install."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Examples:
      eval "$(no8sd completion bash)"                       # in ~/.bashrc
      no8sd completion fish > ~/.config/fish/completions/no8sd.fish
    """
    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None and root.command is not None
    script = cls(root.command, {}, root.info_name or "no8sd", "_NO8SD_COMPLETE")
    click.echo(script.source())
