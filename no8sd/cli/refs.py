"""Naming things on the command line: resources and types, and reading whole lists.

A resource is named by its id (`7`), by `TYPE/NAME` (as `apply` prints it:
`dnsrecord/api-record`), or by `TYPE[/VERSION] NAME` (`DnsRecord/v1 api-record`). Type
names match case-insensitively when that is unambiguous; without a version, the one
version that has a resource of that name is taken.
"""

from __future__ import annotations

from typing import Any, Final

import click
from click.shell_completion import CompletionItem

from no8sd.cli.http import EXIT_NOT_FOUND, EXIT_USAGE, ClientError, Connection

PAGE: Final = 1000
RESOURCE_HELP: Final = "ID|TYPE/NAME|TYPE[/VERSION] NAME"


def paged(conn: Connection, path: str, query: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a list route, read a page at a time."""
    found: list[Any] = []
    while True:
        page = conn.request("GET", path, query={**(query or {}), "limit": PAGE,
                                                "offset": len(found)})
        found.extend(page)
        if len(page) < PAGE:
            return found


def split_type(text: str) -> tuple[str, str | None]:
    """`DnsRecord/v1` -> ("DnsRecord", "v1"); `DnsRecord` -> ("DnsRecord", None)."""
    name, _, version = text.partition("/")
    if not name or "/" in version:
        raise ClientError(f"a type is NAME or NAME/VERSION, not {text!r}", EXIT_USAGE)
    return name, version or None


def type_name(conn: Connection, given: str) -> str:
    """The stored spelling of a type name (exact, else the one case-insensitive match)."""
    names: set[str] = {t["name"] for t in paged(conn, "/api/v1/resource-types")}
    if given in names:
        return given
    matches = sorted(n for n in names if n.lower() == given.lower())
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ClientError(f"{given!r} matches several types: {', '.join(matches)}", EXIT_USAGE)
    raise ClientError(f"no resource type named {given!r}", EXIT_NOT_FOUND)


def find_resource(conn: Connection, args: tuple[str, ...]) -> dict[str, Any]:
    """The resource the command-line arguments name."""
    if len(args) == 1 and args[0].isdigit():
        found: dict[str, Any] = conn.request("GET", f"/api/v1/resources/{args[0]}")
        return found
    if len(args) == 1 and "/" in args[0]:
        kind, _, name = args[0].rpartition("/")
        type_text, version = kind, None
        if "/" in kind:
            type_text, version = split_type(kind)
    elif len(args) == 2:
        (type_text, version), name = split_type(args[0]), args[1]
    else:
        raise ClientError(f"name a resource as {RESOURCE_HELP}", EXIT_USAGE)
    stored = type_name(conn, type_text)
    if version is not None:
        found = conn.request("GET", f"/api/v1/resources/by-name/{stored}/{version}/{name}")
        return found
    matches: list[dict[str, Any]] = [
        r for r in paged(conn, "/api/v1/resources", {"resource_type_name": stored})
        if r["name"] == name]
    if not matches:
        raise ClientError(f"no {stored} named {name!r}", EXIT_NOT_FOUND)
    if len(matches) > 1:
        versions = ", ".join(r["resource_type_version"] for r in matches)
        raise ClientError(f"{stored} {name!r} exists in versions {versions}: name one as "
                          f"{stored}/VERSION {name}", EXIT_USAGE)
    return matches[0]


def label(resource: dict[str, Any]) -> str:
    """How a resource is named in output: `dnsrecord/api-record`."""
    return f"{resource['resource_type_name'].lower()}/{resource['name']}"


# ---- shell completion: ask the daemon, quietly -----------------------------------------


def _completions(words: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(w) for w in words if w.lower().startswith(incomplete.lower())]


def _quietly(read: Any) -> list[str]:
    """What `read(conn)` answers, or nothing when the daemon cannot say (completion must
    never print errors into the shell)."""
    from no8sd.cli import session

    try:
        server, token = session.resolve()
        found: list[str] = read(Connection(server, token, timeout=2.0))
        return found
    except Exception:  # any failure means "no suggestions"
        return []


def complete_target(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    """`get`'s first argument: resources, types, or a type name."""
    names = _quietly(lambda conn: sorted({t["name"] for t in
                                          paged(conn, "/api/v1/resource-types")}))
    return _completions(["resources", "types", *names], incomplete)


def complete_resource(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """A resource argument: `type/name` of every resource."""
    return _completions(_quietly(lambda conn: [label(r) for r in
                                               paged(conn, "/api/v1/resources")]), incomplete)
