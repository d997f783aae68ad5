"""Resource types API: register, list, read, update, delete, and the rules around them."""

from __future__ import annotations

from conftest import WIDGET_SCHEMA, create_widget, create_widget_type, get_json
from no8sd_testplugins.widgets import WidgetReconciler


async def test_register_and_read_back(make_client):
    client = await make_client()
    created = await create_widget_type(client)
    assert created["name"] == "Widget" and created["version"] == "v1"
    assert created["status"] == "active" and created["metadata"] == {}
    assert created["schema"] == WIDGET_SCHEMA
    assert created["created_at"].endswith("+00:00")
    by_id = await get_json(client, f"/api/v1/resource-types/{created['id']}")
    by_name = await get_json(client, "/api/v1/resource-types/Widget/v1")
    assert by_id == by_name == created


async def test_resource_schema_alias_is_accepted(make_client):
    client = await make_client()
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Alias", "version": "v1", "resource_schema": {"type": "object"}})
    assert resp.status == 201
    assert (await resp.json())["schema"] == {"type": "object"}


async def test_invalid_json_schema_is_400(make_client):
    client = await make_client()
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Bad", "version": "v1", "schema": {"type": "no-such-type"}})
    assert resp.status == 400
    assert "Invalid schema" in (await resp.json())["detail"]
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Bad", "version": "v1", "schema": {"properties": {"a": {"minimum": "x"}}}})
    assert resp.status == 400
    assert await get_json(client, "/api/v1/resource-types") == []


async def test_missing_schema_and_bad_names_are_422(make_client):
    client = await make_client()
    resp = await client.post("/api/v1/resource-types", json={"name": "X", "version": "v1"})
    assert resp.status == 422 and "schema is required" in (await resp.json())["detail"]
    for name, version in (("a/b", "v1"), ("Ok", "v1/x"), ("", "v1"), ("Ok", "")):
        resp = await client.post("/api/v1/resource-types", json={
            "name": name, "version": version, "schema": {}})
        assert resp.status == 422, (name, version)


async def test_duplicate_name_version_is_409(make_client):
    client = await make_client()
    await create_widget_type(client)
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Widget", "version": "v1", "schema": {}})
    assert resp.status == 409
    assert (await resp.json())["detail"] == "Resource type Widget/v1 already exists"
    await create_widget_type(client, version="v2")  # another version is fine


async def test_list_filters_and_paging(make_client):
    client = await make_client()
    for name, version in (("B", "v1"), ("A", "v2"), ("A", "v1"), ("C", "v1")):
        resp = await client.post("/api/v1/resource-types", json={
            "name": name, "version": version, "schema": {}})
        assert resp.status == 201
    listed = await get_json(client, "/api/v1/resource-types")
    assert [(t["name"], t["version"]) for t in listed] == [
        ("A", "v1"), ("A", "v2"), ("B", "v1"), ("C", "v1")]
    only_a = await get_json(client, "/api/v1/resource-types?name=A")
    assert [t["version"] for t in only_a] == ["v1", "v2"]
    page = await get_json(client, "/api/v1/resource-types?limit=2&offset=1")
    assert [(t["name"], t["version"]) for t in page] == [("A", "v2"), ("B", "v1")]
    b_id = listed[2]["id"]
    resp = await client.put(f"/api/v1/resource-types/{b_id}", json={"status": "deprecated"})
    assert resp.status == 200
    deprecated = await get_json(client, "/api/v1/resource-types?status=deprecated")
    assert [t["name"] for t in deprecated] == ["B"]
    for bad in ("limit=-1", "limit=abc", "offset=-5", "limit=100000"):
        resp = await client.get(f"/api/v1/resource-types?{bad}")
        assert resp.status == 422, bad


async def test_partial_update(make_client):
    client = await make_client()
    created = await create_widget_type(client)
    url = f"/api/v1/resource-types/{created['id']}"
    resp = await client.put(url, json={"description": "things"})
    updated = await resp.json()
    assert resp.status == 200 and updated["description"] == "things"
    assert updated["schema"] == WIDGET_SCHEMA and updated["updated_at"] > created["updated_at"]
    resp = await client.put(url, json={"schema": {"type": "object", "required": ["size"]}})
    assert (await resp.json())["schema"]["required"] == ["size"]
    assert (await resp.json())["description"] == "things"
    resp = await client.put(url, json={"status": "retired"})
    assert resp.status == 422
    resp = await client.put(url, json={"schema": {"type": 5}})
    assert resp.status == 400
    resp = await client.put("/api/v1/resource-types/999", json={"description": "x"})
    assert resp.status == 404


async def test_deprecated_type_refuses_new_resources(make_client):
    client = await make_client(WidgetReconciler())
    created = await create_widget_type(client)
    await create_widget(client, "before")
    await client.put(f"/api/v1/resource-types/{created['id']}", json={"status": "deprecated"})
    resp = await client.post("/api/v1/resources", json={
        "name": "after", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 400 and "deprecated" in (await resp.json())["detail"]


async def test_delete_refused_while_used_then_allowed(make_client):
    client = await make_client(WidgetReconciler())
    created = await create_widget_type(client)
    widget = await create_widget(client, "w1")
    resp = await client.delete(f"/api/v1/resource-types/{created['id']}")
    assert resp.status == 409
    # Deleting the resource (the plugin releases it quickly) frees the type.
    await client.delete(f"/api/v1/resources/{widget['id']}")
    from conftest import wait_for

    async def gone():
        return (await client.get(f"/api/v1/resources/{widget['id']}")).status == 404

    await wait_for(gone)
    resp = await client.delete(f"/api/v1/resource-types/{created['id']}")
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.delete(f"/api/v1/resource-types/{created['id']}")
    assert resp.status == 404
