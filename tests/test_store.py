"""The store: WAL, migrations, the single writer under concurrency, reads beside writes,
and a due-work query served from its index."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from conftest import create_widget_type
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.core import changes
from no8sd.errors import Conflict
from no8sd.store.db import Database, migration_files


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "store.db")
    await database.open()
    yield database
    await database.close()


async def test_wal_mode_foreign_keys_and_migrations(db, tmp_path):
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == migration_files()[-1][0]
    tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"resource_types", "resources", "reconciliation_history", "events"} <= tables


async def test_reopening_applies_nothing_twice_and_keeps_data(tmp_path):
    first = Database(tmp_path / "again.db")
    await first.open()
    await first.write(lambda tx: tx.execute(
        "INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
        " VALUES ('T', 'v1', '{}', 0, 0)"))
    await first.close()
    second = Database(tmp_path / "again.db")
    await second.open()
    assert (await second.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 1
    await second.close()


async def test_many_concurrent_writes_never_hit_database_is_locked(db):
    def insert(tx, i):
        tx.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                   " VALUES (?, 'v1', '{}', 0, 0)", (f"T{i}",))
        return i

    results = await asyncio.gather(*(db.write(insert, i) for i in range(500)))
    assert results == list(range(500))
    assert (await db.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 500


async def test_a_failing_unit_rolls_back_alone(db):
    def good(tx, name):
        tx.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                   " VALUES (?, 'v1', '{}', 0, 0)", (name,))

    def bad(tx):
        good(tx, "half-written")
        raise Conflict("changed my mind")

    outcomes = await asyncio.gather(db.write(good, "a"), db.write(bad), db.write(good, "b"),
                                    return_exceptions=True)
    assert outcomes[0] is None and isinstance(outcomes[1], Conflict) and outcomes[2] is None
    names = [r[0] for r in await db.fetchall("SELECT name FROM resource_types ORDER BY name")]
    assert names == ["a", "b"]


async def test_reads_are_not_blocked_by_a_long_write(db, tmp_path):
    # Hold a write transaction open on the file (as a slow commit would) ...
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                  " VALUES ('slow', 'v1', '{}', 0, 0)")
    try:
        started = time.monotonic()
        rows = await db.fetchall("SELECT name FROM resource_types")
        took = time.monotonic() - started
        assert rows == []  # the uncommitted write is invisible ...
        assert took < 1.0  # ... and the read did not wait for it
    finally:
        other.execute("COMMIT")
        other.close()
    assert (await db.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 1


async def test_the_loop_keeps_running_while_a_batch_commits(db):
    """Commits wait for the disk off the event loop: timers keep firing meanwhile."""
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.ensure_future(ticker())

    def insert(tx, i):
        tx.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                   " VALUES (?, 'v1', '{}', 0, 0)", (f"T{i}",))

    for round_ in range(20):
        await asyncio.gather(*(db.write(insert, round_ * 50 + i) for i in range(50)))
    task.cancel()
    assert ticks > 0
    assert (await db.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 1000


async def test_due_work_query_uses_the_index(db):
    plans = []
    for sql, params in (
        ("SELECT next_reconcile_time, id FROM resources INDEXED BY resources_due"
         " WHERE resource_type_name = ? AND due_class = ? AND next_reconcile_time <= ?"
         " AND next_reconcile_time IS NOT NULL ORDER BY next_reconcile_time LIMIT ?",
         ("Widget", 0, 1e12, 10)),
    ):
        rows = await db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        plans.append(" ".join(r[3] for r in rows))
    for plan in plans:
        assert "USING INDEX resources_due" in plan or "USING COVERING INDEX resources_due" in plan
        assert "SCAN resources" not in plan
        assert "TEMP B-TREE" not in plan  # no sort: the index order is the due order


async def test_claiming_due_work_does_not_scan(make_client):
    """With 5,000 resources not due, claiming touches none of them."""
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    from no8sd.api import keys
    from no8sd.lifecycle import Scheduling

    database = client.server.app[keys.CORE].db
    type_id = 1

    def bulk(tx):
        tx.conn.executemany(
            "INSERT INTO resources (name, resource_type_id, resource_type_name,"
            " resource_type_version, spec_hash, status, next_reconcile_time, due_class,"
            " created_at, updated_at) VALUES (?, ?, 'Widget', 'v1', '', 'ready', ?, 1, 0, 0)",
            [(f"r{i}", type_id, 4e9 + i) for i in range(5000)])

    await database.write(bulk)
    steps = []

    def claim(tx):
        tx.conn.set_progress_handler(lambda: steps.append(1), 100)
        try:
            return changes.claim(tx, types=["Widget"], limit=10, exclude=frozenset(),
                                 now=time.time(), rules=Scheduling())
        finally:
            tx.conn.set_progress_handler(None, 100)

    assert await database.write(claim) == []
    assert len(steps) < 5  # a scan of 5,000 rows would take thousands of VM steps


async def test_a_created_row_is_what_the_database_holds(db):
    """Creates build the new row in memory instead of reading it back; it must match."""
    import json as _json

    from no8sd.store import resource_types as types_store
    from no8sd.store.rows import Resource

    rtype = await db.write(types_store.insert, "T", "v1", {}, None, {}, time.time())
    created = await db.write(lambda tx: changes.create(
        tx, resource_type=rtype, name="r", spec={"a": [1, "é"]}, plugin_config={"p": 1},
        metadata={"m": True}, action_plugin="", finalizers=["owner"], now=time.time()))
    row = await db.fetchone("SELECT * FROM resources WHERE id = ?", (created.id,))
    assert created == Resource.from_row(row)
    from no8sd.store import events as events_store

    (event,) = await events_store.after(db, 0, limit=10, resource_id=created.id)
    payload = _json.loads(event.data)
    assert payload["event_type"] == "CREATED" and payload["resource_data"]["spec"] == {
        "a": [1, "é"]}
    assert set(payload) == {"event_type", "resource_id", "resource_name", "resource_type_name",
                            "resource_type_version", "resource_data", "timestamp", "actor"}
