"""Benchmark what the status page costs the daemon; prints one JSON line per figure.

Run by hand from the repository (not by CI):  python tests/bench/bench_ui.py [--quick]

1. Start time and idle memory, against a baseline measured in the same run: the daemon
   of another git ref (default `main`, extracted with `git archive`, so the checkout is
   untouched) and a copy of this tree, started the same way, taking turns, several
   times; medians are reported.
2. Memory after the page is loaded: every file of the page plus the API reads it makes.
3. The page's reads over 100,000 resources (counts, searched and sorted pages), as
   latencies and as ratios of the plain list (GET /api/v1/resources?limit=50) measured
   on the same daemon and database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return bytes(resp.read())


def extract(ref: str, into: Path) -> Path:
    """The package tree of `ref`, for running its daemon beside this one."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref, "no8sd"],
                             check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


class Daemon:
    """A daemon process from a source tree (None: this checkout, as installed)."""

    def __init__(self, source: Path | None, db: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
        if source is not None:
            env["PYTHONPATH"] = str(source)
        code = "import sys; from no8sd.cli import main; sys.argv[0] = 'no8sd'; main()"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "--db", str(db), "--port", str(self.port),
             "--no-entry-points", "--log-level", "WARNING", *extra],
            env=env, cwd=tempfile.gettempdir())

    def wait_healthy(self, timeout: float = 60) -> float:
        while time.monotonic() - self.started < timeout:
            try:
                if get(self.url + "/health"):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.002)
        raise RuntimeError("the daemon never became healthy")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def bench_start(this: Path, baseline: Path, runs: int) -> None:
    """Start-to-first-/health and idle RSS, this tree and the baseline taking turns (in
    alternating order, both imported from a plain copy; the first run of each, which
    compiles the byte code, is not counted)."""
    figures: dict[str, dict[str, list[float]]] = {
        "this": {"start_ms": [], "idle_rss_kib": []},
        "baseline": {"start_ms": [], "idle_rss_kib": []}}
    trees = [("this", this), ("baseline", baseline)]
    for i in range(runs + 1):
        for label, source in trees if i % 2 else trees[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                daemon = Daemon(source, Path(tmp) / "b.db")
                try:
                    started = daemon.wait_healthy() * 1000
                    if i == 0:
                        continue
                    figures[label]["start_ms"].append(started)
                    time.sleep(1.5)  # let start-up garbage settle before reading RSS
                    figures[label]["idle_rss_kib"].append(rss_kib(daemon.proc.pid))
                    if label == "this" and i == runs - 1:
                        bench_page_memory(daemon)
                finally:
                    daemon.stop()
    medians = {label: {k: statistics.median(v) for k, v in values.items()}
               for label, values in figures.items()}
    emit("start_and_idle", runs=runs,
         this_start_ms=round(medians["this"]["start_ms"], 1),
         baseline_start_ms=round(medians["baseline"]["start_ms"], 1),
         start_ratio=round(medians["this"]["start_ms"] / medians["baseline"]["start_ms"], 3),
         # The fastest run is the least disturbed by other work on a shared machine.
         this_start_min_ms=round(min(figures["this"]["start_ms"]), 1),
         baseline_start_min_ms=round(min(figures["baseline"]["start_ms"]), 1),
         this_idle_rss_kib=round(medians["this"]["idle_rss_kib"]),
         baseline_idle_rss_kib=round(medians["baseline"]["idle_rss_kib"]),
         idle_rss_ratio=round(medians["this"]["idle_rss_kib"]
                              / medians["baseline"]["idle_rss_kib"], 3))


def page_files(url: str) -> list[str]:
    """Every file the page loads, following the module imports from index.html."""
    wanted = {"/"}
    seen: set[str] = set()
    while wanted - seen:
        path = sorted(wanted - seen)[0]
        seen.add(path)
        text = get(url + path).decode()
        wanted |= set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', text))
        wanted |= {f"/ui/{name}" for name in re.findall(r'from "\./([a-z]+\.js)"', text)}
    return sorted(seen)


def bench_page_memory(daemon: Daemon) -> None:
    """RSS growth from serving the page's files twenty times, then from the API reads
    the page makes (which any API client would cause too)."""
    idle = rss_kib(daemon.proc.pid)
    files = page_files(daemon.url)
    for _ in range(20):
        for path in files:
            get(daemon.url + path)
    time.sleep(1.5)
    after_files = rss_kib(daemon.proc.pid)
    reads = ["/api/v1/auth/permissions", "/api/v1/resource-counts",
             "/api/v1/resource-types?limit=1000",
             "/api/v1/resource-search?status=failed&sort=-updated&limit=8",
             "/api/v1/resource-search", "/api/v1/plugins/reconcilers"]
    for _ in range(20):
        for path in reads:
            get(daemon.url + path)
    time.sleep(1.5)
    after_reads = rss_kib(daemon.proc.pid)
    emit("page_load_memory", files=len(files),
         bytes=sum(len(get(daemon.url + p)) for p in files), idle_rss_kib=idle,
         after_serving_files_20x_kib=after_files, files_growth_kib=after_files - idle,
         after_api_reads_20x_kib=after_reads, reads_growth_kib=after_reads - after_files)


def build_fleet(db: Path, total: int, not_ready: float) -> None:
    """A database of `total` resources in 5 types, `not_ready` of them not ready."""
    daemon = Daemon(None, db)  # creates the file and applies the migrations
    daemon.wait_healthy()
    daemon.stop()
    conn = sqlite3.connect(db, isolation_level=None)
    now = time.time()
    conditions = json.dumps([
        {"type": t, "status": s, "reason": r, "message": m,
         "lastTransitionTime": "2026-01-01T00:00:00+00:00", "observedGeneration": 1}
        for t, s, r, m in (("Ready", "True", "ReconcileSuccess", "Resource reconciled"),
                           ("Reconciling", "False", "ReconcileComplete", "done"),
                           ("Degraded", "False", "NoErrors", ""))])
    rng = random.Random(1)
    conn.execute("BEGIN")
    for t in range(5):
        conn.execute("INSERT INTO resource_types (name, version, schema, created_at,"
                     " updated_at) VALUES (?, 'v1', '{}', ?, ?)", (f"Type{t}", now, now))
    rows = []
    for i in range(total):
        status = rng.choice(["failed", "pending", "reconciling"]) \
            if rng.random() < not_ready else "ready"
        spec = json.dumps({"size": i, "host": f"host-{i}.example.org", "labels": {"n": i}})
        rows.append((f"res-{rng.randrange(10**8):08d}-{i}", i % 5 + 1, f"Type{i % 5}", "v1",
                     spec, status, conditions, now - total + i, now - rng.random() * 1e5))
    conn.executemany(
        "INSERT INTO resources (name, resource_type_id, resource_type_name,"
        " resource_type_version, spec, spec_hash, status, conditions, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()


def latency_ms(url: str, repeat: int) -> float:
    get(url)  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        get(url)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


def bench_reads(total: int, repeat: int) -> None:
    for not_ready in (0.02, 0.5):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "fleet.db"
            build_fleet(db, total, not_ready)
            daemon = Daemon(None, db)
            try:
                daemon.wait_healthy()
                base = latency_ms(daemon.url + "/api/v1/resources?limit=50", repeat)
                emit("reads_baseline", resources=total, not_ready=not_ready,
                     path="/api/v1/resources?limit=50", p50_ms=base)
                deep = total - 50
                for path in ("/api/v1/resource-counts",
                             "/api/v1/resource-search",
                             "/api/v1/resource-search?sort=name",
                             f"/api/v1/resource-search?sort=name&offset={deep // 2}",
                             f"/api/v1/resource-search?offset={deep}",
                             "/api/v1/resource-search?sort=-updated",
                             "/api/v1/resource-search?status=failed&sort=-updated&limit=8",
                             "/api/v1/resource-search?resource_type_name=Type2"
                             "&resource_type_version=v1&sort=name",
                             "/api/v1/resource-search?status=ready&sort=name",
                             "/api/v1/resource-search?name_contains=123",
                             "/api/v1/resource-search?name_contains=no-such-name"):
                    took = latency_ms(daemon.url + path, repeat)
                    emit("reads", resources=total, not_ready=not_ready, path=path,
                         p50_ms=took, ratio_to_list=round(took / base, 2))
                emit("fleet_rss", resources=total, not_ready=not_ready,
                     rss_kib=rss_kib(daemon.proc.pid))
            finally:
                daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, 20,000 resources")
    parser.add_argument("--baseline", default="main", help="git ref to compare start-up with")
    parser.add_argument("--only", choices=["start", "reads"], help="run one part")
    parser.add_argument("--runs", type=int, help="start-up runs (default 9, --quick 3)")
    args = parser.parse_args()
    if args.only != "reads":
        bench_start_against(args.baseline, args.runs or (3 if args.quick else 9))
    if args.only != "start":
        bench_reads(20_000 if args.quick else 100_000, 5 if args.quick else 15)


def bench_start_against(ref: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        baseline = extract(ref, Path(tmp) / "baseline")
        this = Path(tmp) / "this"
        shutil.copytree(REPO / "no8sd", this / "no8sd",
                        ignore=shutil.ignore_patterns("__pycache__"))
        bench_start(this, baseline, runs)


if __name__ == "__main__":
    main()
