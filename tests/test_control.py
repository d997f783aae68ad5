"""Control routes: manual reconcile, finalizers, history, outputs."""

from __future__ import annotations

from conftest import (
    create_widget,
    create_widget_type,
    get_json,
    make_settings,
    wait_for,
    wait_ready,
)
from no8sd_testplugins.widgets import WidgetReconciler


async def test_manual_reconcile_wakes_the_owner_at_once(make_client, clock):
    plugin = WidgetReconciler()
    client = await make_client(plugin, clock=clock)
    await create_widget_type(client)
    widget = await create_widget(client, "w")
    await wait_ready(client, widget["id"])
    count = len(plugin.seen)
    resp = await client.post(f"/api/v1/resources/{widget['id']}/reconcile")
    assert resp.status == 202
    assert await resp.json() == {"message": "Reconciliation triggered",
                                 "resource_id": widget["id"]}

    async def reconciled_again():
        return len(plugin.seen) > count

    # The clock stands still, so no drift re-check ever comes due: only the trigger's
    # wake-up explains this reconcile.
    await wait_for(reconciled_again)
    history = await get_json(client, f"/api/v1/resources/{widget['id']}/history")
    assert history[0]["trigger_reason"] == "manual"
    assert (await client.post("/api/v1/resources/4242/reconcile")).status == 404


async def test_finalizers_add_remove_and_removal_of_a_deleting_resource(make_client):
    plugin = WidgetReconciler()
    client = await make_client(plugin)
    await create_widget_type(client)
    widget = await create_widget(client, "w")
    rid = widget["id"]
    url = f"/api/v1/resources/{rid}/finalizers"
    resp = await client.put(url, json={"add": ["backup.example.com/snapshot", "x"],
                                       "remove": ["x"]})
    body = await resp.json()
    assert resp.status == 200
    assert body["finalizers"] == ["widgets", "backup.example.com/snapshot"]
    # Delete: the plugin releases its own finalizer; the external one keeps the resource.
    await client.delete(f"/api/v1/resources/{rid}")

    async def owner_released():
        body = await get_json(client, f"/api/v1/resources/{rid}")
        return body["finalizers"] == ["backup.example.com/snapshot"]

    await wait_for(owner_released)
    deleting = await get_json(client, f"/api/v1/resources/{rid}")
    assert deleting["status"] == "deleting" and deleting["next_reconcile_time"] is None
    # Finalizers can still be edited while deleting; removing the last one removes it.
    resp = await client.put(url, json={"remove": ["backup.example.com/snapshot"]})
    assert resp.status == 200
    assert await resp.json() == {"message": "All finalizers removed, resource deleted",
                                 "resource_id": rid}
    assert (await client.get(f"/api/v1/resources/{rid}")).status == 404
    assert (await client.put(url, json={"add": ["a"]})).status == 404
    # The resource is looked up (and authorized) before its body is read: a missing one is
    # a 404 whatever the body; a bad body for one that exists is a 422.
    bad = await client.put(url, json={"add": "nope"})
    assert bad.status == 404 and (await bad.json())["detail"] == "Resource not found"
    other = await create_widget(client, "w2")
    bad = await client.put(f"/api/v1/resources/{other['id']}/finalizers", json={"add": "nope"})
    assert bad.status == 422, await bad.text()


async def test_history_newest_first_with_limit_and_bound(make_client, tmp_path):
    plugin = WidgetReconciler()
    client = await make_client(plugin, settings=make_settings(tmp_path, history_limit=5))
    await create_widget_type(client)
    widget = await create_widget(client, "w")
    rid = widget["id"]
    await wait_ready(client, rid)
    for _ in range(7):
        count = len(plugin.seen)
        await client.post(f"/api/v1/resources/{rid}/reconcile")

        async def done(count=count):
            return len(plugin.seen) > count and not plugin.active

        await wait_for(done)
    await wait_for(lambda: _history_len(client, rid, 5))
    history = await get_json(client, f"/api/v1/resources/{rid}/history?limit=100")
    assert len(history) == 5  # bounded per resource
    assert [h["id"] for h in history] == sorted((h["id"] for h in history), reverse=True)
    entry = history[0]
    assert entry["success"] is True and entry["phase"] == "completed"
    assert entry["message"] == "done" and entry["error_message"] is None
    assert entry["duration_seconds"] is not None and entry["generation"] == 1
    assert len(await get_json(client, f"/api/v1/resources/{rid}/history")) == 5
    assert len(await get_json(client, f"/api/v1/resources/{rid}/history?limit=2")) == 2
    assert (await client.get(f"/api/v1/resources/{rid}/history?limit=x")).status == 422
    assert (await client.get("/api/v1/resources/777/history")).status == 404


async def _history_len(client, rid, n):
    return len(await get_json(client, f"/api/v1/resources/{rid}/history?limit=100")) == n


async def test_failures_are_recorded_with_their_message(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    failing = await create_widget(client, "f", {"fail": "quota exceeded"})
    raising = await create_widget(client, "r", {"raise": "kaboom"})

    async def failed(rid):
        body = await get_json(client, f"/api/v1/resources/{rid}")
        return body if body["status"] == "failed" else None

    f = await wait_for(lambda: failed(failing["id"]))
    r = await wait_for(lambda: failed(raising["id"]))
    assert f["status_message"] == "quota exceeded" and f["retry_count"] == 1
    assert "kaboom" in r["status_message"]
    degraded = next(c for c in f["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["message"] == "quota exceeded"
    hist = await get_json(client, f"/api/v1/resources/{raising['id']}/history")
    assert hist[0]["success"] is False and "kaboom" in hist[0]["error_message"]
    assert hist[0]["phase"] == "failed"


async def test_outputs(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "w", {"size": 1, "outputs": {"ip": "10.0.0.7"}})
    await wait_ready(client, widget["id"])
    body = await get_json(client, f"/api/v1/resources/{widget['id']}/outputs")
    assert body == {"outputs": {"ip": "10.0.0.7"}}
    assert (await get_json(client, f"/api/v1/resources/{widget['id']}"))["outputs"] == {
        "ip": "10.0.0.7"}
    assert (await client.get("/api/v1/resources/999/outputs")).status == 404
