"""Scheduling: backoff, leases, fairness under a backlog, and the BaseReconciler loop."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from conftest import all_ready, create_widget, create_widget_type, get_json, make_settings, wait_for
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd import lifecycle
from no8sd.api import keys
from no8sd.lifecycle import Scheduling
from no8sd.plugins import BaseReconciler, ReconcileResult
from no8sd.timeutil import now


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_failure_backs_off_exponentially_with_capped_jitter(make_client, tmp_path,
                                                                   clock):
    rules = Scheduling(backoff_base=10, backoff_max=60, reconcile_timeout=30)
    plugin = WidgetReconciler()
    client = await make_client(plugin, settings=make_settings(tmp_path, scheduling=rules,
                                                              clock=clock))
    await create_widget_type(client)
    widget = await create_widget(client, "f", {"fail": "nope"})
    url = f"/api/v1/resources/{widget['id']}"

    async def failed(n):
        body = await get_json(client, url)
        return body if body["retry_count"] == n and body["status"] == "failed" else None

    for retry, cap in ((1, 10), (2, 20), (3, 40), (4, 60), (5, 60)):
        body = await wait_for(lambda n=retry: failed(n))
        assert _ts(body["updated_at"]) == clock.now()
        delay = _ts(body["next_reconcile_time"]) - clock.now()
        assert 0.8 * cap - 1e-3 <= delay <= cap + 1e-3, (retry, delay)
        assert len(plugin.seen) == retry  # the clock stands still: no retry is due yet
        # Now it is due: the next retry follows. (Whole seconds keep the clock's times
        # exact through their ISO text.)
        clock.advance(math.ceil(delay))
    # Fixing the spec (a new generation) resets the retries and succeeds.
    await client.put(url, json={"spec": {"size": 2}})

    async def healed():
        body = await get_json(client, url)
        return body if body["status"] == "ready" and body["observed_generation"] == 2 else None

    body = await wait_for(healed)
    assert body["retry_count"] == 0


def test_backoff_sequence_defaults():
    rules = Scheduling()
    caps = [min(600, 10 * 2**r) for r in range(10)]
    assert caps[:7] == [10, 20, 40, 80, 160, 320, 600]
    for retry, cap in enumerate(caps):
        delay = lifecycle.backoff_delay(retry, rules)
        assert 0.8 * cap <= delay <= cap


class Hanger(BaseReconciler):
    """Hangs on its first reconcile of each resource, then succeeds."""

    max_concurrent_reconciles = 2

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}

    @property
    def name(self):
        return "hanger"

    @property
    def resource_types(self):
        return ["Widget"]

    async def reconcile(self, resource, ctx):
        n = self.calls[resource["id"]] = self.calls.get(resource["id"], 0) + 1
        if n == 1:
            await asyncio.sleep(3600)
        return ReconcileResult(True, "second time lucky")


async def test_hung_reconcile_is_timed_out_and_retried(make_client, tmp_path, clock):
    # The reconcile timeout is real time (asyncio's); the backoff after it follows the clock.
    rules = Scheduling(reconcile_timeout=0.5, backoff_base=10, backoff_max=60)
    plugin = Hanger()
    client = await make_client(plugin, settings=make_settings(tmp_path, scheduling=rules,
                                                              clock=clock))
    await create_widget_type(client)
    widget = await create_widget(client, "h")

    async def status(wanted):
        body = await get_json(client, f"/api/v1/resources/{widget['id']}")
        return body if body["status"] == wanted else None

    failed = await wait_for(lambda: status("failed"))
    assert "timed out after 0.5s" in failed["status_message"]
    assert plugin.calls[widget["id"]] == 1
    clock.advance(10)  # past the first backoff (8-10 s)
    body = await wait_for(lambda: status("ready"))
    assert plugin.calls[widget["id"]] == 2
    history = await get_json(client, f"/api/v1/resources/{widget['id']}/history")
    assert history[1]["success"] is False and "timed out" in history[1]["error_message"]
    assert body["status_message"] == "second time lucky"


async def test_lease_expires_when_a_plugin_dies_mid_reconcile(make_client, tmp_path, clock):
    """A seed-style plugin that marks `reconciling` and then stops must not strand it."""
    rules = Scheduling(reconcile_timeout=300)
    client = await make_client(settings=make_settings(tmp_path, scheduling=rules, clock=clock))
    app = client.server.app
    host = app[keys.HOST]
    from no8sd.host.context import PluginContext, PluginServices

    # Register an owner by hand so the API accepts Widgets, then act as its context.
    host.register(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "w")
    services = PluginServices(app[keys.CORE].db, app[keys.CORE].hub, rules, clock=clock)
    ctx = PluginContext(services, "widgets", ["Widget"], asyncio.Event())
    claimed = await ctx.get_resources_needing_reconciliation(["Widget"])
    assert [r["id"] for r in claimed] == [widget["id"]]
    await ctx.update_status(widget["id"], "reconciling", message="working")
    assert await ctx.get_resources_needing_reconciliation(["Widget"]) == []
    clock.advance(299)  # ... the plugin died; the lease (the reconcile timeout) still holds
    assert await ctx.get_resources_needing_reconciliation(["Widget"]) == []
    clock.advance(1)  # ... and now it has run out
    again = await ctx.get_resources_needing_reconciliation(["Widget"])
    assert [r["id"] for r in again] == [widget["id"]]
    assert again[0]["status"] == "reconciling"


async def test_spec_change_during_a_reconcile_is_reconciled_again(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    widget = await create_widget(client, "w", {"size": 1, "sleep": 0.4})
    await wait_for(lambda: _active(plugin, widget["id"]))
    resp = await client.put(f"/api/v1/resources/{widget['id']}", json={"spec": {"size": 2}})
    assert (await resp.json())["generation"] == 2

    async def caught_up():
        body = await get_json(client, f"/api/v1/resources/{widget['id']}")
        return body if body["observed_generation"] == 2 and body["status"] == "ready" else None

    await wait_for(caught_up)
    assert (widget["id"], 2, "pending") in plugin.seen
    assert plugin.overlaps == 0


async def _active(plugin, rid):
    return rid in plugin.active


async def test_concurrency_limit_and_never_two_reconciles_of_one_resource(make_client):
    plugin = WidgetReconciler()  # max_concurrent_reconciles = 4
    peak = 0
    original = plugin.reconcile

    async def measured(resource, ctx):
        nonlocal peak
        peak = max(peak, len(plugin.active) + 1)
        return await original(resource, ctx)

    plugin.reconcile = measured
    client = await make_client(plugin)
    await create_widget_type(client)
    widgets = [await create_widget(client, f"w{i}", {"size": 1, "sleep": 0.1})
               for i in range(12)]
    for w in widgets[:4]:
        await client.post(f"/api/v1/resources/{w['id']}/reconcile")
    await wait_for(lambda: all_ready(client), timeout=15)
    assert peak <= 4 and peak >= 2
    assert plugin.overlaps == 0


async def test_fresh_intent_is_served_before_a_backlog_which_still_drains(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    db = client.server.app[keys.CORE].db
    type_id = (await get_json(client, "/api/v1/resource-types/Widget/v1"))["id"]
    backlog = 3000
    overdue = now() - 3600

    def insert_backlog(tx):
        tx.conn.executemany(
            "INSERT INTO resources (name, resource_type_id, resource_type_name,"
            " resource_type_version, spec, spec_hash, status, finalizers, next_reconcile_time,"
            " due_class, created_at, updated_at, last_reconcile_time, generation,"
            " observed_generation) VALUES (?, ?, 'Widget', 'v1', '{}', '', 'ready',"
            " '[\"widgets\"]', ?, 1, ?, ?, ?, 1, 1)",
            [(f"old-{i}", type_id, overdue + i * 0.001, overdue, overdue, overdue)
             for i in range(backlog)])
        tx.wake.add("Widget")

    await db.write(insert_backlog)
    fresh = await create_widget(client, "fresh")

    async def fresh_done():
        return any(rid == fresh["id"] for rid, _, _ in plugin.seen)

    await wait_for(fresh_done, timeout=30)
    position = next(i for i, (rid, _, _) in enumerate(plugin.seen) if rid == fresh["id"])
    assert position < 50, f"fresh work waited behind {position} routine re-checks"

    async def drained():
        row = await db.fetchone("SELECT COUNT(*) FROM resources WHERE next_reconcile_time <= ?",
                                (now(),))
        return row[0] == 0

    await wait_for(drained, timeout=120)

    async def all_seen():
        return len({rid for rid, _, _ in plugin.seen}) == backlog + 1

    await wait_for(all_seen, timeout=30)  # the last claimed batch may still be starting


async def test_leases_of_a_killed_daemon_are_released_at_restart(daemon_factory, tmp_path):
    import signal

    import aiohttp

    db = tmp_path / "lease.db"
    first = daemon_factory("--plugin", "no8sd_testplugins.widgets:WidgetReconciler",
                           "--reconcile-timeout", "300", db=db)
    async with aiohttp.ClientSession(first.url) as http:
        await http.post("/api/v1/resource-types", json={"name": "Widget", "version": "v1",
                                                         "schema": {}})
        resp = await http.post("/api/v1/resources", json={
            "name": "stuck", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"sleep": 600}})
        rid = (await resp.json())["id"]

        async def leased():  # handed out: due again only when its 300 s lease ends
            body = await (await http.get(f"/api/v1/resources/{rid}")).json()
            return _ts(body["next_reconcile_time"]) > now() + 100

        await wait_for(leased)
    first.stop(signal.SIGKILL)
    second = daemon_factory("--plugin", "no8sd_testplugins.widgets:QuickWidgetReconciler",
                            "--reconcile-timeout", "300", db=db)
    async with aiohttp.ClientSession(second.url) as http:

        async def ready():
            body = await (await http.get(f"/api/v1/resources/{rid}")).json()
            return body["status"] == "ready"

        # Ready within the wait, far short of the 300 s lease: the restart released it.
        await wait_for(ready, timeout=30)
    assert "Re-queued 1 resource(s)" in second.output
    assert second.stop() == 0
