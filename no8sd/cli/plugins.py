"""`no8sd plugins`: the plugins a running daemon has, with their state and last error.

`--local` answers without a daemon: which reconciler plugins this installation would
load (the entry points and --plugin options given to `no8sd`), and which fail to load.
"""

from __future__ import annotations

import click

from no8sd.cli import Invocation, session
from no8sd.cli.output import coloured, dump, echo, table
from no8sd.config import Settings


@click.command("plugins")
@click.option("--local", is_flag=True, help="List what this installation would load, "
                                            "without asking a daemon.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]),
              help="The daemon's answers as JSON or YAML.")
@session.connection_options
@click.pass_obj
def plugins_command(invocation: Invocation, local: bool, output: str | None) -> None:
    """List the daemon's plugins: reconcilers (state, restarts, last error), action
    plugins, secret stores and inputs.

    \b
    Examples:
      no8sd plugins
      no8sd --plugin mypkg.dns:DnsReconciler plugins --local
    """
    if local:
        _local(invocation.settings)
        return
    conn = session.connect()
    found = {kind: conn.request("GET", f"/api/v1/plugins/{kind}")
             for kind in ("reconcilers", "actions", "secret-stores", "inputs")}
    if output:
        echo(dump(found, output))
        return
    echo("Reconcilers:")
    if found["reconcilers"]:
        echo(table(("  NAME", "VERSION", "TYPES", "STATE", "RESTARTS", "LAST ERROR"), [
            ["  " + p["name"], p["version"], ", ".join(p["resource_types"]), p["state"],
             str(p["restart_count"]), p.get("last_error") or "-"]
            for p in found["reconcilers"]]))
    else:
        echo("  (none)")
    echo("Action plugins: " + (", ".join(f"{p['name']} {p['version']}"
                                          for p in found["actions"]) or "(none)"))
    echo("Secret stores:  " + ", ".join(
        f"{p['name']}" + (coloured(" (active)", "ready") if p["active"] else "")
        for p in found["secret-stores"]))
    echo("Inputs:         " + ", ".join(f"{p['name']} {p['version']}"
                                          for p in found["inputs"]))


def _local(settings: Settings) -> None:
    import logging

    from no8sd.host.reconcilers import PluginHost

    logging.basicConfig(level=logging.ERROR)
    host = PluginHost()
    host.discover(entry_points=settings.entry_points, extra=list(settings.plugins))
    if not host.plugins and not host.errors:
        echo("No reconciler plugins found.")
    for state in host.plugins.values():
        echo(f"{state.name} {state.version}: {', '.join(state.resource_types)}"
             f"  [{state.source}]")
    for error in host.errors:
        echo(f"failed: {error.source}: {error.error}")
