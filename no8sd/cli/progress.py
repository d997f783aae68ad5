"""A progress line on stderr while a long command works, on a terminal only.

Piped or redirected, stderr gets nothing (logs and scripts stay clean). On a terminal
the line is redrawn at most ten times a second, and once more at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import click

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)


def progress_line(verb: str, unit: str) -> Progress | None:
    """`Verb:  42% (420 of 1000 units)` on a terminal (or `Verb: 420 units` when the total
    is unknown); None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    shown = 0.0

    def report(done: int, total: int | None) -> None:
        nonlocal shown
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - shown < 0.1:
            return
        shown = now
        if total is None:
            text = f"{verb}: {done} {unit}"
        else:
            text = f"{verb}: {100 * done // max(total, 1):3d}% ({done} of {total} {unit})"
        click.echo(f"\r{text}", err=True, nl=finished)

    return report


def end_line(report: Progress | None) -> None:
    """Finish a progress line whose total was unknown (the next output starts afresh)."""
    if report is not None:
        click.echo("", err=True)
