"""Benchmark how promptly the daemon answers while something slow or hostile goes on; prints
one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_responsiveness.py [--quick] [--only NAME]

These are the timings the tests used to assert (the tests keep the functional half):

- loop_lag_during_commits: how late a 1 ms timer fires while batches of writes commit
  (tests/test_store.py asserts only a generous bound);
- read_beside_open_write: a read while another connection holds a write transaction open;
- login_failure_costs: the time of each kind of failed login next to one password hash
  (an unknown name must cost as much as a wrong password: nothing to learn from timing);
- health_during_hashing: /health while five logins hash, next to one hash;
- manual_trigger: from POST .../reconcile to the reconcile starting (drift is 300 s);
- backlog_drain: 3,000 overdue re-checks and one fresh change: where the fresh one was
  served, and how long the backlog took to drain;
- stop_with_stubborn_plugin: stopping plugins when one ignores the shutdown (grace 0.5 s);
- slow_drip_cutoff: a body sent a byte at a time, cut off by --body-timeout 1;
- expensive_schema_cutoff: a catastrophic pattern cut off by the validation budget, and
  /health right after; large_unique_array: 20,000 items checked for uniqueness;
- writes_beside_stalled_reader: 40 writes of 20 kB while a stream client reads nothing;
- stop_with_open_streams / stop_with_misbehaving_plugins: a real `no8sd` stopping with
  five open event streams, and with the misbehaving test plugins (grace 2 s), plus
  /health latency while those plugins crash, hang and block the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from conftest import WIDGET_SCHEMA, Daemon, make_settings  # noqa: E402
from no8sd_testplugins.widgets import (  # noqa: E402
    StubbornPlugin,
    WidgetReconciler,
)

from no8sd.app import create_app  # noqa: E402
from no8sd.core import credentials  # noqa: E402
from no8sd.store.db import Database  # noqa: E402

ADMIN = ("bench", "bench-password-123")
BENCHES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {}


def emit(name: str, **figures: Any) -> None:
    """Print one result line."""
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def bench(fn: Callable[[argparse.Namespace], Awaitable[None]]) -> Any:
    BENCHES[fn.__name__] = fn
    return fn


class InProcess:
    """A real aiohttp server on a temporary SQLite file, with the given plugins."""

    def __init__(self, *plugins: Any, **overrides: Any) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        settings = make_settings(Path(self._tmp.name), **overrides)
        self.client = TestClient(TestServer(create_app(settings, plugins=list(plugins))))

    async def __aenter__(self) -> TestClient:
        await self.client.start_server()
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        self._tmp.cleanup()


async def until(predicate: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(0.01)
    raise RuntimeError("condition not met")


async def widget_type(client: Any) -> None:
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA})
    assert resp.status == 201, await resp.text()


async def widget(client: Any, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/resources", json={
        "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": spec})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def kdf_seconds() -> float:
    """The unloaded cost of one password hash: the fastest of a few."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        credentials.hash_password("calibration")
        best = min(best, time.perf_counter() - started)
    return best


# ---- the store -----------------------------------------------------------------------


@bench
async def loop_lag_during_commits(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "lag.db")
        await db.open()
        loop = asyncio.get_running_loop()
        lateness: list[float] = []
        writing = True

        async def ticker() -> None:
            while writing:
                due = loop.time() + 0.001
                await asyncio.sleep(0.001)
                lateness.append(loop.time() - due)

        def insert(tx: Any, i: int) -> None:
            tx.execute("INSERT INTO resource_types (name, version, schema, created_at,"
                       " updated_at) VALUES (?, 'v1', ?, 0, 0)", (f"T{i}", "{}" + " " * 4000))

        task = asyncio.create_task(ticker())
        rounds = 5 if args.quick else 20
        started = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(db.write(insert, r * 50 + i) for i in range(50)))
        elapsed = time.perf_counter() - started
        writing = False
        await task
        await db.close()
    lateness.sort()
    emit("loop_lag_during_commits", writes=rounds * 50, seconds=round(elapsed, 3),
         ticks=len(lateness), ms_median=ms(statistics.median(lateness)),
         ms_p99=ms(lateness[int(len(lateness) * 0.99)]), ms_max=ms(lateness[-1]))


@bench
async def read_beside_open_write(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "read.db"
        db = Database(path)
        await db.open()
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO resource_types (name, version, schema, created_at,"
                      " updated_at) VALUES ('slow', 'v1', '{}', 0, 0)")
        times = []
        for _ in range(20 if args.quick else 200):
            started = time.perf_counter()
            await db.fetchall("SELECT name FROM resource_types")
            times.append(time.perf_counter() - started)
        other.execute("COMMIT")
        other.close()
        await db.close()
    emit("read_beside_open_write", reads=len(times), ms_median=ms(statistics.median(times)),
         ms_max=ms(max(times)))


# ---- logins ----------------------------------------------------------------------------


@bench
async def login_failure_costs(args: argparse.Namespace) -> None:
    kdf = kdf_seconds()
    async with InProcess(auth="token", initial_admin=ADMIN,
                         login_max_failures_user=1000,
                         login_max_failures_address=1000) as client:
        login = await client.post("/api/v1/auth/login",
                                  json={"username": ADMIN[0], "password": ADMIN[1]})
        token = (await login.json())["access_token"]
        resp = await client.post("/api/v1/users", headers={"Authorization": f"Bearer {token}"},
                                 json={"username": "sus", "password": "user-password-123"})
        user = await resp.json()
        await client.delete(f"/api/v1/users/{user['id']}",
                            headers={"Authorization": f"Bearer {token}"})
        rounds = 3 if args.quick else 10
        for kind, (username, password) in {
                "unknown_user": ("nobody", "whatever-password"),
                "wrong_password": (ADMIN[0], "wrong-password"),
                "suspended_user": ("sus", "user-password-123"),
                "empty": ("", ""), "huge_password": (ADMIN[0], "x" * 4096)}.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                resp = await client.post("/api/v1/auth/login",
                                         json={"username": username, "password": password})
                times.append(time.perf_counter() - started)
                assert resp.status == 401
            emit("login_failure_costs", kind=kind, ms_median=ms(statistics.median(times)),
                 ms_min=ms(min(times)), kdf_ms=ms(kdf),
                 ratio_to_kdf=round(min(times) / kdf, 2))


@bench
async def health_during_hashing(args: argparse.Namespace) -> None:
    kdf = kdf_seconds()
    async with InProcess(auth="token", initial_admin=ADMIN) as client:
        async def attempt() -> None:
            resp = await client.post("/api/v1/auth/login",
                                     json={"username": ADMIN[0], "password": ADMIN[1]})
            assert resp.status == 200

        await attempt()  # warm-up
        latencies = []
        for _ in range(1 if args.quick else 5):
            logins = asyncio.gather(*(attempt() for _ in range(5)))
            await asyncio.sleep(0.01)
            while not logins.done():
                started = time.perf_counter()
                assert (await client.get("/health")).status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)
            await logins
    emit("health_during_hashing", requests=len(latencies),
         ms_median=ms(statistics.median(latencies)), ms_max=ms(max(latencies)),
         kdf_ms=ms(kdf), median_to_kdf=round(statistics.median(latencies) / kdf, 3))


# ---- reconciling -----------------------------------------------------------------------


@bench
async def manual_trigger(args: argparse.Namespace) -> None:
    plugin = WidgetReconciler()
    async with InProcess(plugin) as client:
        await widget_type(client)
        created = await widget(client, "w", {"size": 1})

        async def ready() -> bool:
            body = await (await client.get(f"/api/v1/resources/{created['id']}")).json()
            return bool(body["status"] == "ready")

        await until(ready)
        times = []
        for _ in range(5 if args.quick else 30):
            count = len(plugin.seen)
            started = time.perf_counter()
            await client.post(f"/api/v1/resources/{created['id']}/reconcile")
            await until(lambda count=count: _async(len(plugin.seen) > count))
            times.append(time.perf_counter() - started)
            await until(ready)
    emit("manual_trigger", triggers=len(times), ms_median=ms(statistics.median(times)),
         ms_max=ms(max(times)))


async def _async(value: Any) -> Any:
    return value


@bench
async def backlog_drain(args: argparse.Namespace) -> None:
    plugin = WidgetReconciler()
    backlog = 500 if args.quick else 3000
    async with InProcess(plugin) as client:
        await widget_type(client)
        app = client.server.app
        from no8sd.api import keys

        db = app[keys.CORE].db
        type_id = (await (await client.get("/api/v1/resource-types/Widget/v1")).json())["id"]
        overdue = time.time() - 3600

        def insert_backlog(tx: Any) -> None:
            tx.conn.executemany(
                "INSERT INTO resources (name, resource_type_id, resource_type_name,"
                " resource_type_version, spec, spec_hash, status, finalizers,"
                " next_reconcile_time, due_class, created_at, updated_at, last_reconcile_time,"
                " generation, observed_generation) VALUES (?, ?, 'Widget', 'v1', '{}', '',"
                " 'ready', '[\"widgets\"]', ?, 1, ?, ?, ?, 1, 1)",
                [(f"old-{i}", type_id, overdue + i * 0.001, overdue, overdue, overdue)
                 for i in range(backlog)])
            tx.wake.add("Widget")

        started = time.perf_counter()
        await db.write(insert_backlog)
        fresh = await widget(client, "fresh", {"size": 1})
        await until(lambda: _async(any(rid == fresh["id"] for rid, _, _ in plugin.seen)))
        fresh_after = time.perf_counter() - started
        position = next(i for i, (rid, _, _) in enumerate(plugin.seen) if rid == fresh["id"])
        await until(lambda: _async(len({rid for rid, _, _ in plugin.seen}) == backlog + 1),
                    timeout=600)
        drained = time.perf_counter() - started
    emit("backlog_drain", backlog=backlog, fresh_position=position,
         fresh_ms=ms(fresh_after), drain_seconds=round(drained, 2),
         reconciles_per_second=round(backlog / drained, 1))


@bench
async def stop_with_stubborn_plugin(args: argparse.Namespace) -> None:
    from no8sd.core.hub import Hub
    from no8sd.host.context import PluginServices
    from no8sd.host.reconcilers import PluginHost

    times = []
    for _ in range(1 if args.quick else 3):
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(Path(tmp) / "stop.db")
            await db.open()
            host = PluginHost(restart_base=0.05)
            host.discover(entry_points=False, instances=[StubbornPlugin(), WidgetReconciler()])
            host.start(PluginServices(db, Hub()))
            await until(lambda host=host: _async(
                {s.state for s in host.plugins.values()} == {"running"}))
            started = time.perf_counter()
            await host.stop(grace=0.5)
            times.append(time.perf_counter() - started)
            await db.close()
    emit("stop_with_stubborn_plugin", grace_seconds=0.5, seconds_max=round(max(times), 3))


# ---- hostile clients -----------------------------------------------------------------


@bench
async def slow_drip_cutoff(args: argparse.Namespace) -> None:
    async with InProcess(WidgetReconciler(), body_timeout=1.0) as client:
        await widget_type(client)
        body = json.dumps({"name": "slow", "resource_type_name": "Widget",
                           "resource_type_version": "v1", "spec": {"size": 1}}).encode()
        head = (b"POST /api/v1/resources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        started = time.perf_counter()
        writer.write(head)

        async def drip() -> None:
            for byte in body:
                await asyncio.sleep(0.2)
                writer.write(bytes([byte]))

        task = asyncio.create_task(drip())
        answer = await asyncio.wait_for(reader.read(65536), 30)
        took = time.perf_counter() - started
        task.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    emit("slow_drip_cutoff", body_timeout_seconds=1.0, seconds=round(took, 3))


@bench
async def expensive_schema_cutoff(args: argparse.Namespace) -> None:
    from test_hostile_input import EXPENSIVE, SchemaTypes

    async with InProcess(SchemaTypes()) as client:
        for type_name in sorted(EXPENSIVE):
            schema, spec = EXPENSIVE[type_name]
            resp = await client.post("/api/v1/resource-types", json={
                "name": type_name, "version": "v1", "schema": schema})
            assert resp.status == 201, await resp.text()
            started = time.perf_counter()
            resp = await client.post("/api/v1/resources", json={
                "name": "x", "resource_type_name": type_name, "resource_type_version": "v1",
                "spec": spec})
            took = time.perf_counter() - started
            assert resp.status == 400, await resp.text()
            started = time.perf_counter()
            assert (await client.get("/health")).status == 200
            health = time.perf_counter() - started
            emit("expensive_schema_cutoff", schema=type_name, seconds=round(took, 3),
                 health_ms_after=ms(health))
        plain = {"type": "object", "properties": {
            "items": {"type": "array", "uniqueItems": True}}}
        resp = await client.post("/api/v1/resource-types", json={
            "name": "Plain", "version": "v1", "schema": plain})
        assert resp.status == 201
        many = [{"i": i} for i in range(20_000)]
        started = time.perf_counter()
        resp = await client.post("/api/v1/resources", json={
            "name": "many", "resource_type_name": "Plain", "resource_type_version": "v1",
            "spec": {"items": many}})
        assert resp.status == 201, await resp.text()
        emit("large_unique_array", items=len(many),
             seconds=round(time.perf_counter() - started, 3))


@bench
async def writes_beside_stalled_reader(args: argparse.Namespace) -> None:
    async with InProcess(WidgetReconciler()) as client:
        await widget_type(client)
        _reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        big = {"size": 1, "outputs": {"blob": "x" * 20_000}}
        started = time.perf_counter()
        for i in range(40):
            await widget(client, f"w{i}", big)
        took = time.perf_counter() - started
        writer.close()
    emit("writes_beside_stalled_reader", writes=40, seconds=round(took, 3))


# ---- a real daemon ---------------------------------------------------------------------


def _daemon(tmp: str, *args: str) -> Daemon:
    return Daemon(["--db", str(Path(tmp) / "d.db"), "--port", "0", "--no-entry-points",
                   *args]).start()


def _stop(daemon: Daemon) -> float:
    started = time.perf_counter()
    assert daemon.stop(timeout=120) == 0, daemon.output
    return time.perf_counter() - started


@bench
async def stop_with_open_streams(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = await asyncio.to_thread(_daemon, tmp, "--shutdown-grace", "20")
        async with aiohttp.ClientSession(daemon.url) as http:
            streams = [await http.get("/api/v1/events") for _ in range(5)]
            took = await asyncio.to_thread(_stop, daemon)
            for stream in streams:
                stream.close()
    emit("stop_with_open_streams", streams=5, grace_seconds=20, seconds=round(took, 3))


@bench
async def stop_with_misbehaving_plugins(args: argparse.Namespace) -> None:
    from test_misbehaving_plugins import GRACE, _args

    with tempfile.TemporaryDirectory() as tmp:
        daemon = await asyncio.to_thread(_daemon, tmp, *_args())
        async with aiohttp.ClientSession(daemon.url) as http:
            for type_name in ("Widget", "HangsInReconcile", "BlocksLoop"):
                schema = WIDGET_SCHEMA if type_name == "Widget" else {"type": "object"}
                await http.post("/api/v1/resource-types", json={
                    "name": type_name, "version": "v1", "schema": schema})
            for type_name, spec in (("HangsInReconcile", {"x": 1}),
                                    ("BlocksLoop", {"block": 0.8}), ("Widget", {"size": 1})):
                await http.post("/api/v1/resources", json={
                    "name": type_name.lower(), "resource_type_name": type_name,
                    "resource_type_version": "v1", "spec": spec})
            latencies = []
            for _ in range(50 if args.quick else 300):
                started = time.perf_counter()
                async with http.get("/health") as resp:
                    assert resp.status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
        took = await asyncio.to_thread(_stop, daemon)
    latencies.sort()
    emit("health_beside_misbehaving_plugins", requests=len(latencies),
         ms_median=ms(statistics.median(latencies)),
         ms_p99=ms(latencies[int(len(latencies) * 0.99)]), ms_max=ms(latencies[-1]))
    emit("stop_with_misbehaving_plugins", grace_seconds=GRACE, seconds=round(took, 3))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--only", choices=sorted(BENCHES), action="append",
                        help="run only this benchmark (repeatable)")
    args = parser.parse_args()
    for name, fn in BENCHES.items():
        if not args.only or name in args.only:
            await fn(args)


if __name__ == "__main__":
    # The daemon's own log lines would drown the figures.
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(main())
