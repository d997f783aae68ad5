"""Soak test: steady mixed load on a real `no8sd` for a long time; JSON lines out.

Run by hand (not by CI):
    python tests/bench/soak.py [--duration 600] [--rate 150] [--watchers 20]
    python tests/bench/soak.py --mix updates --rate 20 --duration 1800   # point 6 of issue 11

It starts `no8sd` on a temporary database with a no-op reconciler and a short drift
interval (so reconciles run all the time, not only after writes), then holds a steady
request rate of creates, updates, gets, lists and deletes over a bounded population of
resources while SSE watchers follow /api/v1/events. `--mix updates` instead creates the
population first and then only updates it (the steady write load of a box that manages
a fixed set of things). Every `--report-every` seconds (default: a minute) it prints one
JSON line (throughput, p50/p99 latency per operation, errors, daemon RSS, database and
WAL size, events and reconciles seen); at the end a summary line with RSS at start
(after warm-up) and end, RSS growth over the last `--tail` seconds, and the largest WAL.
Exit code 1 if any request failed, a watcher saw a gap or duplicate, RSS grew by more
than `--rss-bound-mib` after warm-up or by more than `--tail-rss-bound-mib` over the
tail, or the WAL grew past `--wal-bound-mib`.

The reconciler is tests/bench/noop_plugin.py's, which keeps nothing per reconcile, so
what grows is the daemon's own memory (the test suite's widget plugin records every
reconcile it sees for assertions, which a long soak would count as a leak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
SCHEMA = {"type": "object", "properties": {"size": {"type": "integer"},
                                           "note": {"type": "string"}}}


def emit(kind: str, **figures: Any) -> None:
    """Print one JSON line."""
    print(json.dumps({"soak": kind, **figures}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def file_mib(path: Path | None) -> float | None:
    """Size of a file in MiB (0 when it does not exist; None when unknown)."""
    if path is None:
        return None
    try:
        return round(path.stat().st_size / 2**20, 2)
    except FileNotFoundError:
        return 0.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


class Load:
    """The shared state of the load generators."""

    def __init__(self, url: str, population: int, rng: random.Random, mix: str,
                 type_name: str) -> None:
        self.url = url
        self.type_name = type_name
        self.mix = mix
        self.population = population
        self.rng = rng
        self.live: dict[int, int] = {}  # resource id -> size last written
        self.counter = 0
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.ops = 0

    def pick(self) -> str:
        if self.mix == "updates":
            return "create" if len(self.live) < self.population else "update"
        roll = self.rng.random()
        if not self.live or (roll < 0.15 and len(self.live) < self.population):
            return "create"
        if len(self.live) >= self.population and roll < 0.08:
            return "delete"
        if roll < 0.45:
            return "update"
        if roll < 0.95:
            return "get"
        return "list"

    async def one(self, http: aiohttp.ClientSession) -> None:
        op = self.pick()
        api = f"{self.url}/api/v1/resources"
        self.counter += 1
        started = time.monotonic()
        rid = self.rng.choice(list(self.live)) if self.live and op != "create" else None
        try:
            if op == "create":
                async with http.post(api, json={
                        "name": f"soak-{self.counter}", "resource_type_name": self.type_name,
                        "resource_type_version": "v1",
                        "spec": {"size": self.counter, "note": "x" * 200}}) as resp:
                    body = await resp.json()
                    ok = resp.status == 201
                    if ok:
                        self.live[body["id"]] = self.counter
            elif op == "update":
                async with http.put(f"{api}/{rid}", json={
                        "spec": {"size": self.counter, "note": "y" * 200}}) as resp:
                    body = await resp.json()
                    # A resource deleted by a concurrent operation is a legitimate 404/409.
                    ok = resp.status == 200 or (resp.status in (404, 409)
                                                and rid not in self.live)
            elif op == "delete":
                self.live.pop(rid, None)
                async with http.delete(f"{api}/{rid}") as resp:
                    body = await resp.json()
                    ok = resp.status in (202, 404)
            elif op == "get":
                async with http.get(f"{api}/{rid}") as resp:
                    body = await resp.json()
                    ok = resp.status == 200 or (resp.status == 404 and rid not in self.live)
            else:
                async with http.get(api, params={"limit": 100}) as resp:
                    body = await resp.json()
                    ok = resp.status == 200
            if not ok:
                self.errors.append(f"{op} {resp.status}: {str(body)[:200]}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.errors.append(f"{op}: {type(exc).__name__}: {exc}")
        self.latency[op].append(time.monotonic() - started)
        self.ops += 1


class Watcher:
    """One SSE client counting events and checking that ids only ever increase by one."""

    def __init__(self) -> None:
        self.events = 0
        self.reconciled = 0
        self.last_id: int | None = None
        self.problems: list[str] = []

    async def run(self, http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(f"{url}/api/v1/events", timeout=aiohttp.ClientTimeout(
                total=None, sock_read=120)) as resp:
            if resp.status != 200:
                self.problems.append(f"watch answered {resp.status}")
                return
            event_id = None
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: ") and event_id is not None:
                    if self.last_id is not None and event_id != self.last_id + 1:
                        self.problems.append(f"id {event_id} after {self.last_id}")
                    self.last_id = event_id
                    self.events += 1
                    self.reconciled += line == "event: RECONCILED"


class Attached:
    """Stands in for the subprocess when soaking a daemon started elsewhere."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def terminate(self) -> None:
        """Leave a daemon we did not start running."""

    def wait(self, _timeout: float) -> str:
        return "left running"

    def kill(self) -> None:
        """Never kill a daemon we did not start."""


async def wait_healthy(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("daemon did not become healthy")


async def soak(args: argparse.Namespace) -> int:
    if args.url:
        # Soak a daemon that is already running (started with tests/bench/noop_plugin.py).
        url, daemon = args.url.rstrip("/"), Attached(args.pid)
        db_path = Path(args.db) if args.db else None
    else:
        folder = Path(tempfile.mkdtemp(prefix="no8sd-soak-"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), *args.pythonpath])
        db_path = folder / "soak.db"
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("no8sd")), "--db", str(db_path),
             "--port", str(port), "--no-entry-points", "--log-level", "WARNING",
             "--plugin", args.plugin,
             "--drift-interval", str(args.drift), "--synchronous", args.synchronous,
             *args.daemon_arg],
            env=env)
    wal_path = db_path.with_name(db_path.name + "-wal") if db_path else None
    rng = random.Random(args.seed)
    connector = aiohttp.TCPConnector(limit=args.concurrency + args.watchers + 4)
    exit_code = 0
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            await wait_healthy(http, url)
            async with http.post(f"{url}/api/v1/resource-types", json={
                    "name": args.type, "version": "v1", "schema": SCHEMA}) as resp:
                assert resp.status in (201, 409), await resp.text()  # 409: attached
            load = Load(url, args.population, rng, args.mix, args.type)
            watchers = [Watcher() for _ in range(args.watchers)]
            watch_tasks = [asyncio.create_task(w.run(http, url)) for w in watchers]
            emit("start", duration_s=args.duration, target_rate=args.rate,
                 concurrency=args.concurrency, watchers=args.watchers,
                 population=args.population, drift_interval_s=args.drift,
                 synchronous=args.synchronous, seed=args.seed, mix=args.mix,
                 daemon_args=args.daemon_arg, rss_mib=rss_mib(daemon.pid),
                 malloc_arena_max=os.environ.get("MALLOC_ARENA_MAX"))
            started = time.monotonic()
            stop_at = started + args.duration
            interval = args.concurrency / args.rate  # per worker, for the target rate

            async def worker() -> None:
                next_at = time.monotonic()
                while time.monotonic() < stop_at:
                    await load.one(http)
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

            workers = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
            rss_start = None
            rss_curve: list[tuple[float, float]] = []  # (elapsed s, RSS MiB) per window
            wal_max = 0.0
            window_ops, window_events, window_reconciled = 0, 0, 0
            all_latency: list[float] = []
            while time.monotonic() < stop_at:
                await asyncio.sleep(min(args.report_every, max(0.0, stop_at - time.monotonic())))
                elapsed = time.monotonic() - started
                rss_now = rss_mib(daemon.pid)
                if rss_start is None and elapsed >= args.warmup:
                    rss_start = rss_now
                rss_curve.append((elapsed, rss_now))
                wal_now = file_mib(wal_path)
                wal_max = max(wal_max, wal_now or 0.0)
                latency, load.latency = load.latency, defaultdict(list)
                window = [v for values in latency.values() for v in values]
                all_latency.extend(window)
                events = sum(w.events for w in watchers) // max(1, len(watchers))
                reconciled = sum(w.reconciled for w in watchers) // max(1, len(watchers))
                emit("window", elapsed_s=round(elapsed, 1),
                     ops_per_s=round((load.ops - window_ops) / args.report_every, 1),
                     p50_ms=percentile(window, 0.50), p99_ms=percentile(window, 0.99),
                     p99_ms_by_op={op: percentile(v, 0.99) for op, v in latency.items()},
                     events_per_s=round((events - window_events) / args.report_every, 1),
                     reconciles_per_s=round((reconciled - window_reconciled)
                                            / args.report_every, 1),
                     live_resources=len(load.live), errors=len(load.errors),
                     rss_mib=rss_now, db_mib=file_mib(db_path), wal_mib=wal_now)
                window_ops, window_events, window_reconciled = load.ops, events, reconciled
            await asyncio.gather(*workers)
            total = time.monotonic() - started
            rss_end = rss_mib(daemon.pid)
            for task in watch_tasks:
                task.cancel()
            problems = [p for w in watchers for p in w.problems]
            growth = round(rss_end - (rss_start or rss_end), 1)
            tail_from = total - args.tail
            tail_base = next((rss for at, rss in rss_curve if at >= tail_from), rss_end)
            tail_growth = round(rss_end - tail_base, 1)
            summary = dict(
                duration_s=round(total, 1), requests=load.ops,
                requests_per_s=round(load.ops / total, 1),
                p50_ms=percentile(all_latency, 0.50), p99_ms=percentile(all_latency, 0.99),
                max_ms=percentile(all_latency, 1.0),
                events_per_watcher=sum(w.events for w in watchers) // max(1, len(watchers)),
                reconciles_seen=sum(w.reconciled for w in watchers) // max(1, len(watchers)),
                errors=len(load.errors), first_errors=load.errors[:5],
                watcher_problems=problems[:5], rss_start_mib=rss_start, rss_end_mib=rss_end,
                rss_growth_mib=growth, rss_bound_mib=args.rss_bound_mib,
                tail_s=args.tail, rss_tail_growth_mib=tail_growth,
                tail_rss_bound_mib=args.tail_rss_bound_mib,
                db_end_mib=file_mib(db_path), wal_max_mib=wal_max,
                wal_bound_mib=args.wal_bound_mib,
                rss_curve_mib=[rss for _, rss in rss_curve])
            ok = (not load.errors and not problems and growth <= args.rss_bound_mib
                  and tail_growth <= args.tail_rss_bound_mib
                  and wal_max <= args.wal_bound_mib)
            emit("summary", ok=ok, **summary)
            exit_code = 0 if ok else 1
    finally:
        daemon.terminate()
        try:
            code = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = "killed"
        emit("stopped", daemon_exit=code)
    return exit_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=150.0, help="target requests per second")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--watchers", type=int, default=20, help="SSE watchers")
    parser.add_argument("--population", type=int, default=500, help="most live resources")
    parser.add_argument("--drift", type=float, default=5.0, help="drift interval (seconds)")
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument("--mix", default="mixed", choices=["mixed", "updates"],
                        help="mixed: creates, updates, gets, lists, deletes; updates: create "
                             "the population, then only update it")
    parser.add_argument("--report-every", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds before the starting RSS is taken")
    parser.add_argument("--rss-bound-mib", type=float, default=64.0,
                        help="largest accepted RSS growth after warm-up")
    parser.add_argument("--tail", type=float, default=1200.0,
                        help="seconds at the end over which RSS growth is also bounded")
    parser.add_argument("--tail-rss-bound-mib", type=float, default=4.0,
                        help="largest accepted RSS growth over the tail")
    parser.add_argument("--wal-bound-mib", type=float, default=64.0,
                        help="largest accepted WAL file size")
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="extra daemon argument (repeatable), e.g. --daemon-arg=--no-metrics")
    parser.add_argument("--plugin", default="noop_plugin:NoopReconciler",
                        help="the reconciler (module:Class on the daemon's PYTHONPATH)")
    parser.add_argument("--type", default="Bench", help="the resource type it owns")
    parser.add_argument("--pythonpath", action="append", default=[],
                        help="extra folder for the daemon's PYTHONPATH (repeatable)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="soak this running daemon instead of starting one "
                                      "(it must run tests/bench/noop_plugin.py)")
    parser.add_argument("--pid", type=int, default=0, help="its process id, for RSS")
    parser.add_argument("--db", help="its database file, for DB and WAL sizes")
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
