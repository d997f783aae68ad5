"""Reading manifests for `no8sd apply`: files, directories and standard input (the
reading itself is no8sd.plugins.manifests, shared with the manifests directory)."""

from __future__ import annotations

import sys
from pathlib import Path

from no8sd.cli.http import EXIT_USAGE, ClientError
from no8sd.plugins.manifests import Manifest, ManifestError, parse, read_file, walk

__all__ = ["Manifest", "read"]


def read(sources: tuple[str, ...]) -> list[Manifest]:
    """Every manifest in the given files, directories and `-` (stdin), in order."""
    found: list[Manifest] = []
    try:
        for source in sources:
            if source == "-":
                found.extend(parse(sys.stdin.read(), "<stdin>"))
                continue
            path = Path(source)
            if path.is_dir():
                for file in walk(path):
                    found.extend(read_file(file))
            elif path.exists():
                found.extend(read_file(path))
            else:
                raise ClientError(f"{source}: no such file or directory", EXIT_USAGE)
    except ManifestError as exc:
        raise ClientError(str(exc), EXIT_USAGE) from None
    return found
