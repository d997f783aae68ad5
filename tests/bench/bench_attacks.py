"""The attacks of the hardening work, measured: what each costs the daemon, in figures.

    python tests/bench/bench_attacks.py

Starts `python -m no8sd` with the interpreter running the script (so running it with the
python of another environment, one with an older no8sd installed, compares before and
after on the same machine) and reports, as JSON lines:

- hostile validation: /health latency p50/p99/max while 8 creates against a schema with
  a catastrophic pattern run, each create's latency, and /health p99 when idle (the
  baseline of the same run);
- login burst: how many of 40 concurrent wrong passwords for one user were checked (401)
  and how many refused at once (429), and whether a right password slipped through;
- stalled uploads: RSS before, while 200 near-1 MiB uploads to an unknown path are held,
  and after, with /health latency meanwhile.

Nothing here asserts; tests/test_attacks.py holds the functional checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

TESTS = Path(__file__).resolve().parent.parent
ADMIN = ("root", "root-password-123")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.port = _free_port()
        self.tmp = tempfile.TemporaryDirectory()
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")},
                    "PYTHONPATH": str(TESTS), **(env or {})}
        self.args = [sys.executable, "-m", "no8sd", "--db", f"{self.tmp.name}/b.db",
                     "--port", str(self.port), "--no-entry-points", *args]
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Daemon:
        # cwd: `python -m` puts it first on sys.path; a checkout there would shadow the
        # installed no8sd this interpreter is meant to run.
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.tmp.name,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if re.search(r"listening on http://", line):
                break
        return self

    def __exit__(self, *_exc: Any) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # still held up by the stalled clients: not what is measured
            self.proc.wait()
        self.tmp.cleanup()

    def rss_mib(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1), "n": len(ordered)}


async def _poll_health(http: aiohttp.ClientSession, url: str, until: asyncio.Future[Any],
                       ) -> list[float]:
    took = []
    while not until.done():
        started = time.perf_counter()
        async with http.get(f"{url}/health") as resp:
            await resp.read()
        took.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return took


async def hostile_validation() -> dict[str, Any]:
    with Daemon("--plugin", "no8sd_testplugins.widgets:WidgetReconciler") as daemon:
        async with aiohttp.ClientSession() as http:
            idle = []
            for _ in range(100):
                started = time.perf_counter()
                async with http.get(f"{daemon.url}/health") as resp:
                    await resp.read()
                idle.append(time.perf_counter() - started)
            resp = await http.post(f"{daemon.url}/api/v1/resource-types", json={
                "name": "Widget", "version": "v1", "schema": {"type": "object", "properties": {
                    "s": {"type": "string", "pattern": "^(a|aa)+$"}}}})
            assert resp.status == 201, await resp.text()

            async def create(i: int) -> tuple[int, float]:
                started = time.perf_counter()
                async with http.post(f"{daemon.url}/api/v1/resources", json={
                        "name": f"h{i}", "resource_type_name": "Widget",
                        "resource_type_version": "v1",
                        "spec": {"s": "a" * 5000 + "b"}}) as resp:
                    await resp.read()
                    return resp.status, time.perf_counter() - started

            creates = asyncio.gather(*(create(i) for i in range(8)))
            during = await _poll_health(http, daemon.url, creates)
            results = creates.result()
    return {"case": "hostile validation", "health_idle": _percentiles(idle),
            "health_during": _percentiles(during),
            "create_statuses": sorted({s for s, _ in results}),
            "create_latency": _percentiles([t for _, t in results])}


async def login_burst() -> dict[str, Any]:
    env = {"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1]}
    with Daemon("--auth", "token", env=env) as daemon:
        async with aiohttp.ClientSession() as http:
            async def attempt(password: str) -> int:
                async with http.post(f"{daemon.url}/api/v1/auth/login", json={
                        "username": ADMIN[0], "password": password}) as resp:
                    return resp.status

            statuses = await asyncio.gather(*(attempt(f"wrong-{i}") for i in range(39)),
                                            attempt(ADMIN[1]))
    return {"case": "login burst", "checked_401": statuses.count(401),
            "refused_429": statuses.count(429), "right_password_200": statuses.count(200),
            "other": sorted(set(statuses) - {200, 401, 429})}


async def stalled_uploads() -> dict[str, Any]:
    with Daemon("--body-timeout", "60") as daemon:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{daemon.url}/health") as resp:
                await resp.read()
            before = daemon.rss_mib()
            writers = []
            for _ in range(200):
                _reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
                writer.write(b"POST /nonexistent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 1048000\r\n\r\n"
                             + b" " * 1_000_000)
                writers.append(writer)
            await asyncio.sleep(2)  # let whatever the daemon buffers arrive
            held = daemon.rss_mib()
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(2, done.set_result, None)
            during = await _poll_health(http, daemon.url, done)
            for writer in writers:
                writer.close()
            await asyncio.sleep(3)
            after = daemon.rss_mib()
    return {"case": "stalled uploads", "rss_before_mib": round(before, 1),
            "rss_held_mib": round(held, 1), "rss_after_mib": round(after, 1),
            "health_during": _percentiles(during)}


async def main() -> None:
    for case in (hostile_validation, login_burst, stalled_uploads):
        print(json.dumps(await case()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
