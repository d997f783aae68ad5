"""How the client commands print: tables, ages, colours, JSON and YAML.

On a terminal the output is for people: colour (unless NO_COLOR is set) and live status
lines. Piped, it is for programs: the same columns without colour, no progress lines,
and `-o json|yaml|name` for exact values. YAML (PyYAML) is imported only when asked for.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import click

FORMATS: Final = ("json", "yaml", "wide", "name")
_COLOURS: Final = {"ready": "32", "True": "32", "failed": "31", "False": "31",
                   "deleting": "33", "reconciling": "33", "pending": "36", "error": "31",
                   "created": "32", "configured": "33"}


def interactive(stream: Any = None) -> bool:
    """Whether `stream` (stdout) is a terminal a person reads."""
    return bool((stream or sys.stdout).isatty())


def coloured(text: str, key: str | None = None, *, stream: Any = None) -> str:
    """`text` in the colour of `key` (default: the text itself) on a terminal only."""
    code = _COLOURS.get(key if key is not None else text)
    if code is None or not interactive(stream) or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{code}m{text}\033[0m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          colour_column: int | None = None) -> str:
    """An aligned table (two spaces between columns); one column may be coloured."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for n, row in enumerate([list(headers), *[list(r) for r in rows]]):
        cells = []
        for i, cell in enumerate(row):
            padded = cell if i == len(row) - 1 else cell.ljust(widths[i])
            if n > 0 and i == colour_column:
                padded = coloured(cell, cell) + padded[len(cell):]
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def parse_time(text: str | None) -> float | None:
    """Unix seconds of an ISO 8601 time from the API (None stays None)."""
    return datetime.fromisoformat(text).timestamp() if text else None


def span(seconds: float) -> str:
    """A short duration: 45s, 3m, 2h10m, 4d."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        hours, minutes = divmod(int(seconds // 60), 60)
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    return f"{int(seconds // 86400)}d"


def age(text: str | None, now: float | None = None) -> str:
    """How long ago an API time was ("-" when unset)."""
    then = parse_time(text)
    return "-" if then is None else span((now or time.time()) - then)


def when(text: str | None, now: float | None = None) -> str:
    """An API time with how far it is from now: "2026-05-01 10:00:00 UTC (in 5m)"."""
    then = parse_time(text)
    if then is None or text is None:
        return "-"
    delta = then - (now or time.time())
    relative = f"in {span(delta)}" if delta > 0 else f"{span(-delta)} ago"
    return f"{text[:19].replace('T', ' ')} UTC ({relative})"


def dump(value: Any, fmt: str) -> str:
    """`value` as JSON (indented) or YAML."""
    if fmt == "yaml":
        import yaml  # PyYAML: only for YAML output

        text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True,
                                   default_flow_style=False)
        return text.rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False)


def compact(value: Any) -> str:
    """A JSON value on one line."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def echo(text: str = "", *, err: bool = False) -> None:
    """Print a line (click handles broken pipes and encodings)."""
    click.echo(text, err=err)
