"""Benchmark `no8sd export` and `no8sd import`; prints one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_transfer.py [--resources 10000]

A daemon A (the no-op reconciler) gets `--resources` resources through server-side
apply, one in ten with an extra finalizer and outputs set from outside. Then, each as
the `no8sd` command a user runs, timed from start to exit, with its peak memory:

1. export from A over HTTP, and from A's database file while A runs;
2. import of that file into a fresh daemon B (server-side apply, batches of 100);
3. the same import again (everything unchanged: nothing is written);
4. import into a fresh daemon C through the plain upstream routes (`--via rest`), the
   way a server without apply is filled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from bench_daemon import free_port, wait_healthy

HERE = Path(__file__).parent


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def command() -> list[str]:
    script = Path(sys.executable).with_name("no8sd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "no8sd"]


class Daemon:
    """A no8sd with the no-op reconciler on a fresh database."""

    def __init__(self, folder: Path, name: str) -> None:
        self.db = folder / f"{name}.db"
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        self.proc = subprocess.Popen(
            [*command(), "--db", str(self.db), "--port", self.url.rsplit(":", 1)[1],
             "--no-entry-points", "--plugin", "noop_plugin:NoopReconciler",
             "--log-level", "WARNING"], env=env)

    async def __aenter__(self) -> Daemon:
        await wait_healthy(self.url + "/health")
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        self.proc.terminate()
        self.proc.wait()


async def populate(url: str, total: int) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"},
                                               "name": {"type": "string"},
                                               "tags": {"type": "array"}}}
    async with aiohttp.ClientSession() as http:
        await http.post(url + "/api/v1/apply", json={"manifests": [
            {"kind": "ResourceType", "name": "Bench", "version": "v1", "schema": schema}]})
        for start in range(0, total, 500):
            manifests = [{"kind": "Resource", "name": f"r{i}", "resource_type_name": "Bench",
                          "resource_type_version": "v1",
                          "spec": {"n": i, "name": f"resource number {i}",
                                   "tags": ["bench", f"group-{i % 10}"]},
                          "metadata": {"team": f"team-{i % 7}"}}
                         for i in range(start, min(start + 500, total))]
            async with http.post(url + "/api/v1/apply", json={"manifests": manifests}) as resp:
                answer = await resp.json()
            for result in answer["results"]:
                rid = result["record"]["id"]
                if rid % 10 == 0:
                    await http.put(f"{url}/api/v1/resources/{rid}/finalizers",
                                   json={"add": ["example.com/guard"]})
                    await http.put(f"{url}/api/v1/resources/{rid}/outputs",
                                   json={"outputs": {"address": f"10.0.{rid // 250}.{rid % 250}"}})


def timed(*args: str) -> tuple[float, int, str, str]:
    """Run `no8sd ARGS`; (seconds, peak RSS in MiB, stdout, stderr)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([*command(), *args], stdout=out, stderr=err)
        # Reaped here rather than by Popen, for the child's own resource usage.
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"no8sd {' '.join(args)} failed: {stderr}")
    return seconds, usage.ru_maxrss // 1024, stdout, stderr


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    total = parser.parse_args().resources
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        exported = folder / "export.jsonl"
        async with Daemon(folder, "a") as a:
            await populate(a.url, total)
            seconds, peak, _, _ = timed("export", "--server", a.url, "-o", str(exported))
            emit("export over HTTP", resources=total, seconds=round(seconds, 2),
                 per_second=round(total / seconds), peak_rss_mib=peak,
                 file_mib=round(exported.stat().st_size / 2**20, 1))
            from_file = folder / "from-file.jsonl"
            seconds, peak, _, _ = timed("export", "--db", str(a.db), "-o", str(from_file))
            emit("export from the database file", resources=total,
                 seconds=round(seconds, 2), per_second=round(total / seconds),
                 peak_rss_mib=peak, same_text=from_file.read_text() == exported.read_text())
        async with Daemon(folder, "b") as b:
            seconds, peak, out, _ = timed("import", str(exported), "--server", b.url)
            emit("import (server-side apply)", objects=total + 1, seconds=round(seconds, 2),
                 per_second=round((total + 1) / seconds), peak_rss_mib=peak,
                 summary=out.strip())
            seconds, peak, out, _ = timed("import", str(exported), "--server", b.url)
            emit("import again (all unchanged)", objects=total + 1, seconds=round(seconds, 2),
                 per_second=round((total + 1) / seconds), peak_rss_mib=peak,
                 summary=out.strip())
        async with Daemon(folder, "c") as c:
            seconds, peak, out, _ = timed("import", "--via", "rest", str(exported),
                                          "--server", c.url)
            emit("import (plain routes)", objects=total + 1, seconds=round(seconds, 2),
                 per_second=round((total + 1) / seconds), peak_rss_mib=peak,
                 summary=out.strip())


if __name__ == "__main__":
    asyncio.run(main())
