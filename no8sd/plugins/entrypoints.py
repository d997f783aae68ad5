"""Loading plugin classes from an entry-point group, one failure never stopping the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

log = logging.getLogger("no8sd.plugins")


def register_entry_points(group: str, register: Callable[[Any], None], kind: str) -> None:
    """Load every entry point of `group` and pass it to `register`; log and skip failures."""
    for ep in metadata.entry_points(group=group):
        try:
            register(ep.load())
        except Exception as exc:
            log.error("Could not load %s %s: %s", kind, ep.name, exc)
