"""The built-in `manifests` input: a directory of manifests is the desired state (GitOps on
one box).

At start and whenever a file under one of its directories changes, every JSON/YAML
manifest there is applied through the same server-side apply as `no8sd apply`, as the
principal `input:manifests`. Each resource it applies is marked in its metadata
(`managed_by: input:manifests`, `manifest_source: FILE`). A managed resource whose file
is gone, or no longer declares it, is deleted (pruned); resources made any other way are
never touched. A file that cannot be read or parsed is reported (log, and this input's
health on GET /api/v1/plugins/inputs) and skipped: its resources stay as they are.
Resource types are applied but never pruned.

Changes are noticed with inotify through the watchfiles library (the `manifests` extra),
so an idle directory costs no wake-ups. A burst of changes (a `git pull`) is applied once.
Written against the public plugin contract only, as any input plugin would be.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Final

from no8sd.plugins.inputs import InputContext, InputPlugin
from no8sd.plugins.manifests import Manifest, ManifestError, read_file, walk

log = logging.getLogger("no8sd.manifests")

NAME: Final = "manifests"
MANAGED_BY: Final = f"input:{NAME}"
SOURCE_KEY: Final = "manifest_source"
# How often the watching thread looks up from inotify (to see changes settle and to
# notice shutdown): once a second keeps an idle directory to one wake-up a second of
# that thread, never of the event loop; stopping waits at most that long.
WATCH_STEP_MS: Final = 1000
SETTLE_MS: Final = 300  # changes closer together than this are applied as one
CHUNK: Final = 500  # manifests per apply


class ManifestsInput(InputPlugin):
    """Applies the manifests of some directories, and prunes what they no longer declare."""

    def __init__(self, directories: list[str] | tuple[str, ...] = ()) -> None:
        self.directories = [Path(d).resolve() for d in directories]
        self._stop = asyncio.Event()
        self._report = "not synced yet"
        self._healthy = True
        self.syncs = 0

    @property
    def name(self) -> str:
        return NAME

    @property
    def version(self) -> str:
        return "1.0.0"

    async def initialize(self, config: dict[str, Any]) -> None:
        """Check that watching is possible and the directories exist."""
        try:
            import watchfiles  # noqa: F401 - only checked here; used in start()
        except ImportError:
            raise RuntimeError("the manifests directory needs the 'manifests' extra: "
                               "pip install 'no8sd[manifests]'") from None
        missing = [str(d) for d in self.directories if not d.is_dir()]
        if missing:
            raise RuntimeError(f"manifests directory not found: {', '.join(missing)}")

    async def start(self, ctx: InputContext) -> None:
        """Sync now, then again after every change, until shutdown."""
        from watchfiles import awatch

        self._stop.clear()
        await self.sync(ctx)
        stop = asyncio.Event()

        async def relay() -> None:
            await _first(ctx.shutdown_event, self._stop)
            stop.set()

        relay_task = asyncio.create_task(relay())
        try:
            async for _changes in awatch(*self.directories, stop_event=stop,
                                         debounce=SETTLE_MS, step=WATCH_STEP_MS,
                                         recursive=True):
                await self.sync(ctx)
        finally:
            relay_task.cancel()

    async def stop(self) -> None:
        """Stop watching."""
        self._stop.set()

    async def health_check(self) -> tuple[bool, str]:
        """Whether the last sync read every file and applied every object, and what it did."""
        return self._healthy, self._report

    # ---- one sync --------------------------------------------------------------------

    async def sync(self, ctx: InputContext) -> None:
        """Apply every readable file; prune what readable (or deleted) files dropped."""
        read: dict[str, list[Manifest]] = {}
        broken: dict[str, str] = {}
        for directory in self.directories:
            for path in walk(directory):
                key = _key(directory, path)
                try:
                    read[key] = read_file(path)
                except ManifestError as exc:
                    broken[key] = str(exc)
                    log.error("Skipped a manifest file: %s", exc)
        bodies, origins = [], []
        for key, found in read.items():
            for manifest in found:
                bodies.append(_marked(manifest.body, key))
                origins.append(manifest.source)
        results = await _apply(ctx, bodies)
        failed = []
        wanted: set[tuple[str, str]] = set()
        counts: dict[str, int] = {}
        for origin, result in zip(origins, results, strict=True):
            counts[result["result"]] = counts.get(result["result"], 0) + 1
            if result["result"] == "error":
                failed.append(f"{origin}: {result['detail']}")
                log.error("Manifest %s was not applied: %s", origin, result["detail"])
            if result.get("resource_type_name") is not None:
                wanted.add((result["resource_type_name"], result["name"]))
        pruned = await self._prune(ctx, wanted, set(broken))
        self.syncs += 1
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
        problems = list(broken.values()) + failed
        self._healthy = not problems
        self._report = (f"{len(read)} file(s): {summary or 'nothing declared'}; "
                        f"{pruned} pruned" + ("; " + "; ".join(problems) if problems else ""))
        log.info("Applied the manifests directory: %s", self._report)

    async def _prune(self, ctx: InputContext, wanted: set[tuple[str, str]],
                     unreadable: set[str]) -> int:
        """Delete managed resources nothing declares any more (those of unreadable files
        stay); return how many."""
        pruned = 0
        for type_name in await _type_names(ctx):
            managed = await ctx.list_resources(
                type_name, where={"metadata.managed_by": MANAGED_BY}, limit=1000)
            for resource in managed:
                source = resource["metadata"].get(SOURCE_KEY)
                if (type_name, resource["name"]) in wanted or source in unreadable:
                    continue
                if resource["status"] == "deleting":
                    continue
                await ctx.delete(resource["id"])
                log.info("Pruned %s/%s: its manifest is gone", type_name, resource["name"])
                pruned += 1
        return pruned


async def _apply(ctx: InputContext, bodies: list[Any]) -> list[dict[str, Any]]:
    """Apply in chunks an apply accepts, resource types first (resources may need them)."""
    order = sorted(range(len(bodies)), key=lambda i: _is_resource(bodies[i]))
    results: dict[int, dict[str, Any]] = {}
    for start in range(0, len(order), CHUNK):
        chunk = order[start:start + CHUNK]
        for index, result in zip(chunk, await ctx.apply([bodies[i] for i in chunk]),
                                 strict=True):
            results[index] = result
    return [results[i] for i in range(len(bodies))]


def _is_resource(body: Any) -> bool:
    return isinstance(body, dict) and "resource_type_name" in body


async def _type_names(ctx: InputContext) -> list[str]:
    """The resource type names there are (types are resources of the API too)."""
    types = await ctx.resource_types()
    return sorted({t["name"] for t in types})


def _key(directory: Path, path: Path) -> str:
    """How a file is named in the marks: relative to its directory."""
    return str(path.relative_to(directory))


def _marked(body: Any, source: str) -> Any:
    """A resource manifest with the marks that make it this input's (others unchanged)."""
    if not isinstance(body, dict) or "resource_type_name" not in body:
        return body
    metadata = body.get("metadata")
    marked = dict(metadata) if isinstance(metadata, dict) else {}
    marked.update(managed_by=MANAGED_BY, manifest_source=source)
    return {**body, "metadata": marked}


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
