"""Bad input: every mistake a client can make is a JSON 4xx, never a 500, never half-written.
Plus restarts: all data kept, every due time resumed, nothing re-run that was not due."""

from __future__ import annotations

import io

import aiohttp
from conftest import create_widget, create_widget_type, get_json, wait_for
from no8sd_testplugins.widgets import WidgetReconciler
from test_metrics import scrape, value

JSON = {"Content-Type": "application/json"}


async def _expect(resp, status, fragment=""):
    assert resp.status == status, (resp.status, await resp.text())
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert isinstance(body["detail"], str) and fragment in body["detail"], body
    return body


async def test_malformed_bodies(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    cases = [
        (b"{not json", 400, "Malformed JSON"),
        (b"", 422, "body is required"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'"text"', 422, "must be a JSON object"),
        (b"\xff\xfe{}", 400, "not valid UTF-8"),
        (b'{"name": NaN}', 400, "Malformed JSON"),
        (b'{"name": 1e999}', 400, "Malformed JSON"),
        (b"[" * 100 + b"]" * 100, 400, "nested deeper"),
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, "Malformed JSON"),
    ]
    for raw, status, fragment in cases:
        for url in ("/api/v1/resources", "/api/v1/resource-types"):
            resp = await client.post(url, data=raw, headers=JSON)
            await _expect(resp, status, fragment)
    assert await get_json(client, "/api/v1/resources") == []


async def test_wrong_field_types_list_every_field(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    resp = await client.post("/api/v1/resources", json={
        "name": 5, "resource_type_name": ["Widget"], "spec": "big"})
    body = await _expect(resp, 422)
    paths = {e["path"] for e in body["errors"]}
    assert {"name", "resource_type_name", "spec", "(body)"} <= paths
    assert "resource_type_version" in body["detail"]
    resp = await client.post("/api/v1/resource-types", json={
        "name": "T", "version": 1, "schema": []})
    body = await _expect(resp, 422)
    assert {e["path"] for e in body["errors"]} == {"version", "schema"}
    widget = await create_widget(client, "w")
    resp = await client.put(f"/api/v1/resources/{widget['id']}", json={"spec": [1]})
    await _expect(resp, 422, "spec")
    resp = await client.put(f"/api/v1/resources/{widget['id']}/finalizers",
                            json={"add": [1, 2]})
    await _expect(resp, 422, "add.0")


async def test_ids_unknown_non_integer_and_out_of_range(make_client):
    client = await make_client()
    for url in ("/api/v1/resources/abc", "/api/v1/resources/1.5", "/api/v1/resources/-1",
                "/api/v1/resources/%C3%A9", "/api/v1/resource-types/x1"):
        await _expect(await client.get(url), 422, "must be an integer")
    for url in ("/api/v1/resources/0", "/api/v1/resources/99999999999999999999999",
                "/api/v1/resources/12345", "/api/v1/resource-types/777"):
        await _expect(await client.get(url), 404)
    await _expect(await client.delete("/api/v1/resources/12345"), 404)
    await _expect(await client.put("/api/v1/resources/12345", json={}), 404)
    await _expect(await client.get("/api/v1/nowhere"), 404, "Not Found")
    resp = await client.patch("/api/v1/resources")
    await _expect(resp, 405, "Method Not Allowed")


async def test_bodies_over_one_mebibyte_are_413_and_nothing_is_stored(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    big = b'{"name": "big", "resource_type_name": "Widget", "resource_type_version": "v1",' \
          b' "spec": {"blob": "' + b"x" * (1024 * 1024) + b'"}}'
    # (In a file object: aiohttp warns that a large bytes body would block its loop.)
    await _expect(await client.post("/api/v1/resources", data=io.BytesIO(big), headers=JSON),
                  413, "too large")
    widget = await create_widget(client, "small")
    resp = await client.put(f"/api/v1/resources/{widget['id']}", data=io.BytesIO(big),
                            headers=JSON)
    await _expect(resp, 413)
    assert [r["name"] for r in await get_json(client, "/api/v1/resources")] == ["small"]
    assert (await get_json(client, f"/api/v1/resources/{widget['id']}"))["generation"] == 1


async def test_query_parameters(make_client):
    client = await make_client()
    for query in ("limit=-1", "limit=1001", "limit=ten", "offset=-1", "status=nope"):
        await _expect(await client.get(f"/api/v1/resources?{query}"), 422)
    assert (await client.get("/api/v1/resources?limit=0")).status == 200


async def test_restart_keeps_data_and_resumes_due_times(daemon_factory, tmp_path):
    db = tmp_path / "resume.db"
    plugin = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler",
              "--backoff-base", "120", "--drift-interval", "300")

    async def snapshot(url):
        async with aiohttp.ClientSession(url) as http:
            listed = await (await http.get("/api/v1/resources")).json()
            result = {}
            for r in listed:
                history = await (await http.get(f"/api/v1/resources/{r['id']}/history")).json()
                result[r["name"]] = (r, len(history))
            return result

    first = daemon_factory(*plugin, db=db)
    async with aiohttp.ClientSession(first.url) as http:
        await http.post("/api/v1/resource-types", json={"name": "Widget", "version": "v1",
                                                         "schema": {}})
        for name, spec in (("fine", {"size": 1}), ("broken", {"fail": "no quota"}),
                           ("changed", {"size": 1})):
            resp = await http.post("/api/v1/resources", json={
                "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
                "spec": spec})
            assert resp.status == 201
    async def settled(url, statuses):
        state = await snapshot(url)
        found = [state[n][0]["status"] for n in ("fine", "broken", "changed")]
        return state if found == statuses and await _idle(url) else None

    before = await wait_for(lambda: settled(first.url, ["ready", "failed", "ready"]))
    assert first.stop() == 0

    # While no reconciler runs, a spec change arrives: that work must not be lost.
    second = daemon_factory(db=db)
    async with aiohttp.ClientSession(second.url) as http:
        resp = await http.put(f"/api/v1/resources/{before['changed'][0]['id']}",
                              json={"spec": {"size": 2}})
        assert resp.status == 200
    assert second.stop() == 0

    third = daemon_factory(*plugin, db=db)

    async def resumed():
        after = await snapshot(third.url)
        return after if after["changed"][0]["observed_generation"] == 2 else None

    await wait_for(resumed)  # due work resumed
    # Then nothing is due and nothing runs: work wrongly made due would have run by now.
    await wait_for(lambda: _idle(third.url))
    after = await snapshot(third.url)
    assert after["changed"][0]["observed_generation"] == 2
    for name in ("fine", "broken"):
        old, old_history = before[name]
        new, new_history = after[name]
        assert new_history == old_history  # nothing re-ran that was not due
        assert new["next_reconcile_time"] == old["next_reconcile_time"]
        assert new["retry_count"] == old["retry_count"] and new["spec"] == old["spec"]
    assert after["broken"][0]["retry_count"] == 1
    assert third.stop() == 0


async def _idle(url):
    """Whether the Widget reconciler has nothing due and nothing running (its metrics)."""
    async with aiohttp.ClientSession(url) as http:
        samples = await scrape(http)
    return (value(samples, "workqueue_depth", name="widgets") == 0
            and value(samples, "controller_runtime_active_workers", controller="widgets") == 0)
