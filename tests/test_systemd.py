"""systemd integration: the notifications a `Type=notify` service sends, read from a fake
$NOTIFY_SOCKET (a unix datagram socket the test binds) by a real `no8sd` subprocess, and
the shipped unit file."""

from __future__ import annotations

import configparser
import itertools
import json
import os
import socket
import sqlite3
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import REPO

from no8sd.sdnotify import Notifier
from no8sd.store.db import migration_files

WIDGETS = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")


class FakeSystemd:
    """A notification socket: what systemd would receive, with when it arrived."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def _read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20.0,
                 ) -> dict[str, str]:
        """The first message (after those already seen) carrying `key` (= `value`)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.messages):
                fields = self.messages[seen][1]
                seen += 1
                if key in fields and (value is None or fields[key] == value):
                    return fields
            self._read()
        raise AssertionError(f"no {key} notification; got {self.messages}")

    def wait_count(self, key: str, count: int, timeout: float = 20.0) -> list[float]:
        """When the messages carrying `key` are `count` or more, their arrival times."""
        deadline = time.monotonic() + timeout
        while len(self.times_of(key)) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"fewer than {count} {key} notifications: {self.messages}")
            self._read()
        return self.times_of(key)

    def times_of(self, key: str) -> list[float]:
        return [at for at, fields in self.messages if key in fields]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    fake = FakeSystemd(f"@no8sd-test-{uuid.uuid4().hex}")
    yield fake
    fake.close()


def health(url: str) -> int:
    with urllib.request.urlopen(url + "/health", timeout=5) as resp:
        return resp.status


def test_ready_status_watchdog_and_stopping(daemon_factory, systemd):
    daemon = daemon_factory(*WIDGETS, env={"NOTIFY_SOCKET": systemd.address,
                                           "WATCHDOG_USEC": "400000"})
    ready = systemd.wait_for("READY", "1")
    # READY=1 comes once HTTP listens: the daemon answers at once.
    assert health(daemon.url) == 200
    assert ready["STATUS"] == "Serving 0 resources (0 failed); 1/1 plugins running"
    # Pings every half watchdog period, from the running loop.
    for _ in range(4):
        systemd.wait_for("WATCHDOG", "1", timeout=5)
    assert daemon.stop() == 0, daemon.output
    stopping = systemd.wait_for("STOPPING", "1", timeout=5)
    assert stopping["STATUS"] == "Shutting down"


def test_a_blocked_loop_stops_the_watchdog_pings(daemon_factory, systemd, tmp_path):
    daemon = daemon_factory("--plugin", "no8sd_testplugins.misbehaving:BlocksLoop",
                            env={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "400000"})
    systemd.wait_for("READY", "1")
    systemd.wait_for("WATCHDOG", "1")
    def post(path: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(daemon.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 201

    post("/api/v1/resource-types", {"name": "BlocksLoop", "version": "v1",
                                    "schema": {"type": "object"}})
    post("/api/v1/resources", {"name": "blocker", "resource_type_name": "BlocksLoop",
                               "resource_type_version": "v1", "spec": {"block": 2.5}})
    pings_before = len(systemd.times_of("WATCHDOG"))
    # Pings resume once the loop runs again; the gap spans the block, so systemd (which
    # expects one every 0.4 s here) would have restarted the service.
    # (A lower bound: a loaded machine only widens the gaps, it cannot close this one.)
    pings = systemd.wait_count("WATCHDOG", pings_before + 6)
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) > 2.0, gaps
    assert daemon.stop() == 0
    assert "blocked for more than" in daemon.output and "'blocks-loop'" in daemon.output


def test_migration_extends_the_start_timeout_and_keeps_a_copy(daemon_factory, systemd,
                                                               tmp_path):
    db = tmp_path / "old.db"
    files = migration_files()
    older = files[-2][0]  # a database one migration behind
    conn = sqlite3.connect(db, isolation_level=None)
    for number, _name, sql in files[:-1]:
        conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                 " VALUES ('Widget', 'v1', '{}', 0, 0)")
    conn.close()
    daemon = daemon_factory(*WIDGETS, db=db, env={"NOTIFY_SOCKET": systemd.address})
    extend = systemd.wait_for("EXTEND_TIMEOUT_USEC")
    assert int(extend["EXTEND_TIMEOUT_USEC"]) >= 10_000_000
    systemd.wait_for("READY", "1")
    copy = tmp_path / f"old.db.pre-{files[-1][0]:04d}"
    assert f"Kept a copy of the database before migration {files[-1][0]:04d} at {copy}" \
        in daemon.output
    kept = sqlite3.connect(copy)
    assert kept.execute("PRAGMA user_version").fetchone()[0] == older
    assert kept.execute("SELECT name FROM resource_types").fetchall() == [("Widget",)]
    kept.close()
    assert daemon.stop() == 0


def test_a_fresh_database_needs_no_copy(daemon_factory, tmp_path):
    daemon = daemon_factory(db=tmp_path / "new.db")
    assert daemon.stop() == 0
    assert not list(tmp_path.glob("new.db.pre-*"))
    assert "Kept a copy" not in daemon.output


def test_notifier_speaks_to_a_socket_path_and_minds_the_watchdog_pid(tmp_path):
    path = str(tmp_path / "notify.sock")
    fake = FakeSystemd(path)
    try:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000",
                                          "WATCHDOG_PID": str(os.getpid())})
        assert notifier.watchdog_interval == 1.5
        notifier.ready("up")
        notifier.close()
        assert fake.wait_for("READY", "1", timeout=2) == {"READY": "1", "STATUS": "up"}
        # The watchdog was meant for another process (our parent, say): no pings from us.
        other = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000",
                                       "WATCHDOG_PID": str(os.getppid())})
        assert other.watchdog_interval is None
        # Without a service manager nothing is sent and nothing fails.
        assert Notifier.from_environ({}).notify("READY=1") is False
    finally:
        fake.close()


def test_the_environment_is_not_passed_on():
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "1", "PATH": "/bin"}
    Notifier.from_environ(env)
    assert env == {"PATH": "/bin"}


def test_unit_file_runs_no8sd_as_a_notify_service_with_a_watchdog():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "contrib" / "no8sd.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"  # plugins' child processes cannot speak for us
    assert int(service["WatchdogSec"].rstrip("s")) > 0
    assert service["StateDirectory"] == "no8sd"
    # The credential name is the file no8sd reads from $CREDENTIALS_DIRECTORY.
    assert service["LoadCredential"].split(":")[0] == "initial_admin_password"
