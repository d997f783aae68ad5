"""Benchmark the client's start time; prints one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_cli.py [--runs N]

Against a real `no8sd` daemon, runs `no8sd get resources` N times and reports the
median and spread of its wall time, beside `no8sd --version` (the command without the
request), what it costs to start Python and import aiohttp.web (`python -c 'import
aiohttp.web'`, the floor for any client built on aiohttp) and a bare `python -c pass`,
the commands taking turns in the same run, with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).with_name("no8sd")


def emit(name: str, **figures: Any) -> None:
    """Print one result line."""
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(commands: dict[str, tuple[list[str], dict[str, str]]],
          runs: int) -> dict[str, list[float]]:
    """Wall times (ms) of `runs` runs of each command (after one warm-up run each). The
    commands take turns, so a busy moment on a shared machine weighs on all alike."""
    for command, env in commands.values():
        subprocess.run(command, env=env, check=True, capture_output=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 1),
            "min_ms": round(ordered[0], 1), "max_ms": round(ordered[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        daemon = subprocess.Popen([str(BIN), "--db", f"{scratch}/bench.db", "--port", str(port),
                                   "--no-entry-points", "--log-level", "WARNING"], env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            client_env = {**env, "NO8SD_SERVER": url, "XDG_CONFIG_HOME": scratch}
            times = timed({
                "get": ([str(BIN), "get", "resources"], client_env),
                "version": ([str(BIN), "--version"], client_env),
                "aiohttp": ([sys.executable, "-c", "import aiohttp.web"], env),
                "bare": ([sys.executable, "-c", "pass"], env),
            }, args.runs)
        finally:
            daemon.terminate()
            daemon.wait()
    get, aiohttp_web = summary(times["get"]), summary(times["aiohttp"])
    emit("no8sd get resources", runs=args.runs, **get)
    emit("no8sd --version", runs=args.runs, **summary(times["version"]))
    emit("python -c 'import aiohttp.web'", runs=args.runs, **aiohttp_web)
    emit("python -c pass", runs=args.runs, **summary(times["bare"]))
    emit("ratios", get_to_aiohttp_import=round(get["median_ms"] / aiohttp_web["median_ms"], 2),
         get_to_bare_python=round(get["median_ms"] / summary(times["bare"])["median_ms"], 2))

if __name__ == "__main__":
    main()
