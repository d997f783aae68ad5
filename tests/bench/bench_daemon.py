"""Benchmark the real daemon; prints one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_daemon.py [--quick]

It starts `no8sd` as a subprocess on a temporary database with a no-op BaseReconciler,
and, in the same run and with the same load generator, an aiohttp hello-world server as
the ceiling; throughput figures are also given as a ratio of that ceiling, because these
machines are shared and noisy and absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).parent
ceiling_rps: float | None = None


def emit(name: str, **figures: Any) -> None:
    """Print one result line."""
    line = {"benchmark": name, **figures}
    if ceiling_rps and "rps" in figures:
        line["ratio_of_ceiling"] = round(figures["rps"] / ceiling_rps, 3)
    print(json.dumps(line), flush=True)


def pct(values: list[float], p: float) -> float:
    """Return the p-th percentile (0-100) in milliseconds, values given in seconds."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return round(ordered[index] * 1000, 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_healthy(url: str, timeout: float = 30) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < timeout:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.005)
    raise RuntimeError(f"{url} never became healthy")


async def load(http: aiohttp.ClientSession, make_request: Any, total: int,
               concurrency: int) -> tuple[float, list[float], int]:
    """Run `total` requests with `concurrency` workers; return (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            method, url, body = make_request(i)
            started = time.perf_counter()
            async with http.request(method, url, json=body) as resp:
                await resp.read()
                if resp.status >= 300:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


async def bench_ceiling(seconds_total: int) -> None:
    global ceiling_rps
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "hello.py"), str(port)])
    try:
        url = f"http://127.0.0.1:{port}/"
        await wait_healthy(url)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await load(http, lambda i: ("GET", url, None), 500, 16)
            took, lat, errors = await load(http, lambda i: ("GET", url, None), seconds_total, 16)
        ceiling_rps = len(lat) / took
        emit("hello_world_ceiling", rps=round(ceiling_rps), p50_ms=pct(lat, 50),
             p99_ms=pct(lat, 99), errors=errors, concurrency=16)
    finally:
        proc.terminate()
        proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0

    await bench_ceiling(int(8000 * scale))

    tmp = Path(tempfile.mkdtemp(prefix="no8sd-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    script = Path(sys.executable).with_name("no8sd")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "no8sd"]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*command, "--db", str(tmp / "bench.db"), "--port", str(port), "--no-entry-points",
         "--plugin", "noop_plugin:NoopReconciler", "--log-level", "WARNING",
         "--synchronous", args.synchronous, "--max-streams", "1000"],
        env=env)
    try:
        await wait_healthy(base + "/health")
        start_time = time.monotonic() - started
        await asyncio.sleep(1.0)
        emit("start_and_idle", start_to_first_health_200_ms=round(start_time * 1000, 1),
             idle_rss_mib=round(rss_kib(proc.pid) / 1024, 1))
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(base, connector=connector) as http:
            await http.post("/api/v1/resource-types", json={
                "name": "Bench", "version": "v1",
                "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}})
            await bench_creates(http, scale)
            await bench_reads(http, scale)
            await bench_end_to_end(http, base, scale)
            await bench_sse(base, http, scale)
        emit("after_load", rss_mib=round(rss_kib(proc.pid) / 1024, 1))
    finally:
        proc.terminate()
        proc.wait()


async def bench_creates(http: aiohttp.ClientSession, scale: float) -> None:
    for concurrency, total in ((1, 500), (16, 3000), (64, 3000)):
        total = max(50, int(total * scale))
        prefix = f"c{concurrency}-"

        def create(i: int, prefix: str = prefix) -> tuple[str, str, dict[str, Any]]:
            return ("POST", "/api/v1/resources", {
                "name": f"{prefix}{i}", "resource_type_name": "Bench",
                "resource_type_version": "v1", "spec": {"n": i}})

        took, lat, errors = await load(http, create, total, concurrency)
        emit("create", concurrency=concurrency, requests=total, rps=round(total / took),
             p50_ms=pct(lat, 50), p99_ms=pct(lat, 99), errors=errors)
        await wait_all_ready(http)


async def wait_all_ready(http: aiohttp.ClientSession, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with http.get("/api/v1/resources?status=pending&limit=1") as resp:
            pending = await resp.json()
        if not pending:
            return
        await asyncio.sleep(0.05)


async def bench_reads(http: aiohttp.ClientSession, scale: float) -> None:
    async with http.get("/api/v1/resources?limit=1000") as resp:
        ids = [r["id"] for r in await resp.json()]
    total = int(8000 * scale)
    took, lat, errors = await load(
        http, lambda i: ("GET", f"/api/v1/resources/{random.choice(ids)}", None), total, 16)
    emit("get_by_id", concurrency=16, requests=total, rps=round(total / took),
         p50_ms=pct(lat, 50), p99_ms=pct(lat, 99), errors=errors)
    total = int(1000 * scale)
    took, lat, errors = await load(
        http, lambda i: ("GET", "/api/v1/resources?limit=100", None), total, 16)
    emit("list_100", concurrency=16, requests=total, rps=round(total / took),
         p50_ms=pct(lat, 50), p99_ms=pct(lat, 99), errors=errors)


async def _ready_times(base: str, names: set[str], ready_at: dict[str, float],
                       connected: asyncio.Event) -> None:
    """Watch the event stream and note when each named resource first reads `ready`."""
    async with aiohttp.ClientSession() as watch, watch.get(
            base + "/api/v1/events", timeout=aiohttp.ClientTimeout(total=None)) as resp:
        connected.set()
        async for raw in resp.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            data = json.loads(line[6:])
            name = data["resource_name"]
            if (name in names and name not in ready_at
                    and data["resource_data"]["status"] == "ready"):
                ready_at[name] = time.perf_counter()
                if len(ready_at) == len(names):
                    return


async def bench_end_to_end(http: aiohttp.ClientSession, base: str, scale: float) -> None:
    for concurrency, total in ((1, 300), (64, 1000)):
        total = max(50, int(total * scale))
        names = [f"e2e{concurrency}-{i}" for i in range(total)]
        ready_at: dict[str, float] = {}
        created_at: dict[str, float] = {}
        connected = asyncio.Event()
        watcher = asyncio.create_task(_ready_times(base, set(names), ready_at, connected))
        await connected.wait()

        def create(i: int, names: list[str] = names,
                   created_at: dict[str, float] = created_at) -> tuple[str, str, dict[str, Any]]:
            created_at[names[i]] = time.perf_counter()
            return ("POST", "/api/v1/resources", {
                "name": names[i], "resource_type_name": "Bench", "resource_type_version": "v1",
                "spec": {"n": i}})

        started = time.perf_counter()
        await load(http, create, total, concurrency)
        await asyncio.wait_for(watcher, 120)
        took = time.perf_counter() - started
        latencies = [ready_at[n] - created_at[n] for n in names]
        emit("create_to_ready", concurrency=concurrency, resources=total,
             resources_per_s=round(total / took), p50_ms=pct(latencies, 50),
             p99_ms=pct(latencies, 99))


_TIMESTAMP = re.compile(rb'"timestamp":\s*"([^"]+)"')


async def watch_child(url: str, watchers: int, events: int) -> None:
    """Run `watchers` SSE clients in this (separate) process; print delivery latencies."""
    latencies: list[float] = []
    connected = 0

    async def watch() -> None:
        nonlocal connected
        seen = 0
        buffer = b""
        async with aiohttp.ClientSession() as session, session.get(
                url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            connected += 1
            if connected == watchers:
                print("ready", flush=True)
            async for chunk in resp.content.iter_any():
                arrived = time.time()
                buffer += chunk
                *frames, buffer = buffer.split(b"\n\n")
                for frame in frames:
                    if b"event: CREATED" not in frame or b'"resource_name":"sse-' not in frame:
                        continue
                    sent = datetime.fromisoformat(
                        _TIMESTAMP.search(frame).group(1).decode()).timestamp()
                    latencies.append(arrived - sent)
                    seen += 1
                if seen >= events:
                    return

    await asyncio.gather(*(watch() for _ in range(watchers)))
    print(json.dumps(latencies), flush=True)


async def bench_sse(base: str, http: aiohttp.ClientSession, scale: float) -> None:
    watchers = 100
    events = max(20, int(200 * scale))
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--watch-child",
        base + "/api/v1/events?resource_type=Bench", str(watchers), str(events),
        stdout=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024)
    assert child.stdout is not None
    assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"ready"
    for i in range(events):
        async with http.post("/api/v1/resources", json={
                "name": f"sse-{i}", "resource_type_name": "Bench",
                "resource_type_version": "v1", "spec": {"n": i}}) as resp:
            await resp.read()
        await asyncio.sleep(0.02)
    latencies = json.loads(await asyncio.wait_for(child.stdout.readline(), 120))
    await child.wait()
    emit("sse_delivery", watchers=watchers, events_per_watcher=events,
         deliveries=len(latencies), p50_ms=pct(latencies, 50), p99_ms=pct(latencies, 99),
         mean_ms=round(statistics.mean(latencies) * 1000, 2),
         note="latency from the event's commit timestamp to its arrival at a watcher "
              "(watchers run in a separate process)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--watch-child":
        asyncio.run(watch_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        asyncio.run(main())
