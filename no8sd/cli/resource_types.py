"""`no8sd types list` and `no8sd types show NAME[/VERSION]`: the registered resource types."""

from __future__ import annotations

import click

from no8sd.cli import refs, session
from no8sd.cli.get import print_types
from no8sd.cli.http import EXIT_NOT_FOUND, ClientError
from no8sd.cli.output import FORMATS, dump, echo


@click.group("types")
def types_group() -> None:
    """List resource types, or show one's schema.

    Example: no8sd types show DnsRecord/v1
    """


@types_group.command("list")
@click.option("-o", "--output", type=click.Choice(FORMATS), help="json, yaml or name.")
@session.connection_options
def types_list(output: str | None) -> None:
    """List resource types with how many resources each has.

    Example: no8sd types list
    """
    print_types(session.connect(), None, output)


@types_group.command("show")
@click.argument("type_ref", metavar="NAME[/VERSION]")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default="yaml",
              show_default=True, help="How to print the schema.")
@session.connection_options
def types_show(type_ref: str, output: str) -> None:
    """Show a resource type's schema (every version when none is given).

    Example: no8sd types show DnsRecord/v1 -o json
    """
    conn = session.connect()
    given, version = refs.split_type(type_ref)
    name = refs.type_name(conn, given)
    found = [t for t in refs.paged(conn, "/api/v1/resource-types", {"name": name})
             if version is None or t["version"] == version]
    if not found:
        raise ClientError(f"no resource type {type_ref}", EXIT_NOT_FOUND)
    for n, t in enumerate(found):
        if n:
            echo()
        description = f" - {t['description']}" if t.get("description") else ""
        echo(f"# {t['name']}/{t['version']} ({t['status']}){description}")
        echo(dump(t["schema"], output))
