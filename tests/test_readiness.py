"""/readyz, /livez and the upstream's /api/v1/cluster/nodes."""

from __future__ import annotations

import asyncio
import resource
import sqlite3
from datetime import datetime
from pathlib import Path

import aiohttp
from authkit import admin_token, bearer, token_client
from conftest import create_widget, create_widget_type, get_json, wait_for
from no8sd_testplugins.misbehaving import StartRaises
from no8sd_testplugins.widgets import WidgetReconciler
from test_metrics import scrape, value

from no8sd.api import keys
from no8sd.timeutil import now

PLUGIN = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")


async def test_ready_when_writable_plugins_running_and_no_backlog(make_client):
    client = await make_client(WidgetReconciler())
    body = await get_json(client, "/readyz")
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["checks"]["database_writable"] is True
    assert body["checks"]["plugins_running"] == 1
    assert await get_json(client, "/livez") == await get_json(client, "/health")


async def test_a_crashed_plugin_makes_it_not_ready(make_client):
    client = await make_client(WidgetReconciler(), StartRaises())

    async def not_ready():
        resp = await client.get("/readyz")
        return await resp.json() if resp.status == 503 else None

    body = await wait_for(not_ready)
    assert body["status"] == "not ready"
    assert body["reasons"] == ["reconciler plugins not running: start-raises"]
    # Liveness is another question: the daemon itself serves.
    assert (await client.get("/livez")).status == 200


async def test_token_mode_counts_plugins_without_naming_them(make_client):
    client = await token_client(make_client, WidgetReconciler(), StartRaises())

    async def not_ready():
        resp = await client.get("/readyz")  # no token: probes carry none
        return await resp.json() if resp.status == 503 else None

    body = await wait_for(not_ready)
    assert body["reasons"] == ["1 reconciler plugin(s) not running"]


async def test_a_backlog_older_than_the_limit_makes_it_not_ready(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin, ready_max_lag=60)
    await create_widget_type(client)
    # Every slot busy for a long time, so nothing else is taken...
    for i in range(plugin.max_concurrent_reconciles):
        await create_widget(client, f"busy-{i}", {"size": 1, "sleep": 60})

    async def saturated():
        return len(plugin.active) == plugin.max_concurrent_reconciles

    await wait_for(saturated)
    assert (await client.get("/readyz")).status == 200
    # ...and a resource that has been due for an hour (as after a long downtime).
    type_id = (await get_json(client, "/api/v1/resource-types/Widget/v1"))["id"]
    overdue = now() - 3600

    def insert_overdue(tx):
        tx.execute(
            "INSERT INTO resources (name, resource_type_id, resource_type_name,"
            " resource_type_version, spec, spec_hash, status, next_reconcile_time, due_class,"
            " created_at, updated_at) VALUES ('late', ?, 'Widget', 'v1', '{}', '', 'ready',"
            " ?, 1, ?, ?)", (type_id, overdue, overdue, overdue))

    await client.server.app[keys.CORE].db.write(insert_overdue)
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["checks"]["resources_due"] == 1
    assert body["checks"]["oldest_due_seconds"] >= 3600
    assert len(body["reasons"]) == 1 and "--ready-max-lag (60s)" in body["reasons"][0]


async def test_write_probe_runs_at_most_once_a_second(make_client, clock):
    client = await make_client(clock=clock)

    async def commits() -> float:
        return value(await scrape(client), "no8sd_db_commit_duration_seconds_count")

    before = await commits()
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    assert [r.status for r in answers] == [200] * 50
    assert await commits() == before + 1  # fifty asks, one shared probe
    clock.advance(0.9)
    assert (await client.get("/readyz")).status == 200
    assert await commits() == before + 1  # within the second: the last outcome stands
    clock.advance(0.1)
    assert (await client.get("/readyz")).status == 200
    assert await commits() == before + 2  # a second on: probed again


async def test_storage_that_refuses_writes_makes_it_not_ready_until_it_takes_them(
        daemon_factory, tmp_path):
    """As a full disk or a quota would: the files may not grow. (A full disk's own message,
    "storage is full", is checked in test_store_faults.py.)"""
    db = tmp_path / "no8sd.db"
    daemon = daemon_factory(*PLUGIN, db=db)
    assert daemon.proc is not None
    async with aiohttp.ClientSession(daemon.url) as http:
        async with http.get("/readyz") as resp:
            assert resp.status == 200, await resp.text()
        # A reader holding an old snapshot keeps the WAL from starting over, so every
        # commit must grow it; then the daemon may grow no file (RLIMIT_FSIZE, which any
        # user may lower and raise back for its own processes): the write fails with EFBIG,
        # which SQLite reports as an I/O error.
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM resources").fetchone()
        wal = Path(f"{db}-wal").stat().st_size
        unlimited = resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (wal, unlimited[1]))
        try:
            async def refused():
                async with http.get("/readyz") as resp:
                    return await resp.json() if resp.status == 503 else None

            body = await wait_for(refused)
            assert body["checks"]["database_writable"] is False
            assert body["reasons"] == [
                "the database does not take writes: storage error; the change was not saved"]
            async with http.post("/api/v1/resource-types", json={
                    "name": "Late", "version": "v1", "schema": {}}) as resp:
                assert resp.status == 503
                assert await resp.json() == {
                    "detail": "storage error; the change was not saved"}
            async with http.get("/health") as resp:
                assert resp.status == 200  # reads still work: alive, just not ready
        finally:
            resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, unlimited)
            reader.execute("COMMIT")
            reader.close()

        async def recovered():
            async with http.get("/readyz") as resp:
                return resp.status == 200

        await wait_for(recovered)
    assert daemon.stop() == 0
    assert "storage error: disk I/O error" in daemon.output


async def test_cluster_nodes_describes_this_one_node(make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    resp = await client.get("/api/v1/cluster/nodes", headers=bearer(admin))
    assert resp.status == 200
    body = await resp.json()
    me = body["this_instance_id"]
    hostname, pid, _uuid = me.split(":")
    assert body["this_instance_is_leader"] is True
    lock = body["leader_lock"]
    assert lock["holder_id"] == me and lock["is_valid"] is True
    assert datetime.fromisoformat(lock["expires_at"]) > datetime.fromisoformat(
        lock["acquired_at"])
    [node] = body["nodes"]
    assert node["node_id"] == me and node["hostname"] == hostname and node["pid"] == pid
    assert node["status"] == "Ready" and node["role"] == "leader"
    assert node["age"].endswith("s")
    assert datetime.fromisoformat(node["first_seen"]) <= datetime.fromisoformat(
        node["last_heartbeat"])


def test_ages_are_printed_as_kubectl_does():
    from no8sd.api.health import kubectl_age

    cases = {-5: "0s", 0: "0s", 59: "59s", 60: "1m", 61: "1m1s", 3600: "1h", 3720: "1h2m",
             86400: "1d", 90000: "1d1h", 86400 * 3 + 7200 + 5: "3d2h"}
    assert {seconds: kubectl_age(seconds) for seconds in cases} == cases
