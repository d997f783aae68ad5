"""Resources API: create, list, read, update, delete, and the records they return."""

from __future__ import annotations

import json

from conftest import (
    all_ready,
    create_widget,
    create_widget_type,
    get_json,
    wait_for,
    wait_ready,
)
from no8sd_testplugins.widgets import GadgetReconciler, WidgetReconciler

UPSTREAM_KEYS = {"id", "name", "resource_type_name", "resource_type_version", "action_plugin",
                 "status", "status_message", "generation", "observed_generation", "finalizers",
                 "conditions", "created_at", "updated_at", "last_reconcile_time"}
EXTRA_KEYS = {"spec", "metadata", "plugin_config", "outputs", "retry_count",
              "next_reconcile_time", "deleted_at"}


async def test_create_returns_full_record_owned_by_reconciler(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    created = await create_widget(client, "w1", {"size": 3}, metadata={"team": "a"},
                                  plugin_config={"zone": "x"})
    assert set(created) == UPSTREAM_KEYS | EXTRA_KEYS
    assert created["status"] == "pending" and created["generation"] == 1
    assert created["observed_generation"] == 0 and created["finalizers"] == ["widgets"]
    assert created["spec"] == {"size": 3} and created["metadata"] == {"team": "a"}
    assert created["plugin_config"] == {"zone": "x"} and created["action_plugin"] == ""
    assert created["next_reconcile_time"] is not None and created["retry_count"] == 0
    done = await wait_ready(client, created["id"])
    assert done["last_reconcile_time"] is not None
    assert [c["type"] for c in done["conditions"]] == ["Ready", "Reconciling", "Degraded"]


async def test_spec_is_validated_with_every_violation_and_path(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    resp = await client.post("/api/v1/resources", json={
        "name": "bad", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 0, "color": "pink"}})
    assert resp.status == 400
    body = await resp.json()
    assert body["detail"].startswith("Spec validation failed: ")
    assert "color: 'pink' is not one of" in body["detail"]
    assert "size: 0 is less than the minimum of 1" in body["detail"]
    assert {e["path"] for e in body["errors"]} == {"color", "size"}
    assert await get_json(client, "/api/v1/resources") == []


async def test_unknown_or_unclaimed_types_are_rejected_and_not_stored(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Orphan", "version": "v1", "schema": {}})
    assert resp.status == 201
    cases = [
        ({"resource_type_name": "Widget", "resource_type_version": "v9"},
         "Resource type Widget/v9 not found"),
        ({"resource_type_name": "Orphan", "resource_type_version": "v1"},
         "No reconciler plugin registered for resource type 'Orphan'"),
        ({"resource_type_name": "Nope", "resource_type_version": "v1"},
         "No reconciler plugin registered for resource type 'Nope'"),
    ]
    for fields, message in cases:
        resp = await client.post("/api/v1/resources", json={
            "name": "x", "spec": {"size": 1}, **fields})
        assert resp.status == 400
        assert message in (await resp.json())["detail"]
    resp = await client.post("/api/v1/resources", json={
        "name": "x", "resource_type_name": "Widget", "resource_type_version": "v1"})
    assert resp.status == 400 and (await resp.json())["detail"] == "spec is required"
    resp = await client.post("/api/v1/resources", json={
        "name": "x", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}, "action_plugin": "jenkins"})
    assert resp.status == 400 and "Unknown action plugin" in (await resp.json())["detail"]
    assert await get_json(client, "/api/v1/resources") == []


async def test_name_rules(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    bad = {
        "": "name cannot be empty",
        "a" * 64: "name cannot exceed 63 characters",
        "Upper": "must consist of lowercase alphanumeric",
        "-lead": "must consist of lowercase alphanumeric",
        "trail-": "must consist of lowercase alphanumeric",
        "under_score": "must consist of lowercase alphanumeric",
    }
    for name, message in bad.items():
        resp = await client.post("/api/v1/resources", json={
            "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1}})
        assert resp.status == 422, name
        assert message in (await resp.json())["detail"]
    for name in ("a", "a" * 63, "web-1", "0x"):
        await create_widget(client, name)


async def test_duplicate_name_is_409_per_type(make_client):
    client = await make_client(WidgetReconciler(), GadgetReconciler())
    await create_widget_type(client)
    await client.post("/api/v1/resource-types", json={"name": "Gadget", "version": "v1",
                                                       "schema": {}})
    await create_widget(client, "same")
    resp = await client.post("/api/v1/resources", json={
        "name": "same", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 2}})
    assert resp.status == 409 and "already exists" in (await resp.json())["detail"]
    resp = await client.post("/api/v1/resources", json={
        "name": "same", "resource_type_name": "Gadget", "resource_type_version": "v1",
        "spec": {"a": 1}})
    assert resp.status == 201  # names are unique per type, not globally


async def test_get_by_id_and_by_name(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    created = await create_widget(client, "findme")
    by_id = await get_json(client, f"/api/v1/resources/{created['id']}")
    by_name = await get_json(client, "/api/v1/resources/by-name/Widget/v1/findme")
    assert by_id["id"] == by_name["id"] == created["id"]
    await get_json(client, "/api/v1/resources/by-name/Widget/v2/findme", 404)
    await get_json(client, "/api/v1/resources/by-name/Widget/v1/nope", 404)
    await get_json(client, "/api/v1/resources/424242", 404)


async def test_list_filters_paging_and_stable_order(make_client):
    client = await make_client(WidgetReconciler(), GadgetReconciler())
    await create_widget_type(client)
    await create_widget_type(client, "v2")
    await client.post("/api/v1/resource-types", json={"name": "Gadget", "version": "v1",
                                                       "schema": {}})
    ids = [(await create_widget(client, f"w{i}"))["id"] for i in range(5)]
    resp = await client.post("/api/v1/resources", json={
        "name": "g", "resource_type_name": "Gadget", "resource_type_version": "v1",
        "spec": {"a": 1}})
    gadget = await resp.json()
    resp = await client.post("/api/v1/resources", json={
        "name": "w2v", "resource_type_name": "Widget", "resource_type_version": "v2",
        "spec": {"size": 1}})
    v2 = await resp.json()
    everything = await get_json(client, "/api/v1/resources")
    assert [r["id"] for r in everything] == [*ids, gadget["id"], v2["id"]]
    widgets = await get_json(client, "/api/v1/resources?resource_type_name=Widget")
    assert [r["id"] for r in widgets] == [*ids, v2["id"]]
    only_v2 = await get_json(
        client, "/api/v1/resources?resource_type_name=Widget&resource_type_version=v2")
    assert [r["id"] for r in only_v2] == [v2["id"]]
    page1 = await get_json(client, "/api/v1/resources?limit=2")
    page2 = await get_json(client, "/api/v1/resources?limit=2&offset=2")
    assert [r["id"] for r in page1 + page2] == ids[:4]
    await wait_for(lambda: all_ready(client))
    pending = await get_json(client, "/api/v1/resources?status=pending")
    assert pending == []
    assert len(await get_json(client, "/api/v1/resources?status=ready")) == 7
    resp = await client.get("/api/v1/resources?status=bogus")
    assert resp.status == 422


async def test_update_bumps_generation_only_for_spec_or_plugin_config(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    created = await create_widget(client, "w")
    rid = created["id"]
    await wait_ready(client, rid)
    url = f"/api/v1/resources/{rid}"

    resp = await client.put(url, json={"metadata": {"owner": "ops"}})
    body = await resp.json()
    assert resp.status == 200 and body["generation"] == 1 and body["status"] == "ready"
    assert body["metadata"] == {"owner": "ops"}

    resp = await client.put(url, json={"spec": {"size": 1}})  # unchanged spec
    assert (await resp.json())["generation"] == 1

    resp = await client.put(url, json={"spec": {"size": 2}})
    body = await resp.json()
    assert body["generation"] == 2 and body["status"] == "pending"
    assert body["spec"] == {"size": 2}
    await wait_ready(client, rid, generation=2)

    resp = await client.put(url, json={"plugin_config": {"zone": "b"}})
    assert (await resp.json())["generation"] == 3
    done = await wait_ready(client, rid, generation=3)
    assert (rid, 3, "pending") in plugin.seen or (rid, 3, "ready") in plugin.seen
    assert done["plugin_config"] == {"zone": "b"} and done["spec"] == {"size": 2}

    resp = await client.put(url, json={"spec": {"size": "big"}})
    assert resp.status == 400
    assert (await get_json(client, url))["generation"] == 3
    resp = await client.put("/api/v1/resources/9999", json={"spec": {"size": 1}})
    assert resp.status == 404


async def test_delete_is_202_then_deleting_then_404(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    created = await create_widget(client, "doomed", {"size": 1, "sleep": 0.3})
    rid = created["id"]
    await wait_ready(client, rid)
    resp = await client.delete(f"/api/v1/resources/{rid}")
    assert resp.status == 202
    assert await resp.json() == {"message": "Resource marked for deletion", "resource_id": rid}
    during = await get_json(client, f"/api/v1/resources/{rid}")
    assert during["status"] == "deleting" and during["deleted_at"] is not None
    ready_condition = next(c for c in during["conditions"] if c["type"] == "Ready")
    assert ready_condition["status"] == "Unknown" and ready_condition["reason"] == "Deleting"
    # Deleting twice is harmless.
    assert (await client.delete(f"/api/v1/resources/{rid}")).status == 202
    resp = await client.put(f"/api/v1/resources/{rid}", json={"spec": {"size": 5}})
    assert resp.status == 409

    async def gone():
        return (await client.get(f"/api/v1/resources/{rid}")).status == 404

    await wait_for(gone)
    assert (await client.delete(f"/api/v1/resources/{rid}")).status == 404


async def test_health(make_client):
    client = await make_client()
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["version"]
    assert (await client.get("/api/v1/cluster/health")).status == 200


async def test_failed_create_writes_nothing(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await create_widget(client, "one")
    before = await get_json(client, "/api/v1/resources")
    resp = await client.post("/api/v1/resources", json={
        "name": "one", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 409
    after = await get_json(client, "/api/v1/resources")
    assert [r["id"] for r in after] == [r["id"] for r in before]
    # The event log holds exactly one CREATED for the one resource that exists.
    db = client.server.app
    from no8sd.api import keys

    rows = await db[keys.CORE].db.fetchall("SELECT event_type, resource_id FROM events "
                                      "WHERE event_type = 'CREATED'")
    assert [tuple(r) for r in rows] == [("CREATED", before[0]["id"])]
    first = (await db[keys.CORE].events_after(0, limit=1))[0]
    assert json.loads(first.data)["resource_name"] == "one"
