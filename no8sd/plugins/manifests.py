"""Reading manifests from files: what `no8sd apply -f` and the manifests directory read,
and what any input plugin may use.

A file holds JSON (`.json`) or YAML (`.yaml`, `.yml`; several documents separated by
`---`); a document may be one manifest or a list of them. A directory is read recursively
in name order, skipping hidden entries (`.git`) and other extensions. YAML is read with
PyYAML's safe loader (its C version when PyYAML was built with libyaml). A syntax error
is a ManifestError naming the file and line; each manifest remembers where it came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SUFFIXES: Final = (".json", ".yaml", ".yml")


class ManifestError(ValueError):
    """A file that cannot be read as manifests; the message names the file (and line)."""


@dataclass(frozen=True)
class Manifest:
    """One manifest and where it was read (`file:line`)."""

    body: Any
    source: str


def walk(folder: Path) -> list[Path]:
    """The manifest files under `folder`, recursively, in name order (hidden ones skipped)."""
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in names
                     if not n.startswith(".") and n.endswith(SUFFIXES))
    return sorted(files, key=lambda p: p.relative_to(folder).parts)


def read_file(path: Path) -> list[Manifest]:
    """The manifests in one file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
                            ) from None
    return parse(text, str(path))


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
        raise ManifestError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                            ) from None


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
        raise ManifestError(f"{name}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{name}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return [(line, doc) for line, doc in documents if doc is not None]
