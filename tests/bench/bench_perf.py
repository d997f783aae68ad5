"""Issue 14's performance table in one command, with its ceiling and floors from the same run.

Run by hand from the repository (not by CI):

    python tests/bench/bench_perf.py [--quick] [--baseline-ref REF] [--resources 100000]

It prints one JSON line per measurement, then one JSON line per row of the table
(`"row": ...`), then the table in markdown: figure | value | ratio to the ceiling or
floor | goal | met?, for the daemon of this tree and, with --baseline-ref, for that git
ref too (its `no8sd/` extracted with `git archive` into a temporary folder; both trees
run from plain copies with this interpreter through PYTHONPATH, so neither is the
editable install). Throughput rounds and start-up turns alternate their order between
the trees so drift on a shared machine hits both alike.

What is measured, and against what:
- Ceiling: tests/bench/hello.py (an aiohttp hello-world) at concurrency 16, by the same
  load generator as every other throughput figure, re-measured in every round. Each
  rate is given as a ratio of it twice: of its rate, and "by CPU", the hello-world's
  server CPU time per request over the daemon's (per resource made ready, for the
  reconcile rows: from the first create until the last is ready). Other work on a shared
  machine moves the first; the second is the ratio each would have with a core to
  itself, and moves much less.
- Load generator: a minimal HTTP/1.1 keep-alive client on asyncio's protocol API, in a
  process of its own (`--clients N` splits the connections over N processes). It costs
  far less per request than aiohttp's client, so at the hello-world's rate it does not
  saturate its core; every load line reports the client's and the server's CPU share
  (1.0 = one core busy), which shows which side was the bottleneck. The ceiling is also
  measured once with aiohttp's client (as the issue first did), for reference.
- Floors: the time of `python -c "import aiohttp.web"` and the RSS of a process that only
  imports aiohttp.web, measured in turns beside the daemon's starts.
- Reconciles: perf_plugins.NoopDefault (BaseReconciler at its default concurrency) and
  NoopEight (max_concurrent_reconciles = 8), loaded with --plugin. (a) While creates run
  at c=16: resources reaching ready per second and create-to-ready latency, from the
  create request's start to the arrival of the resource's first `ready` event at an SSE
  client in another process. (b) With no creates competing: resources created while the
  plugin is parked (perf_plugins.Parked), then the daemon restarted with the plugin; the
  rate is taken from the resources' own last_reconcile_time (first to last), and the
  wall time to all ready is given too.
- SSE: 100 watchers in another process; latency from an event's timestamp (taken when
  its write is made, before the commit) to its arrival at each watcher.
- Scale: N resources (200-byte specs) created over HTTP at c=32 with NoopEight running,
  settled (each reconciled once; --drift-interval is set to a day so no re-check runs
  during the benchmark), list pages at depth (p50/p99 of sequential requests), idle RSS,
  restarts, and, after the daemon stops, the file's bytes per table and index from
  SQLite's `dbstat` (read-only, from this process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_daemon import free_port, pct, rss_kib
from bench_ui import extract

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CLK_TCK = os.sysconf("SC_CLK_TCK")
SPEC_BYTES = 200
BENCH_SCHEMA = {"type": "object", "required": ["n"], "properties": {
    "n": {"type": "integer"}, "host": {"type": "string"}, "port": {"type": "integer"},
    "pad": {"type": "string"}}}
SETTLE_SECONDS = 2.0  # after start-up or load, before RSS is read: let garbage settle
IDLE_DRIFT = ("--drift-interval", "86400")  # no drift re-checks during a benchmark


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def spec_of(i: int) -> dict[str, Any]:
    """A spec whose compact JSON is SPEC_BYTES long (the issue's 200-byte specs)."""
    spec: dict[str, Any] = {"n": i, "host": f"host-{i:07d}.example.org", "port": 8000 + i % 1000,
                            "pad": ""}
    spec["pad"] = "x" * (SPEC_BYTES - len(json.dumps(spec, separators=(",", ":"))))
    return spec


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# ---------------------------------------------------------------------------------------
# The load generator: runs in child processes (`bench_perf.py --child load`), reading its
# job as one JSON line on stdin.


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def _answer(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        if match is None:
            # Every answer measured here has a length (no streams go through this client).
            self.waiter.set_exception(RuntimeError(f"no Content-Length in {head[:200]!r}"))
            return
        total = end + 4 + int(match.group(1))
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        self.waiter.set_result((int(head[9:12]), head, body))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


class RawClient:
    """A connection that reopens itself when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: _Connection | None = None

    async def request(self, data: bytes) -> tuple[int, bytes, bytes]:
        if self.conn is None or self.conn.closed:
            _, self.conn = await asyncio.get_running_loop().create_connection(
                _Connection, "127.0.0.1", self.port)
        return await self.conn.send(data)

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


def request_bytes(port: int, method: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def create_body(name: str, i: int) -> bytes:
    return json.dumps({"name": name, "resource_type_name": "Bench",
                       "resource_type_version": "v1", "spec": spec_of(i)},
                      separators=(",", ":")).encode()


async def load_child() -> None:
    """Run one load job: connect, warm up, say `ready`, wait for `go`, run, print results.

    Job keys: port, concurrency, kind ("paths": GET a random one of `paths`; "create":
    POST resources named prefix + i for i in range(index, count, step)), count or
    seconds (and max_seconds), warmup (seconds), starts (report each create's start),
    engine ("raw" or "aiohttp").
    """
    job = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    port = job["port"]
    rng = random.Random(job.get("seed", 1))
    if job.get("engine") == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        base = f"http://127.0.0.1:{port}"

        async def send_aiohttp(data: tuple[str, str, bytes | None]) -> int:
            method, path, body = data
            async with session.request(method, base + path, data=body, headers={
                    "Content-Type": "application/json"} if body else None) as resp:
                await resp.read()
                return resp.status

        senders: list[Callable[[Any], Any]] = [send_aiohttp] * job["concurrency"]
    else:
        clients = [RawClient(port) for _ in range(job["concurrency"])]
        for client in clients:  # connect now, not inside the timed window
            await client.request(request_bytes(port, "GET", "/health"))

        def raw_sender(client: RawClient) -> Callable[[Any], Any]:
            async def send(data: tuple[str, str, bytes | None]) -> int:
                status, _head, _body = await client.request(request_bytes(port, *data))
                return status
            return send

        senders = [raw_sender(c) for c in clients]

    def requests(prefix: str, indices: Any) -> Any:
        for i in indices:
            if job["kind"] == "create":
                yield i, ("POST", "/api/v1/resources", create_body(f"{prefix}{i}", i))
            else:
                yield i, ("GET", rng.choice(job["paths"]), None)

    async def run(work: Any, deadline: float | None,
                  latencies: list[float], starts: list[tuple[int, float]],
                  statuses: Counter[int]) -> None:
        async def worker(send: Callable[[Any], Any]) -> None:
            for i, data in work:
                started = time.monotonic()
                if deadline is not None and started >= deadline:
                    return
                status = await send(data)
                latencies.append(time.monotonic() - started)
                statuses[status] += 1
                if job.get("starts"):
                    starts.append((i, started))
        await asyncio.gather(*(worker(send) for send in senders))

    prefix = job.get("prefix", "r-")
    if job.get("warmup"):
        warm = requests("warm-" + prefix, range(job.get("index", 0), 10**9, job.get("step", 1)))
        await run(warm, time.monotonic() + job["warmup"], [], [], Counter())
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    if job.get("count") is not None:
        work = requests(prefix, range(job.get("index", 0), job["count"], job.get("step", 1)))
        deadline = time.monotonic() + job["max_seconds"] if job.get("max_seconds") else None
    else:
        work = requests(prefix, range(job.get("index", 0), 10**9, job.get("step", 1)))
        deadline = time.monotonic() + job["seconds"]
    latencies: list[float] = []
    starts: list[tuple[int, float]] = []
    statuses: Counter[int] = Counter()
    cpu0, began = time.process_time(), time.monotonic()
    await run(work, deadline, latencies, starts, statuses)
    took = time.monotonic() - began
    print(json.dumps({"took": took, "began": began, "latencies": latencies, "starts": starts,
                      "statuses": statuses, "cpu": time.process_time() - cpu0}), flush=True)
    if job.get("engine") == "aiohttp":
        await session.close()


@dataclass
class Load:
    """What a load job did, over all its client processes."""

    took: float
    done: int
    statuses: dict[str, int]
    latencies: list[float]
    starts: dict[int, float]
    client_cpu: float
    server_cpu: float | None

    @property
    def rps(self) -> float:
        return self.done / self.took

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if int(status) >= 300)

    def figures(self) -> dict[str, Any]:
        return {"requests": self.done, "seconds": round(self.took, 2), "rps": round(self.rps),
                "p50_ms": pct(self.latencies, 50), "p99_ms": pct(self.latencies, 99),
                "errors": self.errors, "client_cpu_share": round(self.client_cpu / self.took, 2),
                "server_cpu_share": (round(self.server_cpu / self.took, 2)
                                     if self.server_cpu is not None else None),
                "server_cpu_ms_per_request": round(self.cpu_ms, 3) if self.cpu_ms else None}

    @property
    def cpu_ms(self) -> float | None:
        """The server's CPU time per request, in ms."""
        if self.server_cpu is None or not self.done:
            return None
        return 1000 * self.server_cpu / self.done


async def run_load(job: dict[str, Any], clients: int = 1, server_pid: int | None = None) -> Load:
    """Run `job` split over `clients` processes, all starting together."""
    procs = []
    for k in range(clients):
        part = {**job, "concurrency": max(1, job["concurrency"] // clients), "index": k,
                "step": clients, "seed": k + 1}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", "load", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**28)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(part).encode() + b"\n")
        await proc.stdin.drain()
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"a load client failed to start: {line!r}")
    server_cpu0 = cpu_seconds(server_pid) if server_pid else None
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    results = []
    for proc in procs:
        assert proc.stdout is not None
        results.append(json.loads(await proc.stdout.readline()))
        await proc.wait()
    server_cpu = (cpu_seconds(server_pid) - server_cpu0
                  if server_pid and server_cpu0 is not None else None)
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    # The window runs from the first client's start to the last one's end.
    began = min(r["began"] for r in results)
    took = max(r["began"] + r["took"] for r in results) - began
    return Load(took=took, done=sum(len(r["latencies"]) for r in results),
                statuses=dict(statuses),
                latencies=[x for r in results for x in r["latencies"]],
                starts={i: t for r in results for i, t in r["starts"]},
                client_cpu=sum(r["cpu"] for r in results), server_cpu=server_cpu)


# ---------------------------------------------------------------------------------------
# SSE clients, each set in a child process of its own.

_READY = re.compile(rb'"status":\s*"ready"')
_NAME = re.compile(rb'"resource_name":\s*"([^"]*)"')
_TIMESTAMP = re.compile(rb'"timestamp":\s*"([^"]+)"')


async def ready_child(url: str, prefix: str, count: int, seconds: float) -> None:
    """Note when each of prefix0..prefix{count-1} is first seen `ready`; print [[i, t]...]."""
    import aiohttp
    seen: dict[int, float] = {}
    wanted = prefix.encode()
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session, session.get(
            url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        print("ready", flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(asyncio.get_running_loop().time()
                                          + deadline - time.monotonic()):
                async for line in resp.content:
                    if not line.startswith(b"data:") or not _READY.search(line):
                        continue
                    arrived = time.monotonic()
                    match = _NAME.search(line)
                    if match is None or not match.group(1).startswith(wanted):
                        continue
                    index = int(match.group(1)[len(wanted):])
                    seen.setdefault(index, arrived)
                    if len(seen) >= count:
                        break
    print(json.dumps(list(seen.items())), flush=True)


async def latency_child(url: str, watchers: int, prefix: str, events: int) -> None:
    """`watchers` streams; print each CREATED event's delay from its timestamp, in seconds."""
    import aiohttp
    latencies: list[float] = []
    connected = 0
    wanted = re.compile(rb'"resource_name":\s*"' + re.escape(prefix.encode()))

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
                    if b"event: CREATED" not in frame or not wanted.search(frame):
                        continue
                    stamp = _TIMESTAMP.search(frame)
                    assert stamp is not None
                    latencies.append(arrived - datetime.fromisoformat(
                        stamp.group(1).decode()).timestamp())
                    seen += 1
                if seen >= events:
                    return

    await asyncio.wait_for(asyncio.gather(*(watch() for _ in range(watchers))), 300)
    print(json.dumps(latencies), flush=True)


async def start_child(*args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", *args, stdout=asyncio.subprocess.PIPE,
        limit=2**28)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"an SSE client failed to start: {line!r}")
    return proc


async def child_result(proc: asyncio.subprocess.Process, timeout: float) -> Any:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    await proc.wait()
    return json.loads(line)


# ---------------------------------------------------------------------------------------
# Servers: daemons of a tree, the hello-world, and the floor process.


@dataclass
class Tree:
    """A source tree of the daemon: `label` names it in the output."""

    label: str
    source: Path
    empty_db: Path


async def http_status(port: int, path: str) -> int | None:
    """One GET on a fresh connection; None when nothing answers yet."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write(request_bytes(port, "GET", path))
        line = await reader.readline()
        return int(line.split()[1]) if line else None
    except (OSError, ValueError, IndexError):
        return None
    finally:
        writer.close()


async def http_json(port: int, method: str, path: str, body: Any = None,
                    expect: int | None = None) -> tuple[int, dict[str, str], Any]:
    """A control request (not a measured one): status, headers and decoded JSON."""
    client = RawClient(port)
    try:
        data = None if body is None else json.dumps(body).encode()
        status, head, raw = await client.request(request_bytes(port, method, path, data))
    finally:
        client.close()
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    if expect is not None and status != expect:
        raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
    return status, headers, json.loads(raw) if raw else None


class Daemon:
    """A daemon of `tree` on `db`, with `plugin` (a perf_plugins class name) if given."""

    def __init__(self, tree: Tree, db: Path, plugin: str | None, *extra: str) -> None:
        self.tree = tree
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        env["PYTHONPATH"] = os.pathsep.join([str(tree.source), str(HERE)])
        plugins = ["--plugin", f"perf_plugins:{plugin}"] if plugin else []
        code = "import sys; from no8sd.cli import main; sys.argv[0] = 'no8sd'; main()"
        self.log = db.with_name(db.name + f".{tree.label}.log")
        self.started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "--db", str(db), "--port", str(self.port),
                 "--no-entry-points", "--log-level", "warning", *plugins, *extra],
                env=env, cwd=tempfile.gettempdir(), stdout=log, stderr=log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_healthy(self, timeout: float = 120) -> float:
        """Seconds from the process's start to its first 200 on /health."""
        while time.monotonic() - self.started < timeout:
            if await http_status(self.port, "/health") == 200:
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.002)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the {self.tree.label} daemon never became healthy:\n{tail}")

    def stop(self) -> float:
        """Stop it (SIGTERM) and return the seconds that took."""
        began = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - began

    async def __aenter__(self) -> Daemon:
        await self.wait_healthy()
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        self.stop()

    async def add_bench_type(self) -> None:
        await http_json(self.port, "POST", "/api/v1/resource-types", {
            "name": "Bench", "version": "v1", "schema": BENCH_SCHEMA}, expect=201)

    async def wait_settled(self, timeout: float = 1800) -> float:
        """Wait until no resource is pending or reconciling; return the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            busy = False
            for status in ("pending", "reconciling"):
                _, _, page = await http_json(
                    self.port, "GET", f"/api/v1/resources?status={status}&limit=1", expect=200)
                busy = busy or bool(page)
            if not busy:
                return time.monotonic() - began
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the {self.tree.label} daemon did not settle in {timeout} s")


def floor_start() -> float:
    """Seconds for a Python process that only imports aiohttp.web, start to exit."""
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aiohttp.web"], check=True,
                   cwd=tempfile.gettempdir())
    return time.monotonic() - began


def floor_rss() -> int:
    """RSS (KiB) of an idle process that has imported aiohttp.web."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, aiohttp.web; print('ok', flush=True); "
         "sys.stdin.readline()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=tempfile.gettempdir())
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()
    time.sleep(0.5)
    kib = rss_kib(proc.pid)
    proc.stdin.close()
    proc.wait()
    return kib


# ---------------------------------------------------------------------------------------
# The phases. Each adds its figures to `results` (per tree label, plus "run" for the
# ceiling and floors) and prints what it measured.

Results = dict[str, dict[str, Any]]


def note(results: Results, label: str, **figures: Any) -> None:
    results.setdefault(label, {}).update(figures)


def append(results: Results, label: str, key: str, value: Any) -> None:
    results.setdefault(label, {}).setdefault(key, []).append(value)


async def measure_ceiling(results: Results, seconds: float, clients: int,
                          with_aiohttp: bool) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "hello.py"), str(port)])
    try:
        while await http_status(port, "/") != 200:
            await asyncio.sleep(0.01)
        job = {"port": port, "concurrency": 16, "kind": "paths", "paths": ["/"],
               "seconds": seconds, "warmup": 1.0}
        load = await run_load(job, clients, proc.pid)
        emit("ceiling_hello_world", concurrency=16, client="raw HTTP/1.1, separate process",
             clients=clients, **load.figures())
        append(results, "run", "ceiling_rps", load.rps)
        append(results, "run", "ceiling_cpu_ms", load.cpu_ms)
        if with_aiohttp:
            load = await run_load({**job, "engine": "aiohttp"}, 1, proc.pid)
            emit("ceiling_hello_world_aiohttp_client", concurrency=16,
                 client="aiohttp ClientSession, separate process", **load.figures())
            append(results, "run", "ceiling_aiohttp_rps", load.rps)
    finally:
        proc.terminate()
        proc.wait()


async def throughput(tree: Tree, results: Results, tmp: Path, seconds: float,
                     clients: int, rnd: int) -> None:
    """Creates, GETs by id and first pages at c=16 on a fresh daemon with NoopEight."""
    db = tmp / f"tp-{tree.label}-{rnd}.db"
    async with Daemon(tree, db, "NoopEight", *IDLE_DRIFT) as daemon:
        await daemon.add_bench_type()
        job = {"port": daemon.port, "concurrency": 16, "seconds": seconds, "warmup": 1.0}
        load = await run_load({**job, "kind": "create", "prefix": f"tp{rnd}-"}, clients,
                              daemon.pid)
        emit("create", tree=tree.label, round=rnd, concurrency=16, **load.figures())
        append(results, tree.label, "create_rps", load.rps)
        append(results, tree.label, "create_rps_cpu_ms", load.cpu_ms)
        await daemon.wait_settled()
        _, _, page = await http_json(daemon.port, "GET", "/api/v1/resources?limit=1000",
                                     expect=200)
        paths = [f"/api/v1/resources/{r['id']}" for r in page]
        load = await run_load({**job, "kind": "paths", "paths": paths}, clients, daemon.pid)
        emit("get_by_id", tree=tree.label, round=rnd, concurrency=16, **load.figures())
        append(results, tree.label, "get_rps", load.rps)
        append(results, tree.label, "get_rps_cpu_ms", load.cpu_ms)
        load = await run_load({**job, "kind": "paths",
                               "paths": ["/api/v1/resources?limit=100"]}, clients, daemon.pid)
        emit("list_limit_100", tree=tree.label, round=rnd, concurrency=16,
             resources=len(page), **load.figures())
        append(results, tree.label, "list_rps", load.rps)
        append(results, tree.label, "list_rps_cpu_ms", load.cpu_ms)


async def ready_while_creating(tree: Tree, results: Results, tmp: Path, plugin: str,
                               total: int, clients: int, e2e: int, sse_events: int) -> None:
    """(a) Resources reaching ready while creates run at c=16; with NoopEight also the
    create-to-ready latency at c=1 and the SSE delivery to 100 watchers."""
    suffix = "8" if plugin == "NoopEight" else "default"
    db = tmp / f"rc-{tree.label}-{suffix}.db"
    async with Daemon(tree, db, plugin, *IDLE_DRIFT) as daemon:
        await daemon.add_bench_type()
        events_url = f"http://127.0.0.1:{daemon.port}/api/v1/events?resource_type=Bench"
        watcher = await start_child("ready", events_url, "a-", str(total), "900")
        cpu0, at0 = cpu_seconds(daemon.pid), time.monotonic()
        load = await run_load({"port": daemon.port, "concurrency": 16, "kind": "create",
                               "prefix": "a-", "count": total, "starts": True},
                              clients, daemon.pid)
        ready = dict(await child_result(watcher, 1000))
        cpu = cpu_seconds(daemon.pid) - cpu0
        cpu_ms = 1000 * cpu / total
        cpu_share = cpu / (time.monotonic() - at0)
        began = min(load.starts.values())
        ends = load.took + began
        delays = [ready[i] - load.starts[i] for i in ready if i in load.starts]
        finished = max(ready.values()) if ready else began
        during = sum(1 for t in ready.values() if t <= ends)
        rate = len(ready) / (finished - began)
        emit("ready_while_creating", tree=tree.label, plugin=plugin, creates=total,
             create_rps=round(load.rps), create_errors=load.errors, reached_ready=len(ready),
             ready_per_s=round(rate), ready_per_s_while_creates_ran=round(during / load.took),
             backlog_when_creates_ended=total - during,
             create_to_ready_p50_ms=pct(delays, 50), create_to_ready_p99_ms=pct(delays, 99),
             server_cpu_share_while_creating=load.figures()["server_cpu_share"],
             server_cpu_share_until_all_ready=round(cpu_share, 2),
             server_cpu_ms_per_resource=round(cpu_ms, 3))
        note(results, tree.label, **{f"ready_rps_{suffix}": rate,
                                     f"ready_rps_{suffix}_cpu_ms": cpu_ms,
                                     f"ready_p50_{suffix}": pct(delays, 50),
                                     f"ready_p99_{suffix}": pct(delays, 99)})
        if plugin != "NoopEight":
            return
        await daemon.wait_settled()
        watcher = await start_child("ready", events_url, "c1-", str(e2e), "300")
        load = await run_load({"port": daemon.port, "concurrency": 1, "kind": "create",
                               "prefix": "c1-", "count": e2e, "starts": True}, 1, daemon.pid)
        ready = dict(await child_result(watcher, 400))
        delays = [ready[i] - load.starts[i] for i in ready]
        emit("create_to_ready_c1", tree=tree.label, plugin=plugin, resources=e2e,
             reached_ready=len(ready), p50_ms=pct(delays, 50), p99_ms=pct(delays, 99),
             max_ms=pct(delays, 100))
        note(results, tree.label, e2e1_p50=pct(delays, 50), e2e1_p99=pct(delays, 99))
        await daemon.wait_settled()
        watchers = 100
        child = await start_child("latency", events_url, str(watchers), "sse-", str(sse_events))
        for i in range(sse_events):
            await http_json(daemon.port, "POST", "/api/v1/resources", {
                "name": f"sse-{i}", "resource_type_name": "Bench",
                "resource_type_version": "v1", "spec": spec_of(i)}, expect=201)
            await asyncio.sleep(0.02)  # paces the events; the figure is per event, not rate
        latencies = await child_result(child, 300)
        emit("sse_delivery", tree=tree.label, watchers=watchers, events_per_watcher=sse_events,
             deliveries=len(latencies), p50_ms=pct(latencies, 50), p99_ms=pct(latencies, 99),
             max_ms=pct(latencies, 100))
        note(results, tree.label, sse_p50=pct(latencies, 50), sse_p99=pct(latencies, 99))


async def reconciles_alone(tree: Tree, results: Results, tmp: Path, plugin: str,
                           total: int) -> None:
    """(b) Reconciles/s with nothing competing: `total` resources made while the plugin
    is parked (perf_plugins.Parked), then the daemon restarted with `plugin`."""
    suffix = "8" if plugin == "NoopEight" else "default"
    db = tmp / f"ra-{tree.label}-{suffix}.db"
    async with Daemon(tree, db, "Parked", *IDLE_DRIFT) as daemon:
        await daemon.add_bench_type()
        for first in range(0, total, 1000):
            manifests = [{"kind": "Resource", "name": f"b-{i}", "resource_type_name": "Bench",
                          "resource_type_version": "v1", "spec": spec_of(i)}
                         for i in range(first, min(total, first + 1000))]
            _, _, answer = await http_json(daemon.port, "POST", "/api/v1/apply",
                                           {"manifests": manifests}, expect=200)
            assert answer["summary"]["created"] == len(manifests), answer["summary"]
    daemon = Daemon(tree, db, plugin, *IDLE_DRIFT)
    try:
        await daemon.wait_healthy()
        healthy, cpu0 = time.monotonic(), cpu_seconds(daemon.pid)
        await daemon.wait_settled()
        wall = time.monotonic() - healthy
        cpu = cpu_seconds(daemon.pid) - cpu0
        cpu_ms = 1000 * cpu / total
        times = []
        after = 0
        while True:  # offset paging: the baseline may not know ?after_id=
            _, _, page = await http_json(
                daemon.port, "GET", f"/api/v1/resources?limit=1000&offset={after}", expect=200)
            times += [datetime.fromisoformat(r["last_reconcile_time"]).timestamp()
                      for r in page if r["last_reconcile_time"]]
            after += len(page)
            if len(page) < 1000:
                break
    finally:
        daemon.stop()
    span = max(times) - min(times)
    rate = (len(times) - 1) / span if span > 0 else None
    emit("reconciles_without_creates", tree=tree.label, plugin=plugin, resources=total,
         reconciled=len(times), reconciles_per_s=round(rate) if rate else None,
         first_to_last_reconcile_s=round(span, 2),
         health_to_all_ready_s=round(wall, 2), server_cpu_ms_per_reconcile=round(cpu_ms, 3),
         # Below 1, the loop waits on something other than the CPU (commits, wake-ups).
         server_cpu_share=round(cpu / wall, 2),
         note="rate from the resources' own last_reconcile_time, first to last")
    note(results, tree.label, **{f"reconcile_rps_{suffix}": rate,
                                 f"reconcile_rps_{suffix}_cpu_ms": cpu_ms})


async def starts(trees: list[Tree], results: Results, turns: int) -> None:
    """Start to first /health 200 and idle RSS on an empty database, in turns with the
    floor; the first turn (which compiles byte code and makes the file) is not counted."""
    kinds: list[Tree | None] = [None, *trees]
    for turn in range(turns + 1):
        order = kinds[turn % len(kinds):] + kinds[:turn % len(kinds)]
        for tree in order:
            if tree is None:
                took, kib = floor_start(), floor_rss()
                if turn:
                    append(results, "run", "floor_start_s", took)
                    append(results, "run", "floor_rss_kib", kib)
                continue
            daemon = Daemon(tree, tree.empty_db, "NoopEight", *IDLE_DRIFT)
            try:
                took = await daemon.wait_healthy()
                await asyncio.sleep(SETTLE_SECONDS)
                kib = rss_kib(daemon.pid)
            finally:
                daemon.stop()
            if turn:
                append(results, tree.label, "start_empty_samples", took)
                append(results, tree.label, "rss_empty_samples", kib)
    run = results["run"]
    emit("floor", turns=turns,
         import_aiohttp_web_s=[round(x, 3) for x in run["floor_start_s"]],
         median_s=round(statistics.median(run["floor_start_s"]), 3),
         rss_mib=mib(statistics.median(run["floor_rss_kib"])))
    for tree in trees:
        figures = results[tree.label]
        figures["start_empty_s"] = statistics.median(figures["start_empty_samples"])
        figures["rss_empty_mib"] = mib(statistics.median(figures["rss_empty_samples"]))
        emit("start_and_idle_empty", tree=tree.label, turns=turns,
             start_s=[round(x, 3) for x in figures["start_empty_samples"]],
             median_start_s=round(figures["start_empty_s"], 3),
             over_floor_s=round(figures["start_empty_s"]
                                - statistics.median(run["floor_start_s"]), 3),
             idle_rss_mib=figures["rss_empty_mib"])


async def page_latency(daemon: Daemon, path: str, samples: int, cap: float) -> Load:
    return await run_load({"port": daemon.port, "concurrency": 1, "kind": "paths",
                           "paths": [path], "count": samples, "max_seconds": cap},
                          1, daemon.pid)


async def scale(tree: Tree, results: Results, tmp: Path, total: int, clients: int,
                samples: int, turns: int) -> None:
    """Fill, settle, pages, RSS, restarts, then the file's bytes by table."""
    db = tmp / f"scale-{tree.label}.db"
    daemon = Daemon(tree, db, "NoopEight", *IDLE_DRIFT)
    try:
        await daemon.wait_healthy()
        await daemon.add_bench_type()
        load = await run_load({"port": daemon.port, "concurrency": 32, "kind": "create",
                               "prefix": "s-", "count": total, "starts": True},
                              clients, daemon.pid)
        ordered = sorted(load.starts.values())
        tenth = max(1, len(ordered) // 10)
        first_rate = tenth / max(ordered[tenth - 1] - ordered[0], 1e-9)
        last_rate = tenth / max(ordered[-1] - ordered[-tenth], 1e-9)
        settle = await daemon.wait_settled()
        await asyncio.sleep(SETTLE_SECONDS)
        rss_fill = rss_kib(daemon.pid)
        emit("scale_fill", tree=tree.label, concurrency=32, **load.figures(),
             first_tenth_rps=round(first_rate), last_tenth_rps=round(last_rate),
             settle_after_fill_s=round(settle, 2), idle_rss_after_fill_mib=mib(rss_fill))
        note(results, tree.label, fill_rps=load.rps, fill_rps_cpu_ms=load.cpu_ms, settle_s=settle,
             rss_fill_mib=mib(rss_fill))

        deep = max(0, total - 200)
        _, _, page = await http_json(daemon.port, "GET",
                                     f"/api/v1/resources?limit=100&offset={deep}", expect=200)
        after = page[0]["id"] - 1
        _, headers, keyset = await http_json(
            daemon.port, "GET", f"/api/v1/resources?limit=100&after_id={after}", expect=200)
        keyset_works = bool(keyset) and keyset[0]["id"] == after + 1
        pages = {"first": "/api/v1/resources?limit=100",
                 "deep": f"/api/v1/resources?limit=100&offset={deep}",
                 "filter": f"/api/v1/resources?resource_type_name=Bench&limit=100"
                           f"&offset={total // 2}",
                 "keyset": f"/api/v1/resources?limit=100&after_id={after}"}
        for key, path in pages.items():
            if key == "keyset" and not keyset_works:
                emit("scale_page", tree=tree.label, page=key, path=path, supported=False)
                continue
            took = await page_latency(daemon, path, samples, 30.0)
            emit("scale_page", tree=tree.label, page=key, path=path, resources=total,
                 samples=took.done, p50_ms=pct(took.latencies, 50),
                 p99_ms=pct(took.latencies, 99), errors=took.errors,
                 next_header=headers.get("x-next-after-id") if key == "keyset" else None)
            note(results, tree.label, **{f"page_{key}_p50": pct(took.latencies, 50),
                                         f"page_{key}_p99": pct(took.latencies, 99)})
        await asyncio.sleep(SETTLE_SECONDS)
        rss_pages = rss_kib(daemon.pid)
    finally:
        stop_s = daemon.stop()
    emit("scale_after_pages", tree=tree.label, idle_rss_mib=mib(rss_pages),
         stop_s=round(stop_s, 2))

    floors, took_s, rss = [], [], []
    for turn in range(turns):
        if turn % 2:
            floors.append(floor_start())
        daemon = Daemon(tree, db, "NoopEight", *IDLE_DRIFT)
        try:
            took_s.append(await daemon.wait_healthy())
            await asyncio.sleep(SETTLE_SECONDS)
            rss.append(rss_kib(daemon.pid))
        finally:
            daemon.stop()
        if not turn % 2:
            floors.append(floor_start())
    floor = statistics.median(floors)
    start = statistics.median(took_s)
    emit("scale_restart", tree=tree.label, resources=total, turns=turns,
         start_s=[round(x, 3) for x in took_s], median_start_s=round(start, 3),
         floor_s=round(floor, 3), over_floor_s=round(start - floor, 3),
         idle_rss_mib=[mib(x) for x in rss])
    note(results, tree.label, start_100k_s=start, floor_start_100k_s=floor,
         rss_restart_mib=mib(statistics.median(rss)))
    note(results, tree.label, **disk(tree, db, total))


def disk(tree: Tree, db: Path, total: int) -> dict[str, Any]:
    """Bytes of the database file per table and index, from `dbstat` (page counts when
    SQLite was built without it), read-only after the daemon stopped."""
    files = {p.name: p.stat().st_size for p in db.parent.glob(db.name + "*")
             if not p.name.endswith(".log")}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        owners = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
        # The daemon runs this check at every start: its cost grows with the file.
        began = time.monotonic()
        conn.execute("PRAGMA quick_check").fetchone()
        quick_check_s = time.monotonic() - began
        try:
            conn.execute("SELECT * FROM dbstat LIMIT 1").fetchall()
            objects = {name: size for name, size in conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}
            method = "dbstat"
        except sqlite3.OperationalError:
            objects = {}
            method = "page counts (no dbstat in this SQLite)"
    finally:
        conn.close()
    by_table: Counter[str] = Counter()
    for name, size in objects.items():
        by_table[owners.get(name, name)] += size
    size = db.stat().st_size
    emit("scale_disk", tree=tree.label, resources=total, method=method,
         files_bytes=files, db_mb=round(size / 1e6, 1), bytes_per_resource=round(size / total),
         page_size=page_size, pages=pages, free_pages=free,
         quick_check_s=round(quick_check_s, 3),
         free_mib=round(free * page_size / 2**20, 1),
         tables_mib={t: round(b / 2**20, 1) for t, b in by_table.most_common()},
         tables_bytes_per_resource={t: round(b / total) for t, b in by_table.most_common()},
         objects_mib={o: round(b / 2**20, 2) for o, b in
                      sorted(objects.items(), key=lambda kv: -kv[1])})
    figures: dict[str, Any] = {"db_mb": size / 1e6, "db_bytes_per_resource": size / total,
                               "free_bytes_per_resource": free * page_size / total}
    for table, b in by_table.items():
        # The small tables (users, tokens, the schema...) are one "other" row in the table.
        key = table if b / total >= 10 else "other tables"
        figures[f"table_{key}_bytes_per_resource"] = (
            figures.get(f"table_{key}_bytes_per_resource", 0) + b / total)
    return figures


# ---------------------------------------------------------------------------------------
# The table.


@dataclass
class Row:
    figure: str
    key: str
    unit: str
    basis: str = ""  # "ceiling", "floor_start", "floor_start_100k", "floor_rss" or ""
    goal: str = "—"
    met: Callable[[float, dict[str, float]], bool] | None = None
    digits: int = 0


def rows(total: int) -> list[Row]:
    n = f"{total:,}"
    lat = "≤ {} ms"
    return [
        Row("create, c=16", "create_rps", "/s", "ceiling", "≥ 0.5 of ceiling",
            lambda v, c: v >= 0.5 * c["ceiling"]),
        Row(f"create, c=32, sustained over the {n} fill", "fill_rps", "/s", "ceiling"),
        Row("GET by id, c=16", "get_rps", "/s", "ceiling", "≥ 0.8 of ceiling",
            lambda v, c: v >= 0.8 * c["ceiling"]),
        Row("list, limit 100, c=16", "list_rps", "/s", "ceiling", "≥ 0.2 of ceiling",
            lambda v, c: v >= 0.2 * c["ceiling"]),
        Row("ready while creates run at c=16 (plugin concurrency 8)", "ready_rps_8", "/s",
            "ceiling", "≥ 1,000/s", lambda v, c: v >= 1000),
        Row("  create→ready p50 (same run)", "ready_p50_8", " ms", digits=1),
        Row("  create→ready p99 (same run)", "ready_p99_8", " ms", "", lat.format(100),
            lambda v, c: v <= 100, 1),
        Row("ready while creates run at c=16 (default concurrency)", "ready_rps_default",
            "/s", "ceiling"),
        Row("  create→ready p50 (same run)", "ready_p50_default", " ms", digits=1),
        Row("  create→ready p99 (same run)", "ready_p99_default", " ms", digits=1),
        Row("reconciles/s, no creates competing (concurrency 8)", "reconcile_rps_8", "/s",
            "ceiling", "≥ 2,000/s", lambda v, c: v >= 2000),
        Row("reconciles/s, no creates competing (default concurrency)",
            "reconcile_rps_default", "/s", "ceiling"),
        Row("create→ready at c=1, p50", "e2e1_p50", " ms", digits=1),
        Row("create→ready at c=1, p99", "e2e1_p99", " ms", "", lat.format(10),
            lambda v, c: v <= 10, 1),
        Row("SSE commit→client, 100 watchers, p50", "sse_p50", " ms", digits=1),
        Row("SSE commit→client, 100 watchers, p99", "sse_p99", " ms", "", lat.format(10),
            lambda v, c: v <= 10, 1),
        *[Row(f"{n} resources: {label} p{p}", f"page_{key}_p{p}", " ms", "",
              lat.format(25) if p == 99 else "—",
              (lambda v, c: v <= 25) if p == 99 else None, 1)
          for key, label in (("first", "first page"),
                             ("deep", f"deep page (offset {max(0, total - 200):,})"),
                             ("filter", f"resource_type_name filter at offset {total // 2:,}"),
                             ("keyset", "keyset deep page (?after_id=)"))
          for p in (50, 99)],
        Row("start to first 200 on /health, empty", "start_empty_s", " s", "floor_start",
            "≤ floor + 0.1 s", lambda v, c: v <= c["floor_start"] + 0.1, 3),
        Row(f"start to first 200 on /health, {n} resources", "start_100k_s", " s",
            "floor_start_100k", "≤ floor + 0.25 s",
            lambda v, c: v <= c["floor_start_100k"] + 0.25, 3),
        Row("idle RSS, empty", "rss_empty_mib", " MiB", "floor_rss", "≤ 40 MiB",
            lambda v, c: v <= 40, 1),
        Row(f"idle RSS after the {n} fill", "rss_fill_mib", " MiB", "floor_rss",
            "≤ 64 MiB", lambda v, c: v <= 64, 1),
        Row(f"idle RSS after a restart on {n}", "rss_restart_mib", " MiB", "floor_rss",
            "≤ 64 MiB", lambda v, c: v <= 64, 1),
        Row("settle after the fill (until none pending)", "settle_s", " s", digits=1),
        Row(f"database size, {n} resources, each reconciled once", "db_mb", " MB", digits=1),
        Row("  bytes per resource", "db_bytes_per_resource", " B", "", "≤ 1,200 B",
            lambda v, c: v <= 1200),
        Row("  of which free pages", "free_bytes_per_resource", " B"),
    ]


def table_rows(results: Results, trees: list[Tree], total: int) -> list[Row]:
    """The fixed rows, then one per table the `dbstat` figures name, largest first."""
    first = results.get(trees[0].label, {})
    tables = sorted({key for tree in trees for key in results.get(tree.label, {})
                     if key.startswith("table_")}, key=lambda k: -first.get(k, 0))
    extra = []
    for key in tables:
        name = key[len("table_"):-len("_bytes_per_resource")]
        label = name if name == "other tables" else f"{name} (table and its indexes)"
        extra.append(Row(f"  {label}", key, " B"))
    return rows(total) + extra


def render(results: Results, trees: list[Tree], total: int) -> None:
    run = results.get("run", {})
    context: dict[str, float] = {}
    if run.get("ceiling_rps"):
        context["ceiling"] = statistics.median(run["ceiling_rps"])
        context["ceiling_cpu_ms"] = statistics.median(run["ceiling_cpu_ms"])
    if run.get("floor_start_s"):
        context["floor_start"] = statistics.median(run["floor_start_s"])
    if run.get("floor_rss_kib"):
        context["floor_rss"] = mib(statistics.median(run["floor_rss_kib"]))
    for tree in trees:
        figures = results.get(tree.label, {})
        for key in ("create_rps", "get_rps", "list_rps"):
            for name in (key, key + "_cpu_ms"):
                if figures.get(name):
                    figures[name] = statistics.median(figures[name])

    def shown(value: float | None, row: Row) -> str:
        if value is None:
            return "n/a"
        return f"{value:,.{row.digits}f}{row.unit}"

    def ratio(value: float | None, row: Row, tree: Tree) -> str:
        figures = results.get(tree.label, {})
        if value is None or not row.basis:
            return ""
        if row.basis == "ceiling" and "ceiling" in context:
            cpu_ms = figures.get(row.key + "_cpu_ms")
            by_cpu = (f"; by CPU {context['ceiling_cpu_ms'] / cpu_ms:.3f}" if cpu_ms else "")
            return f"{value / context['ceiling']:.3f} of ceiling{by_cpu}"
        if row.basis in ("floor_start", "floor_start_100k"):
            floor = (context.get("floor_start") if row.basis == "floor_start"
                     else figures.get("floor_start_100k_s"))
            if floor:
                return f"floor {floor:.3f} s {value - floor:+.3f} s ({value / floor:.2f}x)"
        if row.basis == "floor_rss" and "floor_rss" in context:
            return f"{value / context['floor_rss']:.2f}x floor {context['floor_rss']} MiB"
        return ""

    header = ["figure"]
    for tree in trees:
        header += [tree.label, "ratio"]
    header += ["goal", f"met ({trees[0].label})?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if "ceiling" in context:
        ceiling_cells = [f"{context['ceiling']:,.0f}/s",
                         f"1 ({context['ceiling_cpu_ms']:.3f} ms CPU a request)"] * len(trees)
        lines.append("| ceiling: aiohttp hello-world, c=16, same load generator | "
                     + " | ".join(ceiling_cells) + " | | |")
    if run.get("ceiling_aiohttp_rps"):
        cells = [f"{statistics.median(run['ceiling_aiohttp_rps']):,.0f}/s", ""] * len(trees)
        lines.append("| (the same with aiohttp's client, as first measured) | "
                     + " | ".join(cells) + " | | |")
    if "floor_start" in context:
        cells = [f"{context['floor_start']:.3f} s", ""] * len(trees)
        lines.append("| floor: `python -c 'import aiohttp.web'` | " + " | ".join(cells)
                     + " | | |")
    if "floor_rss" in context:
        cells = [f"{context['floor_rss']} MiB", ""] * len(trees)
        lines.append("| floor: RSS of a process that imported aiohttp.web | "
                     + " | ".join(cells) + " | | |")
    for row in table_rows(results, trees, total):
        values = [results.get(tree.label, {}).get(row.key) for tree in trees]
        if all(v is None for v in values):
            continue
        cells = [row.figure]
        for tree, value in zip(trees, values, strict=True):
            cells += [shown(value, row), ratio(value, row, tree)]
        this = values[0]
        figures = results.get(trees[0].label, {})
        ctx = {**context, "floor_start_100k": figures.get("floor_start_100k_s") or 0.0}
        try:
            met = ("" if row.met is None or this is None
                   else "yes" if row.met(this, ctx) else "no")
        except KeyError:  # the ceiling or floor it is judged against was not measured
            met = ""
        cells += [row.goal, met]
        lines.append("| " + " | ".join(cells) + " |")
        print(json.dumps({"row": row.figure.strip(), "key": row.key, "goal": row.goal,
                          "met": met or None, "values": {
                              tree.label: value for tree, value in zip(trees, values,
                                                                       strict=True)},
                          "ratios": {tree.label: ratio(value, row, tree) or None
                                     for tree, value in zip(trees, values, strict=True)}}),
              flush=True)
    print()
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    quick: bool
    total: int
    seconds: float = field(init=False)
    rounds: int = field(init=False)
    turns: int = field(init=False)
    ready_total: int = field(init=False)
    alone_total: int = field(init=False)
    e2e: int = field(init=False)
    sse_events: int = field(init=False)
    page_samples: int = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = 3.0 if self.quick else 8.0
        self.rounds = 1 if self.quick else 2
        self.turns = 3 if self.quick else 5
        self.ready_total = 800 if self.quick else 3000
        self.alone_total = 1000 if self.quick else 5000
        self.e2e = 100 if self.quick else 300
        self.sse_events = 50 if self.quick else 200
        self.page_samples = 30 if self.quick else 100


PHASES = ("throughput", "reconcile", "start", "scale")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs, 10,000 resources unless --resources says")
    parser.add_argument("--baseline-ref", help="also run this git ref's daemon, in turns")
    parser.add_argument("--resources", type=int, help="size of the scale run (default 100,000)")
    parser.add_argument("--clients", type=int, default=1,
                        help="load generator processes, the connections split evenly "
                             "between them (default 1)")
    parser.add_argument("--only", help=f"comma-separated phases of {', '.join(PHASES)}")
    args = parser.parse_args()
    plan = Plan(args.quick, args.resources or (10_000 if args.quick else 100_000))
    phases = set(args.only.split(",")) if args.only else set(PHASES)
    if phases - set(PHASES):
        parser.error(f"unknown phases: {sorted(phases - set(PHASES))}")
    results: Results = {"run": {}}
    with tempfile.TemporaryDirectory(prefix="no8sd-perf-") as folder:
        tmp = Path(folder)
        this = tmp / "this"
        shutil.copytree(REPO / "no8sd", this / "no8sd",
                        ignore=shutil.ignore_patterns("__pycache__"))
        trees = [Tree("this", this, tmp / "empty-this.db")]
        if args.baseline_ref:
            label = "baseline " + args.baseline_ref
            trees.append(Tree(label, extract(args.baseline_ref, tmp / "baseline"),
                              tmp / "empty-baseline.db"))
        for tree in trees:
            # pip compiles an installed package; so must the copies, or every start would
            # compile the whole package again (floors are measured on compiled packages).
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree.source)],
                           check=True)
        emit("plan", python=sys.version.split()[0], trees=[t.label for t in trees],
             resources=plan.total, quick=plan.quick, clients=args.clients,
             phases=sorted(phases), cpus=os.cpu_count(), load=os.getloadavg())
        began = time.monotonic()
        try:
            if "throughput" in phases:
                for rnd in range(plan.rounds):
                    await measure_ceiling(results, plan.seconds, args.clients, rnd == 0)
                    for tree in trees if rnd % 2 == 0 else trees[::-1]:
                        await throughput(tree, results, tmp, plan.seconds, args.clients, rnd)
            if "reconcile" in phases:
                if "ceiling_rps" not in results["run"]:
                    await measure_ceiling(results, plan.seconds, args.clients, False)
                for k, plugin in enumerate(("NoopEight", "NoopDefault")):
                    for tree in trees if k % 2 == 0 else trees[::-1]:
                        await ready_while_creating(tree, results, tmp, plugin,
                                                   plan.ready_total, args.clients, plan.e2e,
                                                   plan.sse_events)
                        await reconciles_alone(tree, results, tmp, plugin, plan.alone_total)
            if "start" in phases or "scale" in phases:
                await starts(trees, results, plan.turns)
            if "scale" in phases:
                for tree in trees:
                    await scale(tree, results, tmp, plan.total, args.clients,
                                plan.page_samples, plan.turns)
        finally:
            emit("done", minutes=round((time.monotonic() - began) / 60, 1))
            render(results, trees, plan.total)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "load":
            asyncio.run(load_child())
        elif kind == "ready":
            asyncio.run(ready_child(rest[0], rest[1], int(rest[2]), float(rest[3])))
        elif kind == "latency":
            asyncio.run(latency_child(rest[0], int(rest[1]), rest[2], int(rest[3])))
    else:
        asyncio.run(main())
