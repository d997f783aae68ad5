"""Faults in the store: full or read-only file systems, unreadable, corrupt or too-new
database files, and a second daemon on the same file. Each is a clear error (a JSON 503
for a running daemon, one line and exit code 1 at start-up), never silent damage.

The file-system cases mount small tmpfs file systems, which needs root; they are
skipped where mounting is not allowed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import TESTS, WIDGET_SCHEMA, no8sd_command

PLUGIN = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")


def _run_failing(*args: str, wrap: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run `no8sd` expecting it to refuse to start; return (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    env["PYTHONPATH"] = str(TESTS)
    proc = subprocess.run([*wrap, *no8sd_command(), "--port", "0", "--no-entry-points", *args],
                          env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Any]:
    """Mount small tmpfs file systems under tmp_path (skip if this host forbids it)."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                 str(where)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


async def _setup_type(http: aiohttp.ClientSession, url: str) -> None:
    async with http.post(f"{url}/api/v1/resource-types", json={
            "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}) as resp:
        assert resp.status == 201, await resp.text()


async def _create(http: aiohttp.ClientSession, url: str, name: str,
                  spec: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(f"{url}/api/v1/resources", json={
            "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": spec}) as resp:
        return resp.status, await resp.json()


async def _names(http: aiohttp.ClientSession, url: str) -> set[str]:
    async with http.get(f"{url}/api/v1/resources", params={"limit": 1000}) as resp:
        assert resp.status == 200, await resp.text()
        return {r["name"] for r in await resp.json()}


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


async def test_full_file_system_is_a_503_and_recovers(daemon_factory, mount_tmpfs):
    fs = mount_tmpfs("small", "4m")
    db = fs / "no8sd.db"
    daemon = daemon_factory(*PLUGIN, db=db)
    acked: set[str] = set()
    async with aiohttp.ClientSession() as http:
        await _setup_type(http, daemon.url)
        # Fill what is left of the file system, so the next writes cannot fit.
        ballast = fs / "ballast"
        with open(ballast, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        refused = []
        for i in range(40):
            status, body = await _create(http, daemon.url, f"w{i}", {"size": i + 1,
                                                                   "fail": "x" * 20_000})
            assert status in (201, 503), (status, body)
            if status == 201:
                acked.add(f"w{i}")
            else:
                refused.append(body["detail"])
        assert refused, "the file system never filled up"
        assert all("the change was not saved" in d for d in refused), refused
        assert any("full" in d for d in refused), refused
        # Reads keep working, and show exactly what was acknowledged.
        assert await _names(http, daemon.url) == acked
        # Room again: writes work again, without a restart.
        ballast.unlink()
        status, body = await _create(http, daemon.url, "after", {"size": 1})
        assert status == 201, body
        acked.add("after")
    assert daemon.stop() == 0, daemon.output
    assert "storage error" in daemon.output or "full" in daemon.output
    assert _integrity(db) == "ok"
    again = daemon_factory(*PLUGIN, db=db)
    async with aiohttp.ClientSession() as http:
        assert await _names(http, again.url) == acked


async def test_read_only_file_system_is_refused_at_start(daemon_factory, mount_tmpfs):
    fs = mount_tmpfs("ro", "16m")
    db = fs / "no8sd.db"
    daemon = daemon_factory(*PLUGIN, db=db)
    async with aiohttp.ClientSession() as http:
        await _setup_type(http, daemon.url)
        status, _ = await _create(http, daemon.url, "before", {"size": 1})
        assert status == 201
    assert daemon.stop() == 0, daemon.output
    # (A file system cannot be remounted read-only while the daemon holds files open
    # for writing, so this checks the start-up path.)
    before = _digest(db)
    _remount(fs, "ro")
    try:
        code, out = _run_failing("--db", str(db), *PLUGIN)
        assert code == 1, out
        assert f"no8sd: error: cannot open database {db}: Read-only file system" in out, out
        assert "Traceback" not in out
    finally:
        _remount(fs, "rw")
    assert _digest(db) == before
    assert _integrity(db) == "ok"


def test_read_only_database_file_is_refused(tmp_path):
    # Root ignores file modes; without CAP_DAC_OVERRIDE (dropped with setpriv) it does not.
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the capability that ignores file modes")
    db = tmp_path / "readonly.db"
    sqlite3.connect(db).close()
    db.chmod(0o444)
    before = _digest(db)
    code, out = _run_failing("--db", str(db), wrap=(
        "setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"))
    assert code == 1, out
    assert f"no8sd: error: cannot open database {db}: Permission denied" in out, out
    assert "Traceback" not in out
    assert _digest(db) == before


async def _database_with_rows(daemon_factory: Any, db: Path, count: int = 120) -> None:
    daemon = daemon_factory(*PLUGIN, db=db)
    async with aiohttp.ClientSession() as http:
        await _setup_type(http, daemon.url)
        for i in range(count):
            status, body = await _create(http, daemon.url, f"w{i}", {"size": i + 1,
                                                                   "fail": "y" * 800})
            assert status == 201, body
    assert daemon.stop() == 0


async def test_corrupt_database_is_refused_without_touching_it(daemon_factory, tmp_path):
    db = tmp_path / "corrupt.db"
    await _database_with_rows(daemon_factory, db)
    # Damage pages in the middle of the file (its header stays valid).
    data = bytearray(db.read_bytes())
    page = 4096
    middle = (len(data) // page) // 2
    for p in range(middle, middle + 4):
        data[p * page + 8:(p + 1) * page] = os.urandom(page - 8)
    db.write_bytes(bytes(data))
    before = _digest(db)
    code, out = _run_failing("--db", str(db), *PLUGIN)
    assert code == 1, out
    assert "no8sd: error:" in out and str(db) in out, out
    assert "damaged" in out or "malformed" in out, out
    assert "Traceback" not in out
    assert _digest(db) == before
    # A file that is not a database at all.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 500)
    before = _digest(junk)
    code, out = _run_failing("--db", str(junk))
    assert code == 1, out
    assert f"no8sd: error: cannot use database {junk}: file is not a database" in out, out
    assert _digest(junk) == before


async def test_database_from_a_newer_version_is_refused(daemon_factory, tmp_path):
    db = tmp_path / "newer.db"
    await _database_with_rows(daemon_factory, db, count=3)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = _digest(db)
    code, out = _run_failing("--db", str(db), *PLUGIN)
    assert code == 1, out
    assert "database schema version 999 is newer than this no8sd understands" in out, out
    assert _digest(db) == before


async def test_second_daemon_on_the_same_file_is_refused(daemon_factory, tmp_path):
    db = tmp_path / "shared.db"
    first = daemon_factory(*PLUGIN, db=db)
    code, out = _run_failing("--db", str(db), *PLUGIN)
    assert code == 1, out
    assert f"no8sd: error: database {db} is in use by another running no8sd" in out, out
    # The first daemon is unaffected.
    async with aiohttp.ClientSession() as http:
        await _setup_type(http, first.url)
        status, body = await _create(http, first.url, "still-mine", {"size": 1})
        assert status == 201, body
    assert first.stop() == 0
    assert _integrity(db) == "ok"


async def test_a_large_file_is_checked_after_start_and_damage_makes_it_unready(
        daemon_factory, tmp_path):
    # Large files are not read whole before serving; the same check runs right after.
    # (The size limit is lowered here so a small file stands in for a large one.)
    from conftest import wait_for

    from no8sd.store.db import Database

    db = tmp_path / "corrupt.db"
    await _database_with_rows(daemon_factory, db)
    data = bytearray(db.read_bytes())
    page = 4096
    middle = (len(data) // page) // 2
    for p in range(middle, middle + 4):
        data[p * page + 8:(p + 1) * page] = os.urandom(page - 8)
    db.write_bytes(bytes(data))
    store = Database(db, check_at_open_bytes=0)
    await store.open()
    try:
        await wait_for(lambda: _damage(store), timeout=20)
        assert not await store.ping()
    finally:
        await store.close()


async def _damage(store: Any) -> str | None:
    return store.damage
