"""Discovery routes (/api/v1/plugins/*), who may use them and the webhook routes, and
action plugins and secret stores found through installed entry points."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web
from authkit import admin_token, bearer, make_role, make_user, token_client
from conftest import TESTS, get_json, wait_for
from no8sd_testplugins.widgets import CrashingPlugin, WidgetReconciler


async def test_reconcilers_show_types_state_errors_and_restarts(make_client):
    client = await make_client(WidgetReconciler(), CrashingPlugin())

    async def crashed() -> Any:
        found = {p["name"]: p for p in await get_json(client, "/api/v1/plugins/reconcilers")}
        return found if found["crasher"]["state"] == "crashed" \
            and found["crasher"]["restart_count"] >= 2 else None

    found = await wait_for(crashed)
    assert found["crasher"]["resource_types"] == ["Crash"]
    assert found["crasher"]["last_error"] == "RuntimeError: boom at start"
    widgets = found["widgets"]
    assert widgets["state"] == "running" and widgets["resource_types"] == ["Widget"]
    assert widgets["last_error"] is None and widgets["restart_count"] == 0
    assert isinstance(widgets["version"], str)


async def test_actions_inputs_and_secret_stores_are_listed(make_client):
    client = await make_client()
    assert await get_json(client, "/api/v1/plugins/actions") == [
        {"name": "github_actions", "version": "1.0.0"}]
    inputs = await get_json(client, "/api/v1/plugins/inputs")
    assert [(i["name"], i["version"], i["state"]) for i in inputs] == [
        ("http", "1.0.0", "running")]
    assert await get_json(client, "/api/v1/plugins/secret-stores") == [
        {"name": "env", "version": "1.0.0", "active": True},
        {"name": "file", "version": "1.0.0", "active": False},
        {"name": "vault", "version": "1.0.0", "active": False}]


async def test_system_permissions_guard_discovery_and_webhook_routes(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    plugins_role = await make_role(client, admin, "plugin-viewers", [], ["view_plugins"])
    hooks_role = await make_role(client, admin, "hook-viewers", [], ["view_webhooks"])
    _, plugin_viewer = await make_user(client, admin, "pia", role_id=plugins_role["id"])
    _, hook_viewer = await make_user(client, admin, "hugo", role_id=hooks_role["id"])
    _, nobody = await make_user(client, admin, "nora")
    resp = await client.post("/api/v1/admission-webhooks", headers=bearer(admin), json={
        "name": "h", "webhook_url": "http://127.0.0.1:9/h", "webhook_type": "validating",
        "operations": ["CREATE"]})
    assert resp.status == 201
    hook_id = (await resp.json())["id"]

    async def status(method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        resp = await client.request(method, path, headers=bearer(token), json=body)
        return resp.status, await resp.json() if resp.status != 204 else None

    for path in ("/api/v1/plugins/reconcilers", "/api/v1/plugins/actions",
                 "/api/v1/plugins/secret-stores", "/api/v1/plugins/inputs"):
        assert (await status("GET", path, plugin_viewer))[0] == 200, path
        for token in (hook_viewer, nobody):
            assert await status("GET", path, token) == (
                403, {"detail": "Insufficient permissions"}), path
    for path in ("/api/v1/admission-webhooks", f"/api/v1/admission-webhooks/{hook_id}"):
        assert (await status("GET", path, hook_viewer))[0] == 200
        for token in (plugin_viewer, nobody):
            assert (await status("GET", path, token))[0] == 403
    for token in (hook_viewer, plugin_viewer, nobody):
        assert await status("POST", "/api/v1/admission-webhooks", token, {
            "name": "x", "webhook_url": "http://127.0.0.1:9/x", "webhook_type": "mutating",
            "operations": []}) == (403, {"detail": "Admin role required"})
        assert (await status("PUT", f"/api/v1/admission-webhooks/{hook_id}", token,
                             {"ordering": 3}))[0] == 403
        assert (await status("DELETE", f"/api/v1/admission-webhooks/{hook_id}", token))[0] \
            == 403
    listed = await status("GET", "/api/v1/admission-webhooks", admin)
    assert [h["ordering"] for h in listed[1]] == [0]
    resp = await client.get("/api/v1/plugins/actions")
    assert resp.status == 401


def install_fake_distribution(site: Path) -> None:
    """Make an installed distribution whose entry points name the test plugins."""
    info = site / "no8sd_ext_demo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: no8sd-ext-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[no8s.actions]\necho = no8sd_testplugins.extensions:EchoAction\n\n"
        "[no8s.secret_stores]\nstatic = no8sd_testplugins.extensions:StaticSecretStore\n")


async def test_installed_action_plugins_and_secret_stores_are_discovered(
        daemon_factory, http, aiohttp_server, tmp_path):
    calls: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization"))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/call", handle)
    api = await aiohttp_server(app)
    site = tmp_path / "site"
    install_fake_distribution(site)
    daemon = await asyncio.to_thread(
        daemon_factory, "--entry-points", "--secret-store", "static",
        "--plugin", "no8sd_testplugins.extensions:SecretUser",
        env={"PYTHONPATH": f"{TESTS}:{site}"})
    base = daemon.url
    actions = await (await http.get(base + "/api/v1/plugins/actions")).json()
    assert actions[:1] == [{"name": "github_actions", "version": "1.0.0"}]
    assert {"name": "echo", "version": "2.1.0"} in actions
    stores = await (await http.get(base + "/api/v1/plugins/secret-stores")).json()
    assert {"name": "static", "version": "0.3.0", "active": True} in stores
    assert not any(s["active"] for s in stores if s["name"] != "static")
    resp = await http.post(base + "/api/v1/resource-types", json={
        "name": "Keyed", "version": "v1", "schema": {"type": "object"}})
    assert resp.status == 201
    resp = await http.post(base + "/api/v1/resources", json={
        "name": "k", "resource_type_name": "Keyed", "resource_type_version": "v1",
        "action_plugin": "echo",
        "spec": {"secret": "API_TOKEN", "url": str(api.make_url("/call"))}})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["action_plugin"] == "echo"
    await wait_for(lambda: calls)
    assert calls == ["Bearer static-secret-value"]
    assert daemon.stop() == 0
    assert "Registered action plugin: echo 2.1.0" in daemon.output
    assert "Using secret store: static" in daemon.output


def test_upstream_import_paths_give_the_action_and_secret_store_contracts():
    from no8s_operator.plugins import ActionResult as ReExported
    from no8s_operator.plugins.actions.base import ActionPlugin
    from no8s_operator.plugins.base import ActionContext, ActionPhase, ActionResult, DriftResult
    from no8s_operator.plugins.secrets.base import SecretStorePlugin

    import no8sd.plugins as native

    assert (ActionPlugin, ActionContext, ActionPhase, ActionResult, DriftResult) == (
        native.ActionPlugin, native.ActionContext, native.ActionPhase, native.ActionResult,
        native.DriftResult)
    assert ReExported is ActionResult and SecretStorePlugin is native.SecretStore
    result = ActionResult()
    assert (result.success, result.phase, result.has_changes, result.outputs) == (
        False, ActionPhase.PENDING, False, {})
    assert DriftResult().drift_details == ""
