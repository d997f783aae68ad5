"""Benchmark what operating no8sd costs; prints one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_ops.py [--resources 100000] [--quick]

1. Metrics: create throughput and latency with metrics on (the default) and with
   --no-metrics, alternating daemons so drift on a shared machine hits both alike; the
   figure is the ratio on/off, measured in the same run, plus the absolute numbers, and
   the same ratio of the daemon's CPU time per create (which other work on a shared
   machine moves far less than the rate).
2. Backup: a daemon with `--resources` resources (default 100,000) under a steady
   update load, once every resource has been reconciled (so no backlog of first
   reconciles runs under either window); update latency, then while `no8sd backup`
   copies the live database. The figure is the p99 of the updates that overlapped the
   backup against the p99 before it (a ratio, and both in ms), with the backup's size
   and duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from bench_daemon import free_port, load, pct, wait_healthy
from bench_perf import cpu_seconds

HERE = Path(__file__).parent


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def command() -> list[str]:
    script = Path(sys.executable).with_name("no8sd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "no8sd"]


class Daemon:
    """A no8sd with the no-op reconciler on a fresh database."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.db = folder / "bench.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        self.proc = subprocess.Popen(
            [*command(), "--db", str(self.db), "--port", str(self.port), "--no-entry-points",
             "--plugin", "noop_plugin:NoopReconciler", "--log-level", "WARNING", *args],
            env=env)

    async def __aenter__(self) -> Daemon:
        await wait_healthy(self.url + "/health")
        async with aiohttp.ClientSession() as http:
            await http.post(self.url + "/api/v1/resource-types", json={
                "name": "Bench", "version": "v1",
                "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}})
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        self.proc.terminate()
        self.proc.wait()


def creating(prefix: str) -> Any:
    def make(i: int) -> tuple[str, str, dict[str, Any]]:
        return ("POST", "/api/v1/resources", {
            "name": f"{prefix}{i}", "resource_type_name": "Bench",
            "resource_type_version": "v1", "spec": {"n": i}})
    return make


async def bench_metrics(total: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    cpu_ms: dict[str, list[float]] = {"on": [], "off": []}
    for round_no in range(rounds):
        for mode in ("on", "off") if round_no % 2 == 0 else ("off", "on"):
            folder = Path(tempfile.mkdtemp(prefix="no8sd-bench-ops-"))
            extra = () if mode == "on" else ("--no-metrics",)
            async with Daemon(folder, *extra) as daemon, aiohttp.ClientSession(
                    daemon.url, connector=aiohttp.TCPConnector(limit=0)) as http:
                await load(http, creating("warm-"), 300, 16)
                cpu0 = cpu_seconds(daemon.proc.pid)
                took, lat, errors = await load(http, creating("c-"), total, 16)
                per_create = 1000 * (cpu_seconds(daemon.proc.pid) - cpu0) / total
                results[mode].append((total / took, pct(lat, 99)))
                cpu_ms[mode].append(per_create)
                emit("create_metrics_" + mode, round=round_no, requests=total,
                     rps=round(total / took), p50_ms=pct(lat, 50), p99_ms=pct(lat, 99),
                     errors=errors, server_cpu_ms_per_create=round(per_create, 3))
            shutil.rmtree(folder, ignore_errors=True)
    on = statistics.median(r for r, _ in results["on"])
    off = statistics.median(r for r, _ in results["off"])
    cpu_on, cpu_off = statistics.median(cpu_ms["on"]), statistics.median(cpu_ms["off"])
    emit("metrics_overhead", median_rps_on=round(on), median_rps_off=round(off),
         throughput_ratio_on_off=round(on / off, 3),
         cost_percent=round(100 * (1 - on / off), 1),
         median_cpu_ms_per_create_on=round(cpu_on, 3),
         median_cpu_ms_per_create_off=round(cpu_off, 3),
         cpu_cost_percent=round(100 * (cpu_on / cpu_off - 1), 1))


async def updates(http: aiohttp.ClientSession, ids: list[int], stop: asyncio.Event,
                  concurrency: int, made: list[tuple[float, float]]) -> None:
    """Update random resources until `stop`; note (start, seconds) of each in `made`."""
    rng = random.Random(7)

    async def worker() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            async with http.put(f"/api/v1/resources/{rng.choice(ids)}",
                                json={"spec": {"n": n}}) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            made.append((started, time.monotonic() - started))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def settled(http: aiohttp.ClientSession, timeout: float = 1800) -> None:
    """Wait until no resource is pending or reconciling."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for status in ("pending", "reconciling"):
            async with http.get("/api/v1/resources",
                                params={"status": status, "limit": 1}) as resp:
                busy = busy or bool(await resp.json())
        if not busy:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the daemon did not settle")


async def timed(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()


async def bench_backup(resources: int, window: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="no8sd-bench-backup-"))
    async with Daemon(folder) as daemon, aiohttp.ClientSession(
            daemon.url, connector=aiohttp.TCPConnector(limit=0)) as http:
        started = time.monotonic()
        await load(http, creating("r-"), resources, 64)
        filled = time.monotonic() - started
        await settled(http)
        async with http.get("/api/v1/resources", params={"limit": 1000}) as resp:
            ids = [r["id"] for r in await resp.json()]
        emit("backup_setup", resources=resources, fill_seconds=round(filled),
             settle_seconds=round(time.monotonic() - started - filled),
             db_mib=round(daemon.db.stat().st_size / 2**20, 1))
        baseline: list[tuple[float, float]] = []
        stop = asyncio.Event()
        await asyncio.gather(updates(http, ids, stop, 4, baseline), timed(window, stop))
        dest = folder / "copy.db"
        made: list[tuple[float, float]] = []
        stop = asyncio.Event()
        load_task = asyncio.create_task(updates(http, ids, stop, 4, made))
        await asyncio.sleep(1.0)
        began = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *command(), "--db", str(daemon.db), "backup", str(dest),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        ended = time.monotonic()
        stop.set()
        await load_task
        during = [seconds for at, seconds in made if at < ended and at + seconds > began]
        assert proc.returncode == 0, err.decode()
        base = [seconds for _, seconds in baseline]
        emit("write_p99_during_backup", resources=resources,
             backup_seconds=round(ended - began, 2),
             backup_mib=round(dest.stat().st_size / 2**20, 1),
             updates_before=len(base), p50_ms_before=pct(base, 50),
             p99_ms_before=pct(base, 99), updates_during=len(during),
             p50_ms_during=pct(during, 50), p99_ms_during=pct(during, 99),
             max_ms_during=pct(during, 100),
             p99_ratio_during_before=round(pct(during, 99) / pct(base, 99), 2),
             command_output=out.decode().strip())
    shutil.rmtree(folder, ignore_errors=True)  # a 100,000-resource file and its copy


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--skip-backup", action="store_true")
    args = parser.parse_args()
    if not args.skip_metrics:
        await bench_metrics(1000 if args.quick else 4000, 2 if args.quick else 4)
    if not args.skip_backup:
        await bench_backup(5000 if args.quick else args.resources, 5.0 if args.quick else 15.0)


if __name__ == "__main__":
    asyncio.run(main())
