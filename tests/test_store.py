"""The store: WAL, migrations, the single writer under concurrency, reads beside writes,
and a due-work query served from its index."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time

import pytest
from conftest import create_widget, create_widget_type, get_json, wait_for, wait_ready
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys
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
        # ... a read answers while it is open: one that waited for it would wait until it
        # timed out and failed, since nothing here ends that transaction first.
        rows = await db.fetchall("SELECT name FROM resource_types")
        assert rows == []  # the uncommitted write is invisible
    finally:
        other.execute("COMMIT")
        other.close()
    assert (await db.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 1


async def test_the_loop_keeps_running_while_batches_commit(db):
    """Commits wait for the disk off the event loop: timers keep firing on time meanwhile.
    (Finer figures: tests/bench/bench_responsiveness.py.)"""
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    writing = True

    async def ticker():
        while writing:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            lateness.append(loop.time() - due)

    task = asyncio.create_task(ticker())

    def insert(tx, i):
        tx.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                   " VALUES (?, 'v1', ?, 0, 0)", (f"T{i}", "{}" + " " * 4000))

    try:
        for round_ in range(20):
            await asyncio.gather(*(db.write(insert, round_ * 50 + i) for i in range(50)))
    finally:
        writing = False
        await task
    assert (await db.fetchone("SELECT COUNT(*) FROM resource_types"))[0] == 1000
    assert lateness, "the timer never fired while the batches committed"
    # Generous: a batch's units are cut off after milliseconds and its commit waits for
    # the disk off the loop, so a timer is late by milliseconds, not by whole commits.
    assert max(lateness) < 1.0, max(lateness)


async def _readers(db):
    """Every connection of the store's read pool (it hands them out in turn)."""
    found = []
    while (reader := db.reader()) not in found:
        found.append(reader)
    return found


def _plan(conn, statement):
    """EXPLAIN QUERY PLAN of one captured statement, as its lines' text."""
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement)]


def _reads_resources_by_index(lines):
    """Each step over `resources` searches or walks an index (never the table itself), and
    nothing is sorted afterwards."""
    steps = [line for line in lines if re.search(r"\b(SCAN|SEARCH) resources\b", line)]
    return bool(steps) and all("USING" in line for line in steps) and not any(
        "TEMP B-TREE" in line for line in lines)


async def test_lists_and_claims_read_resources_through_an_index(make_client, tmp_path):
    """The SQL the daemon runs for lists (every filter, both ways of paging) and for
    claiming due work, captured as it runs, is planned over an index: no query walks
    every resource, however many there are."""
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    database = client.server.app[keys.CORE].db
    widget = await create_widget(client, "w")
    await wait_ready(client, widget["id"])
    statements: list[str] = []
    for reader in await _readers(database):
        await reader.set_trace_callback(statements.append)
    # Set on the writer's connection, the callback stays for the units that follow.
    await database.write(lambda tx: tx.conn.set_trace_callback(statements.append))
    try:
        for query in ("", "?resource_type=Widget", "?resource_type=Widget&version=v1",
                      "?status=ready", "?status=ready&resource_type=Widget",
                      "?limit=10&offset=5", f"?after_id={widget['id']}",
                      "?resource_type=Widget&after_id=1&limit=5"):
            before = len(statements)
            await get_json(client, f"/api/v1/resources{query}")
            assert any("FROM resources" in x for x in statements[before:]), query
        # A trigger makes the reconciler claim the widget (and finish its reconcile).
        count, before = len(plugin.seen), len(statements)
        await client.post(f"/api/v1/resources/{widget['id']}/reconcile")
        await wait_for(lambda: len(plugin.seen) > count)
        await wait_ready(client, widget["id"])
        assert any(re.match(r"\s*SELECT\b.*\bFROM resources\b", x, re.I | re.S)
                   for x in statements[before:]), "the claim read nothing"
    finally:
        for reader in await _readers(database):
            await reader.set_trace_callback(None)
        await database.write(lambda tx: tx.conn.set_trace_callback(None))
    reads = sorted({s for s in statements if re.match(r"\s*SELECT\b", s, re.I)
                    and re.search(r"\bFROM resources\b", s)})
    conn = sqlite3.connect(f"file:{tmp_path / 'test.db'}?mode=ro", uri=True)
    try:
        plans = {statement: _plan(conn, statement) for statement in reads}
    finally:
        conn.close()
    bad = {statement: lines for statement, lines in plans.items()
           if not _reads_resources_by_index(lines)}
    assert not bad, bad


async def test_claiming_due_work_does_not_scan(make_client):
    """With 5,000 resources not due, claiming touches none of them."""
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
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
