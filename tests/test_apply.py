"""Server-side apply (POST /api/v1/apply) on a real server: create, configure, leave alone,
per-object errors, dry runs with their diff, and nothing written for unchanged objects."""

from __future__ import annotations

from typing import Any

from conftest import WIDGET_SCHEMA, all_ready, get_json, wait_for, wait_ready
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import keys

TYPE = {"kind": "ResourceType", "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}


def widget(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1}, **fields}


async def apply(client: Any, manifests: list[Any], *, dry_run: bool = False,
                status: int = 200) -> Any:
    resp = await client.post("/api/v1/apply" + ("?dry_run=true" if dry_run else ""),
                             json={"manifests": manifests})
    assert resp.status == status, await resp.text()
    return await resp.json()


async def event_count(client: Any) -> int:
    return len(await client.server.app[keys.CORE].events_after(0, limit=100_000))


def results(answer: dict[str, Any]) -> list[str]:
    return [r["result"] for r in answer["results"]]


async def test_apply_creates_then_leaves_alone_and_writes_nothing(make_client):
    client = await make_client(WidgetReconciler())
    manifests = [widget("a"), TYPE, widget("b", metadata={"team": "x"})]
    first = await apply(client, manifests)
    # Types go first, so the resources of a type in the same apply find it; results keep
    # the manifest order.
    assert results(first) == ["created", "created", "created"]
    assert first["summary"] == {"created": 3, "configured": 0, "unchanged": 0, "error": 0}
    assert [r["kind"] for r in first["results"]] == ["Resource", "ResourceType", "Resource"]
    a = first["results"][0]["record"]
    assert a["name"] == "a" and a["status"] == "pending" and a["generation"] == 1
    assert first["results"][1]["record"]["schema"] == WIDGET_SCHEMA
    await wait_for(lambda: all_ready(client))
    before_events = await event_count(client)
    before = await get_json(client, f"/api/v1/resources/{a['id']}")

    second = await apply(client, manifests)
    assert results(second) == ["unchanged"] * 3
    assert all(r["diff"] == [] for r in second["results"])
    assert await event_count(client) == before_events
    assert await get_json(client, f"/api/v1/resources/{a['id']}") == before


async def test_a_resource_named_twice_in_one_apply_is_applied_in_order(make_client):
    client = await make_client(WidgetReconciler())
    # Many resources at once (they are written concurrently), one of them three times.
    manifests = [TYPE, widget("twice", spec={"size": 1}),
                 *[widget(f"w{i}", spec={"size": i + 1}) for i in range(40)],
                 widget("twice", spec={"size": 2}), widget("twice", spec={"size": 3})]
    answer = await apply(client, manifests)
    assert results(answer)[:2] == ["created", "created"]
    assert results(answer)[-2:] == ["configured", "configured"]
    assert [r["record"]["spec"] for r in answer["results"][-2:]] == [{"size": 2}, {"size": 3}]
    stored = await get_json(client, "/api/v1/resources/by-name/Widget/v1/twice")
    assert stored["spec"] == {"size": 3}
    for i, result in enumerate(answer["results"][2:-2]):
        assert result["result"] == "created" and result["record"]["spec"] == {"size": i + 1}


async def test_changes_are_configured_with_their_diff(make_client):
    client = await make_client(WidgetReconciler())
    await apply(client, [TYPE, widget("a", metadata={"team": "x"})])
    answer = await apply(client, [widget("a", spec={"size": 2}, metadata={"team": "x"})])
    [result] = answer["results"]
    assert result["result"] == "configured"
    assert result["diff"] == [{"op": "test", "path": "/spec/size", "value": 1},
                              {"op": "replace", "path": "/spec/size", "value": 2}]
    assert result["record"]["generation"] == 2
    # Metadata alone is not a new generation; fields left out are left alone.
    answer = await apply(client, [{**widget("a", metadata={"team": "y"}), "spec": None}])
    assert answer["results"][0]["result"] == "configured"
    assert answer["results"][0]["record"]["generation"] == 2
    assert answer["results"][0]["record"]["spec"] == {"size": 2}
    # A type's schema change is configured too.
    schema = {**WIDGET_SCHEMA, "required": ["size"]}
    answer = await apply(client, [{**TYPE, "schema": schema, "description": "widgets"}])
    assert answer["results"][0]["result"] == "configured"
    ops = {(op["op"], op["path"]) for op in answer["results"][0]["diff"]}
    assert ops == {("add", "/schema/required"), ("test", "/description"),
                   ("replace", "/description")}


async def test_one_bad_manifest_does_not_stop_the_others(make_client):
    client = await make_client(WidgetReconciler())
    answer = await apply(client, [
        TYPE, widget("good-1"), widget("bad", spec={"size": "large"}), widget("good-2"),
        widget("Not_A_Name"), {"name": "x", "resource_type_name": "Widget",
                               "resource_type_version": "v1", "spce": {}},
        {"name": "nothing-to-go-on"}, {**widget("k"), "kind": "Deployment"},
        widget("untyped", resource_type_name="Gizmo")])
    assert results(answer) == ["created", "created", "error", "created", "error", "error",
                               "error", "error", "error"]
    errors = {r["index"]: (r["status"], r["detail"]) for r in answer["results"]
              if r["result"] == "error"}
    assert errors[2][0] == 400 and errors[2][1].startswith("Spec validation failed: size:")
    assert errors[4][0] == 422 and "lowercase" in errors[4][1]
    assert errors[5] == (422, "unknown field 'spce' in a Resource manifest")
    assert errors[6][0] == 422 and "kind is missing" in errors[6][1]
    assert errors[7] == (422, "kind must be one of: ResourceType, Resource")
    assert errors[8][0] == 400 and "Gizmo" in errors[8][1]
    listed = await get_json(client, "/api/v1/resources")
    assert sorted(r["name"] for r in listed) == ["good-1", "good-2"]
    assert answer["summary"] == {"created": 3, "configured": 0, "unchanged": 0, "error": 6}


async def test_dry_run_answers_what_would_change_and_stores_nothing(make_client):
    client = await make_client(WidgetReconciler())
    # A fresh box: the type and its resources in one dry run.
    answer = await apply(client, [TYPE, widget("a"), widget("b", spec={"size": 0})],
                         dry_run=True)
    assert answer["dry_run"] is True
    assert results(answer) == ["created", "created", "error"]
    assert "created by this apply" in answer["results"][1]["note"]
    assert answer["results"][1]["diff"] == [
        {"op": "add", "path": "/spec", "value": {"size": 1}},
        {"op": "add", "path": "/metadata", "value": {}},
        {"op": "add", "path": "/plugin_config", "value": {}}]
    assert answer["results"][2]["detail"].startswith("Spec validation failed")
    assert await get_json(client, "/api/v1/resource-types") == []
    assert await event_count(client) == 0

    created = await apply(client, [TYPE, widget("a")])
    await wait_ready(client, created["results"][1]["record"]["id"])
    events = await event_count(client)
    answer = await apply(client, [widget("a", spec={"size": 5}), widget("c")], dry_run=True)
    assert results(answer) == ["configured", "created"]
    assert answer["results"][0]["diff"] == [{"op": "test", "path": "/spec/size", "value": 1},
                                            {"op": "replace", "path": "/spec/size", "value": 5}]
    assert answer["results"][0]["record"]["generation"] == 2  # what would be stored
    assert answer["results"][1]["record"]["status"] == "pending"
    stored = await get_json(client, "/api/v1/resources")
    assert [(r["name"], r["spec"], r["generation"]) for r in stored] == [("a", {"size": 1}, 1)]
    assert await event_count(client) == events


async def test_a_fetched_record_applies_back_unchanged(make_client):
    client = await make_client(WidgetReconciler())
    created = (await apply(client, [TYPE, widget("a")]))["results"][1]["record"]
    await wait_ready(client, created["id"])
    record = await get_json(client, f"/api/v1/resources/{created['id']}")
    type_record = await get_json(client, "/api/v1/resource-types/Widget/v1")
    answer = await apply(client, [{**record, "kind": "Resource"}, type_record])
    assert results(answer) == ["unchanged", "unchanged"]


async def test_objects_that_cannot_be_applied(make_client):
    client = await make_client(WidgetReconciler())
    await apply(client, [TYPE, widget("a"), widget("kept", spec={"size": 1, "keep": True})])
    kept = await get_json(client, "/api/v1/resources/by-name/Widget/v1/kept")
    await wait_ready(client, kept["id"])
    resp = await client.delete(f"/api/v1/resources/{kept['id']}")
    assert resp.status == 202
    answer = await apply(client, [widget("kept", spec={"size": 1, "keep": True}),
                                  widget("a", action_plugin="github_actions"),
                                  {**TYPE, "version": "v2", "status": "deprecated"},
                                  {**TYPE, "schema": {"type": 12}}])
    details = [(r["result"], r["status"]) for r in answer["results"]]
    assert details == [("error", 409), ("error", 400), ("error", 422), ("error", 400)]
    assert "being deleted" in answer["results"][0]["detail"]
    assert "action_plugin cannot be changed" in answer["results"][1]["detail"]


async def test_bad_requests_are_refused_as_a_whole(make_client):
    client = await make_client()
    for body, status in (({}, 422), ({"manifests": {}}, 422), ({"manifests": [1]}, 422),
                         ({"manifests": [{}] * 1001}, 422)):
        resp = await client.post("/api/v1/apply", json=body)
        assert resp.status == status, body
        assert "detail" in await resp.json()
    resp = await client.post("/api/v1/apply?dry_run=maybe", json={"manifests": []})
    assert resp.status == 422
    assert (await apply(client, []))["results"] == []
