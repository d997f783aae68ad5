"""`no8sd backup` and `no8sd restore` as an operator runs them, against real daemons."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
from pathlib import Path

import aiohttp
from conftest import TESTS, WIDGET_SCHEMA, no8sd_command
from test_cli import assert_one_line_error, run
from test_store_faults import _integrity as integrity

PLUGIN = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")


def names_in(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM resources")}
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def setup_type(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/v1/resource-types", json={
            "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}) as resp:
        assert resp.status == 201, await resp.text()


async def create(http: aiohttp.ClientSession, name: str) -> None:
    async with http.post("/api/v1/resources", json={
            "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1}}) as resp:
        assert resp.status == 201, await resp.text()


async def no8sd(*args: str) -> tuple[int, str, str]:
    """Run the `no8sd` command without blocking the test's own event loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    env["PYTHONPATH"] = str(TESTS)
    proc = await asyncio.create_subprocess_exec(
        *no8sd_command(), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backup_of_a_live_daemon_while_it_writes_then_restore_elsewhere(
        daemon_factory, tmp_path):
    db = tmp_path / "live.db"
    daemon = daemon_factory(*PLUGIN, db=db)
    copy = tmp_path / "copy.db"
    async with aiohttp.ClientSession(daemon.url) as http:
        await setup_type(http)
        for i in range(200):
            await create(http, f"before-{i}")
        written: list[str] = []
        stop = asyncio.Event()

        async def keep_writing() -> None:
            n = 0
            while not stop.is_set():
                await create(http, f"during-{n}")  # every write during the backup succeeds
                written.append(f"during-{n}")
                n += 1

        writer = asyncio.create_task(keep_writing())
        code, out, err = await no8sd("--db", str(db), "backup", str(copy))
        stop.set()
        await writer
    assert code == 0, err
    assert out.startswith(f"Backed up {db} to {copy}: ") and "integrity ok" in out
    assert written, "no write ran during the backup"
    assert integrity(copy) == "ok"
    saved = names_in(copy)
    # A snapshot of one moment: everything acknowledged before it, and the writes that
    # came during it either wholly in or wholly out, in order.
    assert {f"before-{i}" for i in range(200)} <= saved
    during = [name for name in written if name in saved]
    assert during == written[:len(during)]
    assert daemon.stop() == 0

    restored = tmp_path / "elsewhere" / "no8sd.db"
    result = run("--db", str(restored), "restore", str(copy))
    assert result.returncode == 0, result.stderr
    assert f"Restored {restored} from {copy}: " in result.stdout
    assert "kept at" not in result.stdout  # there was nothing to keep
    second = daemon_factory(*PLUGIN, db=restored)
    async with aiohttp.ClientSession(second.url) as http, \
            http.get("/api/v1/resources", params={"limit": 1000}) as resp:
        assert {r["name"] for r in await resp.json()} == saved
    assert second.stop() == 0


async def test_restore_refuses_while_a_daemon_holds_the_database(daemon_factory, tmp_path):
    db = tmp_path / "busy.db"
    daemon = daemon_factory(db=db)
    backup = tmp_path / "backup.db"
    assert run("--db", str(db), "backup", str(backup)).returncode == 0
    before = digest(db)
    result = run("--db", str(db), "restore", str(backup))
    assert_one_line_error(result, f"database {db} is in use by a running no8sd")
    assert digest(db) == before
    assert not list(tmp_path.glob("busy.db.pre-restore-*"))
    assert daemon.stop() == 0


async def test_restore_keeps_the_old_database_with_its_wal_and_never_mixes_them(
        daemon_factory, tmp_path):
    other = tmp_path / "other.db"
    first = daemon_factory(*PLUGIN, db=other)
    async with aiohttp.ClientSession(first.url) as http:
        await setup_type(http)
        await create(http, "from-the-backup")
    assert first.stop() == 0
    backup = tmp_path / "backup.db"
    assert run("--db", str(other), "backup", str(backup)).returncode == 0

    db = tmp_path / "no8sd.db"
    old = daemon_factory(*PLUGIN, db=db)
    async with aiohttp.ClientSession(old.url) as http:
        await setup_type(http)
        for i in range(20):
            await create(http, f"old-{i}")
    old.stop(signal.SIGKILL)  # its last writes are still only in the WAL
    assert Path(f"{db}-wal").stat().st_size > 0

    result = run("--db", str(db), "restore", str(backup))
    assert result.returncode == 0, result.stderr
    [kept] = tmp_path.glob("no8sd.db.pre-restore-*")
    assert f"kept at {kept}" in result.stdout
    assert names_in(kept) == {f"old-{i}" for i in range(20)}  # the WAL was folded in
    assert names_in(db) == {"from-the-backup"}
    assert integrity(db) == "ok"
    restarted = daemon_factory(*PLUGIN, db=db)
    async with aiohttp.ClientSession(restarted.url) as http, \
            http.get("/api/v1/resources") as resp:
        assert [r["name"] for r in await resp.json()] == ["from-the-backup"]
    assert restarted.stop() == 0


def test_backup_destination_rules(tmp_path):
    db = tmp_path / "no8sd.db"
    assert run("--db", str(db), "user", "create", "--admin", "alice",
               stdin="alice-password-123\n").returncode == 0
    folder = tmp_path / "backups"
    folder.mkdir()
    made = run("--db", str(db), "backup", str(folder))
    assert made.returncode == 0, made.stderr
    [stamped] = folder.glob("no8sd-*.db")
    assert integrity(stamped) == "ok"
    taken = tmp_path / "taken.db"
    taken.write_text("keep me")
    assert_one_line_error(run("--db", str(db), "backup", str(taken)),
                          f"{taken} exists; use --force to replace it")
    assert taken.read_text() == "keep me"
    assert run("--db", str(db), "backup", "--force", str(taken)).returncode == 0
    assert integrity(taken) == "ok"
    assert_one_line_error(run("--db", str(db), "backup", "--force", str(db)),
                          "the backup must go to another file than the database")


def test_what_is_not_a_no8sd_database_is_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    assert_one_line_error(run("--db", str(junk), "backup", str(tmp_path / "x.db")),
                          "is not a no8sd database")
    assert not (tmp_path / "x.db").exists()
    target = tmp_path / "new" / "no8sd.db"
    assert_one_line_error(run("--db", str(target), "restore", str(junk)),
                          "is not a no8sd database")
    assert not target.exists()  # not even the empty file the lock needed
    assert_one_line_error(run("--db", str(target), "backup", str(tmp_path / "y.db")),
                          f"there is no database at {target}")


def test_a_backup_from_a_newer_no8sd_is_refused(tmp_path):
    db = tmp_path / "no8sd.db"
    assert run("--db", str(db), "user", "create", "alice",
               stdin="alice-password-123\n").returncode == 0
    backup = tmp_path / "future.db"
    assert run("--db", str(db), "backup", str(backup)).returncode == 0
    conn = sqlite3.connect(backup)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = digest(db)
    assert_one_line_error(run("--db", str(db), "restore", str(backup)),
                          "schema version 999 is newer than this no8sd understands")
    assert digest(db) == before
