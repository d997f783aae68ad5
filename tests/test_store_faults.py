"""Faults in the store: full or read-only storage, unreadable, corrupt or too-new database
files, and a second daemon on the same file. Each is a clear error (a JSON 503 for a
running daemon, one line and exit code 1 at start-up), never silent damage.

Every case runs as any user, root included, and needs no mounting: full storage is
SQLite's own limit on the file (`PRAGMA max_page_count` on the writer's connection), which
fails a write with the very error a full disk gives (SQLITE_FULL); read-only storage is
`PRAGMA query_only` (SQLITE_READONLY, as a read-only file system gives) for a running
daemon, and a file without write permission at start-up (as root, with the capability
that ignores file modes dropped).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from conftest import TESTS, WIDGET_SCHEMA, create_widget_type, no8sd_command
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys

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


async def _setup_type(http: aiohttp.ClientSession, url: str) -> None:
    async with http.post(f"{url}/api/v1/resource-types", json={
            "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}) as resp:
        assert resp.status == 201, await resp.text()


async def _create(http: Any, url: str, name: str, spec: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(f"{url}/api/v1/resources", json={
            "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": spec}) as resp:
        return resp.status, await resp.json()


async def _names(http: Any, url: str) -> set[str]:
    async with http.get(f"{url}/api/v1/resources", params={"limit": 1000}) as resp:
        assert resp.status == 200, await resp.text()
        return {r["name"] for r in await resp.json()}


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


async def writer_pragma(client: Any, pragma: str) -> Any:
    """Run `PRAGMA ...` on the daemon's writing connection (it stays set for later writes)
    and return its answer."""
    database = client.server.app[keys.CORE].db
    row = await database.write(lambda tx: tx.execute(f"PRAGMA {pragma}").fetchone())
    return None if row is None else row[0]


async def fill_storage(client: Any) -> None:
    """Leave the database a few pages of room: the next sizeable writes find it full."""
    pages = await writer_pragma(client, "page_count")
    assert await writer_pragma(client, f"max_page_count = {pages + 4}") == pages + 4


async def make_room(client: Any) -> None:
    await writer_pragma(client, "max_page_count = 4294967294")


async def test_full_storage_is_a_503_and_recovers(make_client, tmp_path, caplog):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await fill_storage(client)
    acked: set[str] = set()
    refused = []
    for i in range(40):
        status, body = await _create(client, "", f"w{i}", {"size": i + 1, "fail": "x" * 20_000})
        if status == 201:
            acked.add(f"w{i}")
        else:
            assert status == 503, (status, body)
            refused.append(body["detail"])
    assert refused, "the storage never filled up"
    assert set(refused) == {"storage is full; the change was not saved"}
    assert "storage error: database or disk is full" in caplog.text
    # Reads keep working, and show exactly what was acknowledged.
    assert await _names(client, "") == acked
    # Room again: writes work again, without a restart.
    await make_room(client)
    status, body = await _create(client, "", "after", {"size": 1})
    assert status == 201, body
    acked.add("after")
    await client.close()
    db = tmp_path / "test.db"
    assert _integrity(db) == "ok"
    again = await make_client(WidgetReconciler())
    assert await _names(again, "") == acked


async def test_read_only_storage_is_a_503_and_damages_nothing(make_client, tmp_path):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    status, _ = await _create(client, "", "before", {"size": 1})
    assert status == 201
    await writer_pragma(client, "query_only = 1")
    for name in ("during-1", "during-2"):
        status, body = await _create(client, "", name, {"size": 2})
        assert (status, body) == (503, {
            "detail": "storage is read-only; the change was not saved"})
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["reasons"] == [
        "the database does not take writes: storage is read-only; the change was not saved"]
    assert await _names(client, "") == {"before"}  # reads go on
    await client.close()
    db = tmp_path / "test.db"
    assert _integrity(db) == "ok"
    # The setting belonged to that connection: a restart writes again.
    again = await make_client(WidgetReconciler())
    status, body = await _create(again, "", "after", {"size": 3})
    assert status == 201, body
    assert await _names(again, "") == {"before", "after"}


async def test_storage_filling_up_mid_batch_fails_the_batch_and_stores_none_of_it(tmp_path):
    """SQLite rolls a whole transaction back when the disk fills mid-statement: the changes
    of that batch so far are refused with the cause, none is half-stored, the ones still
    waiting run in a new transaction, and what each caller was told is what the file
    holds."""
    from no8sd.errors import Unavailable
    from no8sd.store.db import Database

    database = Database(tmp_path / "batch.db")
    await database.open()
    try:
        def insert(tx, name, size):
            tx.execute("INSERT INTO resource_types (name, version, schema, created_at,"
                       " updated_at) VALUES (?, 'v1', ?, 0, 0)", (name, "{}" + " " * size))
            return name

        def limit(tx):
            pages = tx.execute("PRAGMA page_count").fetchone()[0]
            tx.execute(f"PRAGMA max_page_count = {pages + 2}")

        await database.write(limit)
        # Units waiting together run as one batch: small, too big for the room left, small.
        outcomes = await asyncio.gather(
            database.write(insert, "before", 10), database.write(insert, "huge", 100_000),
            database.write(insert, "after", 10), return_exceptions=True)
        told = {o for o in outcomes if isinstance(o, str)}
        refused = [o for o in outcomes if not isinstance(o, str)]
        assert "huge" not in told and refused, outcomes
        assert all(isinstance(o, Unavailable) and
                   o.detail == "storage is full; the change was not saved" for o in refused)
        stored = {r[0] for r in await database.fetchall("SELECT name FROM resource_types")}
        assert stored == told  # what the callers were told is what the file holds
        # The writer goes on: a change that fits is stored.
        assert await database.write(insert, "fits", 10) == "fits"
    finally:
        await database.close()


def test_read_only_database_file_is_refused_at_start(tmp_path):
    db = tmp_path / "readonly.db"
    sqlite3.connect(db).close()
    db.chmod(0o444)
    before = _digest(db)
    # Root ignores file modes, unless the capabilities that let it are dropped.
    wrap: tuple[str, ...] = ()
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "running as root needs setpriv (util-linux)"
        wrap = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                "--inh-caps=-dac_override,-dac_read_search,-fowner")
    code, out = _run_failing("--db", str(db), wrap=wrap)
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
