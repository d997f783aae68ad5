"""`no8sd apply -f FILE|DIR|-`: make the daemon's state match manifest files.

The files are read here (no8sd.cli.manifests) and sent to the daemon's server-side apply
(POST /api/v1/apply), which creates, configures or leaves alone each object. One line per
object on stdout (`dnsrecord/api-record configured`); objects that fail are one line each
on stderr with the daemon's detail and the file they came from. `--dry-run` shows what
would change, as a readable diff of the RFC 6902 operations the daemon answers.
"""

from __future__ import annotations

import json
from typing import Any, Final

import click

from no8sd.cli import manifests, session
from no8sd.cli.http import EXIT_ERROR, EXIT_USAGE, ClientError, exit_code_for
from no8sd.cli.output import coloured, compact, dump, echo

CHUNK: Final = 500  # manifests per request (the daemon takes up to 1,000)
CHUNK_BYTES: Final = 768 * 1024  # below the daemon's 1 MiB body limit


@click.command("apply")
@click.option("-f", "--filename", "sources", multiple=True, required=True,
              metavar="FILE|DIR|-", help="A JSON or YAML file, a directory (read recursively "
                                         "in name order) or - for stdin. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; store "
                                              "nothing.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]),
              help="Print the daemon's per-object results as JSON or YAML, or only names.")
@session.connection_options
def apply_command(sources: tuple[str, ...], dry_run: bool, output: str | None) -> None:
    """Create or update what the manifests declare; leave the rest alone.

    A manifest is the body POST takes (a resource type: name, version, schema; a
    resource: name, resource_type_name, resource_type_version, spec, and optionally
    metadata, plugin_config), with `kind: ResourceType` or `kind: Resource` where the
    fields do not tell. Fields left out are left as they are.

    \b
    Examples:
      no8sd apply -f dns/                       # every .json/.yaml/.yml file, recursively
      no8sd apply -f record.yaml --dry-run      # what would change
      cat record.json | no8sd apply -f -
    """
    found = manifests.read(sources)
    if not found:
        raise ClientError(f"no manifests in {', '.join(sources)}", EXIT_USAGE)
    conn = session.connect()
    # Types first, so a type and its resources can be applied in one go whatever the chunks.
    order = sorted(range(len(found)), key=lambda i: not _is_type(found[i].body))
    results: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(order, found):
        answer = conn.request("POST", "/api/v1/apply",
                              {"manifests": [found[i].body for i in chunk]},
                              query={"dry_run": True} if dry_run else None)
        for i, result in zip(chunk, answer["results"], strict=True):
            results[i] = {**result, "source": found[i].source}
    ordered = [results[i] for i in range(len(found))]
    if output in ("json", "yaml"):
        echo(dump({"dry_run": dry_run, "results": ordered}, output))
    for result in ordered:
        if output in ("json", "yaml"):
            continue
        if result["result"] == "error":
            echo(f"no8sd: error: {_label(result)} ({result['source']}): {result['detail']}",
                 err=True)
        elif output == "name":
            echo(_label(result))
        else:
            suffix = " (dry run)" if dry_run else ""
            echo(f"{_label(result)} {coloured(result['result'])}{suffix}")
            if dry_run and result["result"] != "unchanged":
                for line in diff_lines(result.get("diff") or []):
                    echo("    " + line)
    failed = [r["status"] for r in ordered if r["result"] == "error"]
    if failed:
        codes = {exit_code_for(status or 500) for status in failed}
        raise click.exceptions.Exit(codes.pop() if len(codes) == 1 else EXIT_ERROR)


def _is_type(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return body.get("kind") == "ResourceType" or (
        "kind" not in body and "resource_type_name" not in body and "version" in body)


def _chunks(order: list[int], found: list[manifests.Manifest]) -> list[list[int]]:
    chunks: list[list[int]] = [[]]
    size = 0
    for i in order:
        item = len(json.dumps(found[i].body, default=str))
        if chunks[-1] and (len(chunks[-1]) >= CHUNK or size + item > CHUNK_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += item
    return chunks


def _label(result: dict[str, Any]) -> str:
    """`dnsrecord/api-record`, `resourcetype/DnsRecord/v1`, or what is known of it."""
    name = result.get("name") or "?"
    if result.get("kind") == "ResourceType":
        return f"resourcetype/{name}/{result.get('version') or '?'}"
    if result.get("resource_type_name"):
        return f"{result['resource_type_name'].lower()}/{name}"
    return f"manifest {name}" if result.get("name") else "manifest"


def diff_lines(operations: list[dict[str, Any]]) -> list[str]:
    """RFC 6902 operations as readable lines: `~ spec.ttl: 300 -> 600`, `+ ...`, `- ...`."""
    lines = []
    old: dict[str, Any] = {}
    for op in operations:
        path = _dotted(op["path"])
        kind = op["op"]
        if kind == "test":
            old[op["path"]] = op["value"]
        elif kind == "replace":
            before = compact(old.pop(op["path"])) if op["path"] in old else "?"
            lines.append(coloured(f"~ {path}: {before} -> {compact(op['value'])}", "configured"))
        elif kind == "add":
            lines.append(coloured(f"+ {path}: {compact(op['value'])}", "created"))
        elif kind == "remove":
            shown = f"- {path}: {compact(old.pop(op['path']))}" if op["path"] in old \
                else f"- {path}"
            lines.append(coloured(shown, "failed"))
        else:  # move / copy
            lines.append(f"~ {path}: {kind} from {_dotted(op.get('from', ''))}")
    return lines


def _dotted(pointer: str) -> str:
    """`/spec/records/0/ttl` -> `spec.records[0].ttl`."""
    text = ""
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text
