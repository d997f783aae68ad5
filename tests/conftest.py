"""Shared fixtures: settings on a temporary SQLite file, an in-process server, a daemon
subprocess, a clock tests move by hand, the one polling helper (`wait_for`), and a check
that no test leaves asyncio tasks running."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from no8sd.app import create_app
from no8sd.config import Settings
from no8sd.timeutil import Clock

TESTS = Path(__file__).parent
REPO = TESTS.parent

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "size": {"type": "integer", "minimum": 1},
        "color": {"type": "string", "enum": ["red", "green", "blue"]},
        "fail": {"type": "string"},
        "raise": {"type": "string"},
        "sleep": {"type": "number"},
        "outputs": {"type": "object"},
        "keep": {"type": "boolean"},
        "env": {"type": "array", "items": {"type": "string"}},
    },
}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test daemon: temp DB, any free port, no installed plugins."""
    values: dict[str, Any] = {
        "db_path": tmp_path / "test.db",
        "port": 0,
        "entry_points": False,
        "drift_interval": 300, "backoff_base": 10, "backoff_max": 600, "reconcile_timeout": 30,
        "shutdown_grace": 3.0,
        "plugin_restart_base": 0.05,
        "synchronous": "NORMAL",
    }
    rules = overrides.pop("scheduling", None)
    if rules is not None:  # a lifecycle.Scheduling: its values become the settings'
        values.update(drift_interval=rules.drift_interval, backoff_base=rules.backoff_base,
                      backoff_max=rules.backoff_max, reconcile_timeout=rules.reconcile_timeout)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


class FakeClock(Clock):
    """A clock that stands still until a test moves it.

    Wall time starts at the real time, cut to a whole second (stored timestamps look
    ordinary, and advancing by whole seconds keeps them exact through their ISO text), and
    monotonic time at an arbitrary mark; `advance` moves both and tells the daemon, whose
    reconcile loops then look at their due times again. Leases, backoff, drift, token lifetimes and
    login throttle windows thus run out when the test says so, not when a sleep ends.
    """

    def __init__(self) -> None:
        self.wall = float(int(time.time()))
        self.mono = 1_000.0
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:  # type: ignore[override]
        return self.wall

    def monotonic(self) -> float:  # type: ignore[override]
        return self.mono

    def on_jump(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (wall and monotonic alike)."""
        assert seconds >= 0, "time only moves forward"
        self.wall += seconds
        self.mono += seconds
        for callback in list(self._listeners):
            callback()


@pytest.fixture
def clock() -> FakeClock:
    """A FakeClock; hand it to the daemon with `make_client(..., clock=clock)`."""
    return FakeClock()


@pytest.fixture(autouse=True)
async def no_tasks_left_running() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running in its loop once its fixtures are torn
    down: a task nobody waits for hides crashes and leaks into whatever runs next."""
    yield
    me = asyncio.current_task()
    left: list[asyncio.Task[Any]] = []
    # Tasks that are already ending (a connection closing) get a few turns of the loop.
    for _ in range(20):
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not left:
            return
        await asyncio.sleep(0)
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    names = ", ".join(sorted(f"{t.get_name()} ({t.get_coro()!r})" for t in left))
    pytest.fail(f"the test left {len(left)} asyncio task(s) running: {names}")


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path) -> Callable[..., Awaitable[Any]]:
    """Start a real aiohttp server on a temp SQLite file with the given plugin instances."""

    async def factory(*plugins: Any, settings: Settings | None = None, **overrides: Any) -> Any:
        app = create_app(settings or make_settings(tmp_path, **overrides), plugins=list(plugins))
        return await aiohttp_client(app)

    return factory


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0,
                   interval: float = 0.02) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy, and return that;
    fail after `timeout` seconds. The one way tests wait for a state: never a fixed sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


async def create_widget_type(client: Any, version: str = "v1") -> dict[str, Any]:
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Widget", "version": version, "schema": WIDGET_SCHEMA})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def create_widget(client: Any, name: str, spec: dict[str, Any] | None = None,
                        **extra: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/resources", json={
        "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": spec or {"size": 1}, **extra})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get_json(client: Any, path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def all_ready(client: Any) -> bool:
    """Answer whether every resource (up to 1,000) is `ready`."""
    listed = await get_json(client, "/api/v1/resources?limit=1000")
    return all(r["status"] == "ready" for r in listed)


async def wait_ready(client: Any, resource_id: int, generation: int = 1) -> dict[str, Any]:
    """Wait until a resource is `ready` with at least `generation` observed; return it."""

    async def check() -> dict[str, Any] | None:
        body = await get_json(client, f"/api/v1/resources/{resource_id}")
        ok = body["status"] == "ready" and body["observed_generation"] >= generation
        return body if ok else None

    return await wait_for(check)


# ---- the daemon as a subprocess -------------------------------------------------------


def no8sd_command() -> list[str]:
    """The installed `no8sd` console script next to this interpreter (or python -m)."""
    script = Path(sys.executable).with_name("no8sd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "no8sd"]


class Daemon:
    """A `no8sd` subprocess; its stderr is collected for assertions."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
        for key in [k for k in self.env if k.startswith("NO8SD_")]:
            if env is None or key not in env:
                del self.env[key]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.lines: list[str] = []
        self._drain: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> Daemon:
        self.proc = subprocess.Popen(
            [*no8sd_command(), *self.args], env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                self._drain_in_background()
                return self
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        raise AssertionError("daemon did not start:\n" + "\n".join(self.lines))

    def _drain_in_background(self) -> None:
        def drain() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not stop in time:\n" + self.output) from None
        self.close()
        return code

    def close(self) -> None:
        """Once the process has ended: take in its last lines and close its output pipe."""
        assert self.proc is not None and self.proc.stdout is not None
        if self._drain is not None:
            self._drain.join(20)  # it ends at the end of the output: every line is in
        if self._drain is None or not self._drain.is_alive():
            self.proc.stdout.close()


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Any:
    """Start `no8sd` subprocesses; any still running at the end are killed."""
    started: list[Daemon] = []

    def factory(*args: str, env: dict[str, str] | None = None, db: Path | None = None,
                port: int = 0, entry_points: bool = False) -> Daemon:
        full = ["--db", str(db or tmp_path / "daemon.db"), "--port", str(port),
                *([] if entry_points else ["--no-entry-points"]), *args]
        daemon = Daemon(full, env).start()
        started.append(daemon)
        return daemon

    yield factory
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        daemon.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def json_request(url: str, method: str = "GET", body: Any = None,
                 token: str | None = None) -> tuple[int, Any]:
    """A synchronous JSON request (for tests driving a daemon subprocess without a loop):
    (status, decoded body or None), errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def on_terminal(args: list[str], env: dict[str, str], *, stdout: bool = True,
                timeout: float = 60) -> tuple[int, str]:
    """Run a command with its stderr (and stdout, unless `stdout` is False: then it is
    thrown away) on a pseudo-terminal; return its exit code and what the terminal showed."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(args, stdout=secondary if stdout else subprocess.DEVNULL,
                            stderr=secondary, stdin=subprocess.DEVNULL, env=env,
                            close_fds=True)
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the terminal closed: the command is done
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode()
