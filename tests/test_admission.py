"""Admission webhooks: the CRUD routes, and the chain run on resource writes against real
webhook servers on loopback (validating, mutating with JSON Patch, failure policies,
dry runs)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from aiohttp import web
from conftest import create_widget, create_widget_type, get_json
from no8sd_testplugins.widgets import WidgetReconciler

current_request: contextvars.ContextVar[web.Request] = contextvars.ContextVar("request")


class HookServer:
    """Webhook endpoints at /<name>; each answers with what `answers[name]` returns."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Any] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        current_request.set(request)
        body = await request.json()
        self.calls.append((name, body))
        answer = self.answers.get(name, {"allowed": True})
        if callable(answer):
            answer = await answer(body)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer)

    def bodies(self, name: str) -> list[dict[str, Any]]:
        return [body for called, body in self.calls if called == name]


@pytest.fixture
async def hooks(aiohttp_server: Any) -> HookServer:
    server = HookServer()
    app = web.Application()
    app.router.add_post("/{name}", server.handle)
    running = await aiohttp_server(app)
    server.url = str(running.make_url("")).rstrip("/")
    return server


async def add_hook(client: Any, hooks: HookServer, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "webhook_url": f"{hooks.url}/{name}", "webhook_type": "validating",
            "operations": ["CREATE", "UPDATE", "DELETE"], **fields}
    resp = await client.post("/api/v1/admission-webhooks", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def widgets(client: Any) -> list[dict[str, Any]]:
    return await get_json(client, "/api/v1/resources")


# ---- CRUD -------------------------------------------------------------------------------


async def test_create_fills_defaults_and_get_returns_the_record(make_client, hooks):
    client = await make_client()
    created = await add_hook(client, hooks, "policy")
    assert created["id"] >= 1 and created["name"] == "policy"
    assert created["webhook_type"] == "validating"
    assert created["operations"] == ["CREATE", "UPDATE", "DELETE"]
    assert created["resource_type_name"] is None and created["resource_type_version"] is None
    assert created["timeout_seconds"] == 10 and created["failure_policy"] == "Fail"
    assert created["ordering"] == 0
    assert created["created_at"].endswith("+00:00") and created["updated_at"]
    assert await get_json(client, f"/api/v1/admission-webhooks/{created['id']}") == created


@pytest.mark.parametrize(("field", "value", "detail"), [
    ("webhook_type", "observing", "webhook_type must be 'validating' or 'mutating'"),
    ("operations", ["CREATE", "PATCH"],
     "Invalid operation 'PATCH'. Must be one of: CREATE, UPDATE, DELETE"),
    ("failure_policy", "Retry", "failure_policy must be 'Fail' or 'Ignore'"),
    ("timeout_seconds", 0, "timeout_seconds must be between 1 and 30"),
    ("timeout_seconds", 31, "timeout_seconds must be between 1 and 30"),
    ("webhook_url", "file:///etc/passwd", "webhook_url must be an http:// or https:// URL"),
    ("webhook_url", "http://[::1/hook", "webhook_url must be an http:// or https:// URL"),
    ("webhook_url", "http://127.0.0.1:99999/x", "webhook_url must be an http:// or https:// URL"),
    ("webhook_url", "https:///no-host", "webhook_url must be an http:// or https:// URL"),
    ("ordering", "first", "ordering: must be of type integer"),
])
async def test_invalid_fields_are_422_with_the_reason(make_client, hooks, field, value, detail):
    client = await make_client()
    body = {"name": "h", "webhook_url": f"{hooks.url}/h", "webhook_type": "validating",
            "operations": ["CREATE"], field: value}
    resp = await client.post("/api/v1/admission-webhooks", json=body)
    assert resp.status == 422
    assert (await resp.json())["detail"] == detail
    assert await get_json(client, "/api/v1/admission-webhooks") == []


async def test_missing_fields_duplicate_names_and_unknown_ids(make_client, hooks):
    client = await make_client()
    resp = await client.post("/api/v1/admission-webhooks", json={"name": "x"})
    assert resp.status == 422
    assert "webhook_url" in (await resp.json())["detail"]
    await add_hook(client, hooks, "dup")
    resp = await client.post("/api/v1/admission-webhooks", json={
        "name": "dup", "webhook_url": f"{hooks.url}/dup", "webhook_type": "mutating",
        "operations": []})
    assert resp.status == 409
    assert (await resp.json())["detail"] == "Admission webhook 'dup' already exists"
    for method in ("GET", "PUT", "DELETE"):
        resp = await client.request(method, "/api/v1/admission-webhooks/999", json={})
        assert resp.status == 404, method
        assert (await resp.json())["detail"] == "Admission webhook not found"
    resp = await client.get("/api/v1/admission-webhooks/abc")
    assert resp.status == 422


async def test_list_is_in_chain_order_and_filters_exactly(make_client, hooks):
    client = await make_client()
    await add_hook(client, hooks, "v-late", ordering=5)
    await add_hook(client, hooks, "m-late", webhook_type="mutating", ordering=9)
    await add_hook(client, hooks, "v-early", ordering=-1, resource_type_name="Widget")
    await add_hook(client, hooks, "m-early", webhook_type="mutating", ordering=1,
                   resource_type_name="Widget", resource_type_version="v1")
    listed = await get_json(client, "/api/v1/admission-webhooks")
    assert [h["name"] for h in listed] == ["m-early", "m-late", "v-early", "v-late"]
    only = await get_json(client, "/api/v1/admission-webhooks?webhook_type=validating"
                                  "&resource_type_name=Widget")
    assert [h["name"] for h in only] == ["v-early"]
    resp = await client.get("/api/v1/admission-webhooks?webhook_type=other")
    assert resp.status == 422


async def test_update_is_partial_and_can_make_a_scoped_hook_global_again(make_client, hooks):
    client = await make_client()
    hook = await add_hook(client, hooks, "scoped", resource_type_name="Widget",
                          resource_type_version="v1", timeout_seconds=5)
    resp = await client.put(f"/api/v1/admission-webhooks/{hook['id']}",
                            json={"failure_policy": "Ignore", "timeout_seconds": None})
    assert resp.status == 200
    changed = await resp.json()
    assert changed["failure_policy"] == "Ignore" and changed["timeout_seconds"] == 5
    assert changed["resource_type_name"] == "Widget"
    resp = await client.put(f"/api/v1/admission-webhooks/{hook['id']}",
                            json={"resource_type_name": None, "resource_type_version": None})
    assert resp.status == 200
    assert (await resp.json())["resource_type_name"] is None
    stored = await get_json(client, f"/api/v1/admission-webhooks/{hook['id']}")
    assert stored["resource_type_name"] is None and stored["resource_type_version"] is None
    resp = await client.put(f"/api/v1/admission-webhooks/{hook['id']}",
                            json={"operations": ["MERGE"]})
    assert resp.status == 422
    resp = await client.delete(f"/api/v1/admission-webhooks/{hook['id']}")
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.get(f"/api/v1/admission-webhooks/{hook['id']}")
    assert resp.status == 404


# ---- the chain --------------------------------------------------------------------------


async def test_validating_denial_is_403_with_the_hooks_message_and_nothing_is_stored(
        make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "no-red")

    async def no_red(body: dict[str, Any]) -> dict[str, Any]:
        if body["resource"]["spec"].get("color") == "red":
            return {"allowed": False, "message": "red widgets are not allowed here"}
        return {"allowed": True}

    hooks.answers["no-red"] = no_red
    resp = await client.post("/api/v1/resources", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1, "color": "red"}, "plugin_config": {"token": "s3cret"}})
    assert resp.status == 403
    assert await resp.json() == {"detail": "red widgets are not allowed here"}
    assert await widgets(client) == []
    call = hooks.bodies("no-red")[0]
    assert call == {"operation": "CREATE", "old_resource": None, "resource": {
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1, "color": "red"}}}
    await create_widget(client, "w2", {"size": 1, "color": "blue"})
    assert [w["name"] for w in await widgets(client)] == ["w2"]


async def test_a_denial_without_message_gets_the_default_text(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "grumpy", webhook_type="mutating")
    hooks.answers["grumpy"] = {"message": ""}  # `allowed` absent means denied
    resp = await client.post("/api/v1/resources", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 403
    assert (await resp.json())["detail"] == "Denied by mutating webhook grumpy"


async def test_mutating_patches_are_rfc6902_applied_in_order_then_validated(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "second", webhook_type="mutating", ordering=2)
    await add_hook(client, hooks, "first", webhook_type="mutating", ordering=1)
    await add_hook(client, hooks, "check")
    hooks.answers["first"] = {"allowed": True, "patches": [
        {"op": "add", "path": "/spec/outputs", "value": {"tags": ["a"]}},
        {"op": "replace", "path": "/size", "value": 4}]}
    hooks.answers["second"] = {"allowed": True, "patches": [
        {"op": "add", "path": "/outputs/tags/-", "value": "b"},
        {"op": "test", "path": "/size", "value": 4},
        {"op": "copy", "from": "/outputs/tags/0", "path": "/color"},
        {"op": "replace", "path": "/color", "value": "green"}]}
    hooks.answers["check"] = {"allowed": True, "patches": [
        {"op": "remove", "path": "/size"}]}  # a validating hook's patches are ignored
    created = await create_widget(client, "w1", {"size": 1})
    expected = {"size": 4, "color": "green", "outputs": {"tags": ["a", "b"]}}
    assert created["spec"] == expected
    assert (await get_json(client, f"/api/v1/resources/{created['id']}"))["spec"] == expected
    assert [name for name, _ in hooks.calls] == ["first", "second", "check"]
    assert hooks.bodies("second")[0]["resource"]["spec"]["size"] == 4
    assert hooks.bodies("check")[0]["resource"]["spec"] == expected


async def test_a_mutation_that_breaks_the_schema_is_refused(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "breaker", webhook_type="mutating")
    hooks.answers["breaker"] = {"allowed": True,
                                "patches": [{"op": "replace", "path": "/size", "value": 0}]}
    resp = await client.post("/api/v1/resources", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 2}})
    assert resp.status == 400
    assert "size: 0 is less than the minimum of 1" in (await resp.json())["detail"]
    assert await widgets(client) == []


async def test_update_sends_the_old_resource_as_json_without_plugin_config(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    created = await create_widget(client, "w1", {"size": 1}, plugin_config={"token": "s3cret"})
    await add_hook(client, hooks, "audit", operations=["UPDATE"])
    resp = await client.put(f"/api/v1/resources/{created['id']}", json={"spec": {"size": 2}})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["spec"] == {"size": 2}
    body = hooks.bodies("audit")[0]
    assert body["operation"] == "UPDATE"
    assert body["resource"]["spec"] == {"size": 2}
    old = body["old_resource"]
    assert old["id"] == created["id"] and old["spec"] == {"size": 1}
    assert old["created_at"] == created["created_at"]  # a timestamp, serialised as text
    assert "plugin_config" not in old and "s3cret" not in str(body)


async def test_delete_runs_the_chain_and_a_denial_keeps_the_resource(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    created = await create_widget(client, "w1", {"size": 1})
    await add_hook(client, hooks, "keeper", operations=["DELETE"])
    hooks.answers["keeper"] = {"allowed": False, "message": "protected"}
    resp = await client.delete(f"/api/v1/resources/{created['id']}")
    assert resp.status == 403
    assert (await resp.json())["detail"] == "protected"
    kept = await get_json(client, f"/api/v1/resources/{created['id']}")
    assert kept["status"] != "deleting" and kept["deleted_at"] is None
    assert hooks.bodies("keeper")[0]["operation"] == "DELETE"
    assert hooks.bodies("keeper")[0]["resource"]["spec"] == {"size": 1}


async def test_hooks_only_run_for_their_types_and_operations(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "other-type", resource_type_name="Gadget")
    await add_hook(client, hooks, "other-version", resource_type_name="Widget",
                   resource_type_version="v2")
    await add_hook(client, hooks, "updates-only", operations=["UPDATE"])
    await add_hook(client, hooks, "mine", resource_type_name="Widget",
                   resource_type_version="v1", operations=["CREATE"])
    await create_widget(client, "w1")
    assert [name for name, _ in hooks.calls] == ["mine"]


@pytest.mark.parametrize("failure", ["status500", "not-json", "timeout", "refused", "bad-patch",
                                     "huge", "huge-streamed", "not-an-object"])
async def test_failures_deny_under_fail_and_are_skipped_under_ignore(make_client, hooks, failure):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)

    async def broken(body: dict[str, Any]) -> Any:
        if failure == "status500":
            return web.json_response({"allowed": True}, status=500)
        if failure == "not-json":
            return web.Response(text="<html>ok</html>", content_type="text/html")
        if failure == "timeout":
            await asyncio.sleep(1.5)  # a remote slower than the hook's 1 s timeout
        if failure == "huge":
            return web.Response(body=b"[" + b"0," * 700_000 + b"0]",
                                content_type="application/json")
        if failure == "bad-patch":
            return {"allowed": True, "patches": [{"op": "remove", "path": "/nope"}]}
        if failure == "not-an-object":
            return web.json_response([{"allowed": True}])
        if failure == "huge-streamed":
            return await streamed([b'{"allowed": true, "message": "'] + [b"x" * 65536] * 20
                                  + [b'"}'])
        return {"allowed": True}

    url = "http://127.0.0.1:9/refused" if failure == "refused" else f"{hooks.url}/broken"
    hooks.answers["broken"] = broken
    hook = await add_hook(client, hooks, "broken", webhook_url=url, webhook_type="mutating",
                          timeout_seconds=1)
    resp = await client.post("/api/v1/resources", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 403
    assert (await resp.json())["detail"].startswith("Admission webhook broken failed: ")
    assert await widgets(client) == []
    resp = await client.put(f"/api/v1/admission-webhooks/{hook['id']}",
                            json={"failure_policy": "Ignore"})
    assert resp.status == 200
    created = await create_widget(client, "w1", {"size": 1})
    assert created["spec"] == {"size": 1}


async def streamed(chunks: list[bytes]) -> web.StreamResponse:
    """A chunked response (no Content-Length), written piece by piece."""
    request = current_request.get()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for chunk in chunks:
        await resp.write(chunk)
        await asyncio.sleep(0.01)  # a slow remote: each piece travels on its own
    await resp.write_eof()
    return resp


async def test_an_answer_arriving_in_pieces_is_read_whole(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "slow", webhook_type="mutating")

    async def slow(body: dict[str, Any]) -> web.StreamResponse:
        text = b'{"allowed": true, "patches": [{"op": "add", "path": "/color", "value": "red"}]}'
        return await streamed([text[i:i + 7] for i in range(0, len(text), 7)])

    hooks.answers["slow"] = slow
    created = await create_widget(client, "w1", {"size": 1})
    assert created["spec"] == {"size": 1, "color": "red"}


async def test_dry_run_create_returns_the_mutated_resource_and_stores_nothing(
        make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    await add_hook(client, hooks, "defaults", webhook_type="mutating")
    hooks.answers["defaults"] = {"allowed": True, "patches": [
        {"op": "add", "path": "/color", "value": "blue"}]}
    resp = await client.post("/api/v1/resources?dry_run=true", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    assert resp.status == 200
    preview = await resp.json()
    assert preview["spec"] == {"size": 1, "color": "blue"}
    assert preview["status"] == "pending" and preview["generation"] == 1
    assert len(hooks.calls) == 1
    assert await widgets(client) == []
    resp = await client.post("/api/v1/resources?dry_run=true", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 0}})
    assert resp.status == 400


async def test_dry_run_update_previews_and_leaves_the_stored_resource_alone(make_client, hooks):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    created = await create_widget(client, "w1", {"size": 1})
    await add_hook(client, hooks, "bump", webhook_type="mutating", operations=["UPDATE"])
    hooks.answers["bump"] = {"allowed": True, "patches": [
        {"op": "replace", "path": "/spec/size", "value": 9}]}
    resp = await client.put(f"/api/v1/resources/{created['id']}?dry_run=true",
                            json={"spec": {"size": 2}})
    assert resp.status == 200
    assert (await resp.json())["spec"] == {"size": 9}
    stored = await get_json(client, f"/api/v1/resources/{created['id']}")
    assert stored["spec"] == {"size": 1} and stored["generation"] == 1
    hooks.answers["bump"] = {"allowed": False, "message": "frozen"}
    resp = await client.put(f"/api/v1/resources/{created['id']}?dry_run=true",
                            json={"spec": {"size": 2}})
    assert resp.status == 403 and (await resp.json())["detail"] == "frozen"
