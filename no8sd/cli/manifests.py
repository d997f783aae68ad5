"""Reading manifests for `no8sd apply`: files, directories and standard input.

A file holds JSON (`.json`) or YAML (`.yaml`, `.yml`; several documents separated by
`---`); a document may be one manifest or a list of them. A directory is read
recursively in name order, skipping hidden entries (`.git`) and other extensions. YAML
is read with PyYAML's safe loader (its C version when PyYAML was built with libyaml).
A syntax error names the file and line; each manifest remembers where it came from.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from no8sd.cli.http import EXIT_USAGE, ClientError

SUFFIXES: Final = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class Manifest:
    """One manifest and where it was read (`file:line`)."""

    body: Any
    source: str


def read(sources: tuple[str, ...]) -> list[Manifest]:
    """Every manifest in the given files, directories and `-` (stdin), in order."""
    found: list[Manifest] = []
    for source in sources:
        if source == "-":
            found.extend(parse(sys.stdin.read(), "<stdin>"))
            continue
        path = Path(source)
        if path.is_dir():
            for file in _walk(path):
                found.extend(parse(_text(file), str(file)))
        elif path.exists():
            found.extend(parse(_text(path), str(path)))
        else:
            raise ClientError(f"{source}: no such file or directory", EXIT_USAGE)
    return found


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in names
                     if not n.startswith(".") and n.endswith(SUFFIXES))
    return sorted(files, key=lambda p: p.relative_to(folder).parts)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
                          ) from None


def parse(text: str, name: str) -> list[Manifest]:
    """The manifests in one file's text; JSON by extension or by a leading `{` or `[`."""
    looks_json = name.endswith(".json") or (
        not name.endswith((".yaml", ".yml")) and text.lstrip()[:1] in ("{", "["))
    documents = _json(text, name) if looks_json else _yaml(text, name)
    found = []
    for line, document in documents:
        items = document if isinstance(document, list) else [document]
        for n, item in enumerate(items):
            where = f"{name}:{line}" + (f" (item {n + 1})" if isinstance(document, list) else "")
            found.append(Manifest(item, where))
    return found


def _json(text: str, name: str) -> list[tuple[int, Any]]:
    try:
        return [(1, json.loads(text))]
    except json.JSONDecodeError as exc:
        raise ClientError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
                          EXIT_USAGE) from None


def _yaml(text: str, name: str) -> list[tuple[int, Any]]:
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node said there is one
            documents.append((node.start_mark.line + 1, loader.construct_document(node)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ClientError(f"{name}{line}: invalid YAML: {problem}", EXIT_USAGE) from None
    except yaml.YAMLError as exc:
        raise ClientError(f"{name}: invalid YAML: {exc}", EXIT_USAGE) from None
    finally:
        loader.dispose()
    return [(line, doc) for line, doc in documents if doc is not None]
