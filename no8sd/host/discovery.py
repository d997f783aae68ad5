"""Finding plugins: one helper for every entry-point group (and `module:Class` specs).

Reconcilers (`no8s.reconcilers`), action plugins (`no8s.actions`), secret stores
(`no8s.secret_stores`) and input plugins (`no8s.inputs`) are all found the same way: each
entry point is loaded and handed to the registry's `register` together with where it came
from. A plugin that fails to import or to register is logged by name and skipped; the
others load, so one broken package never stops the daemon.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger("no8sd.plugins")


@dataclass(frozen=True)
class Origin:
    """Where a plugin came from: shown in logs, `no8sd plugins` and the plugins API."""

    source: str  # e.g. "entry point dns_record (no8s_dns.reconciler:DnsRecordReconciler)"
    label: str  # the short name used in log lines
    version: str  # the distribution's version, or "local"


@dataclass(frozen=True)
class LoadError:
    """A plugin that could not be registered, and why."""

    source: str
    error: str


def load_class(spec: str) -> Any:
    """Import `module:Class` (or `module.Class`) and return the object it names."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"plugin must be given as module:Class, got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _version(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", None) or "unknown"


@functools.lru_cache(maxsize=4)
def _installed_entry_points(path: tuple[str, ...]) -> Any:
    # Reading every installed distribution's metadata is the slow part of discovery, and
    # the daemon looks up four groups at start: read them once per import path.
    return metadata.entry_points()


def discover(group: str, kind: str, register: Callable[[Any, Origin], None], *,
             entry_points: bool = True, specs: Iterable[str] = (),
             errors: list[LoadError] | None = None) -> None:
    """Load every entry point of `group` (if `entry_points`) and every `module:Class` of
    `specs`, and pass each loaded object with its Origin to `register`. A failure, in
    loading or in `register`, is logged and noted in `errors`; the rest carry on."""
    found: list[tuple[Origin, Callable[[], Any]]] = []
    if entry_points:
        for ep in _installed_entry_points(tuple(sys.path)).select(group=group):
            found.append((Origin(f"entry point {ep.name} ({ep.value})", ep.name, _version(ep)),
                          ep.load))
    for spec in specs:
        found.append((Origin(f"--plugin {spec}", spec, "local"), functools.partial(load_class,
                                                                                   spec)))
    for origin, load in found:
        try:
            register(load(), origin)
        except Exception as exc:
            log.error("Could not load %s %s: %s", kind, origin.label, exc)
            if errors is not None:
                errors.append(LoadError(origin.source, f"{type(exc).__name__}: {exc}"))


def register_entry_points(group: str, register: Callable[[Any], None], kind: str) -> None:
    """Load every entry point of `group` and pass the loaded class to `register`."""
    discover(group, kind, lambda cls, _origin: register(cls))
