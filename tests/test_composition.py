"""Plugins that read and compose resources, PATCH, outputs reported from outside, and
watching the event log from a plugin (issue 13, points 1-3 and 6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import (
    create_widget,
    create_widget_type,
    get_json,
    wait_for,
    wait_ready,
)
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys
from no8sd.host.context import PluginContext, PluginServices
from no8sd.store import events as events_store

PLUGINS = ("--plugin", "no8sd_testplugins.composition:VmReconciler",
           "--plugin", "no8sd_testplugins.composition:DnsFollower")
OBJECT = {"type": "object"}


async def _register(http: Any, url: str) -> None:
    for name in ("Vm", "Dns"):
        resp = await http.post(f"{url}/api/v1/resource-types",
                               json={"name": name, "version": "v1", "schema": OBJECT})
        assert resp.status == 201, await resp.text()


async def _create(http: Any, url: str, type_name: str, name: str, spec: dict[str, Any]) -> int:
    resp = await http.post(f"{url}/api/v1/resources", json={
        "name": name, "resource_type_name": type_name, "resource_type_version": "v1",
        "spec": spec})
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def test_a_reconciler_follows_its_peer_through_watch_and_where(daemon_factory, http):
    daemon = daemon_factory(*PLUGINS)
    url = daemon.url
    await _register(http, url)
    dns = await _create(http, url, "Dns", "web", {"instance": "i-0abc001"})

    async def dns_state() -> dict[str, Any]:
        return await (await http.get(f"{url}/api/v1/resources/{dns}")).json()

    # No Vm runs the instance yet: the Dns waits (failed with its reason, backing off).
    waiting = await wait_for(lambda: _when(dns_state(), lambda b: b["status"] == "failed"))
    assert "waiting for a Vm running i-0abc001" in waiting["status_message"]
    # The Vm comes up: the follower sees its outputs in the event log and patches the Dns,
    # which is reconciled again at once (long before its backoff would have retried it).
    await _create(http, url, "Vm", "vm1", {"ip": "10.0.0.1", "instance": "i-0abc001"})
    ready = await wait_for(lambda: _when(
        dns_state(), lambda b: b["status"] == "ready" and b["outputs"].get("address")))
    assert ready["outputs"] == {"address": "10.0.0.1", "vm": "vm1"}
    assert ready["spec"]["peer_ip"] == "10.0.0.1" and ready["generation"] == 2
    history = await get_json(http_client(http, url), f"/api/v1/resources/{dns}/history")
    assert history[0]["triggered_by"] == "reconciler:dns-follower"
    # The Vm changes: the Dns follows.
    vm = (await (await http.get(f"{url}/api/v1/resources/by-name/Vm/v1/vm1")).json())["id"]
    resp = await http.patch(f"{url}/api/v1/resources/{vm}",
                            json={"spec": {"ip": "10.0.0.2"}})
    assert resp.status == 200, await resp.text()
    moved = await wait_for(lambda: _when(
        dns_state(), lambda b: b["outputs"].get("address") == "10.0.0.2"))
    assert moved["metadata"]["watched_event_id"] > 0
    # Across a restart the follower carries on from the event it last handled.
    assert daemon.stop() == 0
    again = daemon_factory(*PLUGINS, db=daemon_db(daemon))
    resp = await http.patch(f"{again.url}/api/v1/resources/{vm}",
                            json={"spec": {"ip": "10.0.0.3"}})
    assert resp.status == 200
    await wait_for(lambda: _when(
        _get(http, f"{again.url}/api/v1/resources/{dns}"),
        lambda b: b["outputs"].get("address") == "10.0.0.3"))


def daemon_db(daemon: Any) -> Any:
    from pathlib import Path

    return Path(daemon.args[daemon.args.index("--db") + 1])


def http_client(http: Any, url: str) -> Any:
    class Prefixed:
        async def get(self, path: str) -> Any:
            return await http.get(url + path)

    return Prefixed()


async def _get(http: Any, url: str) -> Any:
    return await (await http.get(url)).json()


async def _when(body: Any, test: Any) -> Any:
    found = await body
    return found if test(found) else None


# ---- reading from a plugin: the where filter ------------------------------------------


async def _context(client: Any) -> PluginContext:
    app = client.server.app
    core = app[keys.CORE]
    services = PluginServices(core.db, core.hub, app[keys.SETTINGS].scheduling, core=core)
    return PluginContext(services, "widgets", ["Widget"], asyncio.Event())


async def test_where_filters_on_values_inside_the_json(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    a = await create_widget(client, "a", {"size": 1, "color": "red",
                                          "outputs": {"members": [{"instance_id": "i-1",
                                                                   "zone": "x"}]}})
    b = await create_widget(client, "b", {"size": 2, "color": "blue",
                                          "outputs": {"members": [{"instance_id": "i-2"}],
                                                      "up": True}})
    for widget in (a, b):
        await wait_ready(client, widget["id"])
    ctx = await _context(client)

    async def names(**where: Any) -> list[str]:
        found = await ctx.list_resources("Widget", where=where["where"])
        return [r["name"] for r in found]

    assert await names(where={"spec.color": "red"}) == ["a"]
    assert await names(where={"spec.size": 2}) == ["b"]
    assert await names(where={"spec.size": 2.0}) == ["b"]  # JSON numbers compare as numbers
    assert await names(where={"spec.size": "2"}) == []  # ... but not as strings
    assert await names(where={"outputs.members[]": {"instance_id": "i-1"}}) == ["a"]
    assert await names(where={"outputs.members[]": {"instance_id": "i-1", "zone": "y"}}) == []
    assert await names(where={"outputs.up": True}) == ["b"]
    assert await names(where={"outputs.up": 1}) == []  # true is not 1
    assert await names(where={"spec.color": "blue", "spec.size": 2}) == ["b"]
    got = await ctx.get_resource(a["id"])
    assert got is not None and got["spec"]["color"] == "red"
    assert got == await get_json(client, f"/api/v1/resources/{a['id']}")  # the REST shape
    assert (await ctx.get_resource_by_name("Widget", "b"))["id"] == b["id"]
    assert await ctx.get_resource_by_name("Widget", "b", version="v9") is None
    assert await ctx.get_resource(99999) is None
    for bad in ({"status": "ready"}, {"spec": 1}, {"spec.a b": 1}, {"spec..x": 1},
                {"outputs.members[]": "i-1"}, {"spec.color": {"x": 1}},
                {"outputs.members[]": {"a b": 1}}):
        with pytest.raises(ValueError):
            await ctx.list_resources("Widget", where=bad)
    with pytest.raises(ValueError, match="needs resource_type"):
        await ctx.list_resources(where={"spec.color": "red"})


async def test_where_queries_stay_within_the_type_index(make_client):
    """The plan of the SQL a where query runs: the type's index, then the JSON test on
    those rows only (a scan bounded by the type's size, never of the whole table)."""
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    db = client.server.app[keys.CORE].db
    seen: list[str] = []
    for reader in db._readers:  # the pooled connections reads run on
        await reader.set_trace_callback(seen.append)
    ctx = await _context(client)
    await ctx.list_resources("Widget", where={"outputs.members[]": {"instance_id": "i-1"}})
    statements = [sql for sql in seen if "json_each" in sql]
    assert statements, seen
    plan = " ".join(str(row[3]) for row in await db.fetchall(
        "EXPLAIN QUERY PLAN " + statements[-1]))
    assert "resources_by_type" in plan, plan
    assert "SCAN resources" not in plan, plan


# ---- PATCH, outputs from outside, the type filter's upstream name -----------------------


async def test_patch_merges_and_bumps_the_generation_only_for_spec(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "w", {"size": 1, "color": "red"},
                                 metadata={"team": "a", "tier": "1"})
    rid = widget["id"]
    await wait_ready(client, rid)
    merge = {"Content-Type": "application/merge-patch+json"}
    resp = await client.patch(f"/api/v1/resources/{rid}", headers=merge,
                              data=b'{"metadata": {"tier": null, "owner": "ops"}}')
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"] == {"team": "a", "owner": "ops"} and body["generation"] == 1
    resp = await client.patch(f"/api/v1/resources/{rid}?dry_run=true",
                              json={"spec": {"size": 5}})
    preview = await resp.json()
    assert preview["spec"] == {"size": 5, "color": "red"} and preview["generation"] == 2
    assert (await get_json(client, f"/api/v1/resources/{rid}"))["generation"] == 1
    resp = await client.patch(f"/api/v1/resources/{rid}", json={"spec": {"color": None}})
    body = await resp.json()
    assert body["spec"] == {"size": 1} and body["generation"] == 2
    await wait_ready(client, rid, generation=2)
    # Validated like a PUT; only the three fields can be patched.
    resp = await client.patch(f"/api/v1/resources/{rid}", json={"spec": {"size": 0}})
    assert resp.status == 400
    resp = await client.patch(f"/api/v1/resources/{rid}", json={"status": "ready"})
    assert resp.status == 422
    resp = await client.patch(f"/api/v1/resources/{rid}", json={"spec": None})
    assert resp.status == 422
    resp = await client.patch("/api/v1/resources/999", json={"metadata": {}})
    assert resp.status == 404


async def test_outputs_put_merges_the_given_keys(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "w", {"size": 1, "outputs": {"run": 1}})
    rid = widget["id"]
    await wait_ready(client, rid)
    events = await client.get(f"/api/v1/resources/{rid}/events")
    resp = await client.put(f"/api/v1/resources/{rid}/outputs",
                            json={"instances": ["i-1", "i-2"]})
    assert resp.status == 200
    assert (await resp.json())["outputs"] == {"run": 1, "instances": ["i-1", "i-2"]}
    resp = await client.put(f"/api/v1/resources/{rid}/outputs", json={"outputs": {"run": 2}})
    assert (await resp.json())["outputs"] == {"run": 2, "instances": ["i-1", "i-2"]}
    stored = await get_json(client, f"/api/v1/resources/{rid}")
    assert stored["generation"] == 1 and stored["outputs"]["run"] == 2
    from sse import next_event

    seen = [await next_event(events) for _ in range(2)]
    assert [f.event for f in seen] == ["MODIFIED", "MODIFIED"]
    assert seen[1].data["actor"] == "local"
    events.close()


async def test_the_type_filter_answers_to_its_upstream_name(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await create_widget(client, "w")
    assert [r["name"] for r in await get_json(
        client, "/api/v1/resources?resource_type=Widget")] == ["w"]
    assert await get_json(client, "/api/v1/resources?resource_type=Gadget") == []
    resp = await client.get("/api/v1/resources?resource_type=Widget&resource_type_name=Gadget")
    assert resp.status == 422


# ---- watching from a plugin ----------------------------------------------------------------


async def test_watch_resumes_after_an_id_and_reports_a_gap(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    first = await create_widget(client, "first")
    await wait_ready(client, first["id"])
    ctx = await _context(client)
    db = client.server.app[keys.CORE].db
    (mark,) = await db.fetchone("SELECT MAX(id) FROM events")
    second = await create_widget(client, "second")
    await wait_ready(client, second["id"])
    stream = ctx.watch(resource_types=["Widget"], after_event_id=mark)
    event = await anext(stream)
    assert event["id"] == mark + 1 and event["event_type"] == "CREATED"
    assert event["resource_data"]["name"] == "second" and event["actor"] == "local"
    ids = [event["id"]]
    while ids[-1] < (await db.fetchone("SELECT MAX(id) FROM events"))[0]:
        ids.append((await anext(stream))["id"])
    assert ids == list(range(mark + 1, ids[-1] + 1))  # nothing skipped, nothing repeated
    await stream.aclose()
    # A resume point older than retention: a GAP first, then what is left.
    await db.write(events_store.prune, max_count=100, max_age=0.0, now=10**10)
    stream = ctx.watch(after_event_id=1)
    gap = await anext(stream)
    assert gap["event_type"] == "GAP" and gap["resource_data"] is None
    ctx.shutdown_event.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 5)
