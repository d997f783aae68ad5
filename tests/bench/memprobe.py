"""A diagnostic plugin for soaks: tracemalloc snapshots of the daemon, diffed over time.

Load it beside the real plugins (`soak.py --pythonpath tests/bench --daemon-arg=--plugin
--daemon-arg=memprobe:MemProbe`, with MEMPROBE_OUT=/path/to/report.txt). It owns no
resource type; it starts tracemalloc when the daemon starts its plugins, takes a snapshot
every MEMPROBE_EVERY seconds (default 300) and appends to the report the 25 places
whose allocations grew most since the first snapshot after warm-up, with the sizes of
the daemon's gc-tracked objects by type. Tracing costs memory and time: figures from a
run with it are for finding a leak, not for the RSS curve.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import os
import time
import tracemalloc
from typing import Any

from no8sd.plugins import ReconcilerPlugin


class MemProbe(ReconcilerPlugin):
    """Snapshots and diffs the heap; reconciles nothing."""

    @property
    def name(self) -> str:
        return "memprobe"

    @property
    def resource_types(self) -> list[str]:
        return []

    async def start(self, ctx: Any) -> None:
        out = os.environ.get("MEMPROBE_OUT", "memprobe.txt")
        every = float(os.environ.get("MEMPROBE_EVERY", "300"))
        tracemalloc.start(int(os.environ.get("MEMPROBE_FRAMES", "8")))
        started = time.monotonic()
        base: tracemalloc.Snapshot | None = None
        while not ctx.shutdown_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.shutdown_event.wait(), every)
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if base is None:
                base = snap
                continue
            with open(out, "a") as report:
                elapsed = time.monotonic() - started
                traced, _peak = tracemalloc.get_traced_memory()
                report.write(f"=== {elapsed:.0f}s traced={traced / 2**20:.1f} MiB\n")
                for stat in snap.compare_to(base, "traceback")[:25]:
                    report.write(f"{stat.size_diff / 1024:+.1f} KiB {stat.count_diff:+d} "
                                 f"blocks\n")
                    for line in stat.traceback.format()[-8:]:
                        report.write(f"    {line}\n")
                counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
                report.write(f"objects: {counts.most_common(15)}\n")

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> Any:
        return None

    async def stop(self) -> None:
        """Nothing to release: the snapshot loop ends on the shutdown event."""
