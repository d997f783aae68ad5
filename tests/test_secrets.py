"""Secret stores: env, file (systemd credentials) and vault (against a fake Vault on
loopback), chosen with --secret-store; secrets reach plugins and nowhere else."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import TESTS, no8sd_command, wait_for

from no8sd.builtins.secret_stores import FileSecretStore
from no8sd.builtins.vault import VaultSecretStore

SECRET = "hunter2-very-secret-value"
VAULT_TOKEN = "s.vault-root-token-xyz"


class ApiServer:
    """Records the Authorization header of every call."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization"))
        return web.json_response({"ok": True})


@pytest.fixture
async def api(aiohttp_server: Any) -> ApiServer:
    server = ApiServer()
    app = web.Application()
    app.router.add_post("/call", server.handle)
    running = await aiohttp_server(app)
    server.url = str(running.make_url("/call"))
    return server


class FakeVault:
    """KV v2 reads and token lookup, checking X-Vault-Token."""

    def __init__(self) -> None:
        self.secrets = {("secret", "apps/api"): {"value": SECRET, "user": "deploy"}}
        self.namespaces: list[str | None] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/auth/token/lookup-self", self.lookup)
        app.router.add_get("/v1/{mount}/data/{path:.+}", self.read)
        return app

    def _authorised(self, request: web.Request) -> bool:
        self.namespaces.append(request.headers.get("X-Vault-Namespace"))
        return request.headers.get("X-Vault-Token") == VAULT_TOKEN

    async def lookup(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errors": ["permission denied"]}, status=403)
        return web.json_response({"data": {"policies": ["default"]}})

    async def read(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errors": ["permission denied"]}, status=403)
        found = self.secrets.get((request.match_info["mount"], request.match_info["path"]))
        if found is None:
            return web.json_response({"errors": []}, status=404)
        return web.json_response({"data": {"data": found, "metadata": {"version": 3}}})


@pytest.fixture
async def vault(aiohttp_server: Any) -> FakeVault:
    fake = FakeVault()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def keyed_type() -> dict[str, Any]:
    return {"name": "Keyed", "version": "v1", "schema": {
        "type": "object", "required": ["secret", "url"],
        "properties": {"secret": {"type": "string"}, "url": {"type": "string"}}}}


async def start_daemon(daemon_factory: Any, *args: str, env: dict[str, str]) -> Any:
    """Start the daemon in a thread, so this loop keeps serving the fake servers."""
    return await asyncio.to_thread(
        daemon_factory, "--plugin", "no8sd_testplugins.extensions:SecretUser",
        "--log-level", "DEBUG", *args, env=env)


async def drive_keyed(http: Any, daemon: Any, url: str, key: str, status: str) -> dict:
    base = daemon.url
    resp = await http.post(f"{base}/api/v1/resource-types", json=keyed_type())
    assert resp.status == 201, await resp.text()
    resp = await http.post(f"{base}/api/v1/resources", json={
        "name": "caller", "resource_type_name": "Keyed", "resource_type_version": "v1",
        "spec": {"secret": key, "url": url}})
    assert resp.status == 201, await resp.text()
    rid = (await resp.json())["id"]

    async def reached() -> dict | None:
        body = await (await http.get(f"{base}/api/v1/resources/{rid}")).json()
        return body if body["status"] == status else None

    return await wait_for(reached)


async def everything_visible(http: Any, daemon: Any, rid: int) -> str:
    """Every API view of the resource and of the plugins, as one text."""
    base = daemon.url
    texts = []
    for path in (f"/api/v1/resources/{rid}", f"/api/v1/resources/{rid}/history",
                 f"/api/v1/resources/{rid}/outputs", "/api/v1/resources",
                 "/api/v1/plugins/secret-stores", "/api/v1/plugins/reconcilers"):
        texts.append(await (await http.get(base + path)).text())
    return "\n".join(texts)


def database_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("daemon.db*"))


async def test_env_store_hands_plugins_secrets_that_never_leak(daemon_factory, http, api,
                                                              tmp_path):
    daemon = await start_daemon(daemon_factory, env={"API_TOKEN": SECRET})
    body = await drive_keyed(http, daemon, api.url, "API_TOKEN", "ready")
    assert api.auth[0] == f"Bearer {SECRET}"
    assert body["outputs"] == {"called": api.url, "status": 200}
    visible = await everything_visible(http, daemon, body["id"])
    assert "API_TOKEN" in visible and SECRET not in visible
    assert daemon.stop() == 0
    assert "DEBUG" in daemon.output and SECRET not in daemon.output
    assert SECRET.encode() not in database_bytes(tmp_path)


async def test_a_missing_secret_fails_the_resource_naming_only_the_key(daemon_factory, http,
                                                                      api):
    daemon = await start_daemon(daemon_factory, env={})
    body = await drive_keyed(http, daemon, api.url, "NOT_SET_ANYWHERE", "failed")
    assert body["status_message"] == (
        "missing secret: Secret 'NOT_SET_ANYWHERE' not found in environment variables.")
    assert api.auth == []
    daemon.stop()


async def test_file_store_reads_systemd_credentials(daemon_factory, http, api, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "api-token").write_text(SECRET + "\n")
    daemon = await start_daemon(daemon_factory, "--secret-store", "file",
                                env={"CREDENTIALS_DIRECTORY": str(creds)})
    body = await drive_keyed(http, daemon, api.url, "api-token", "ready")
    assert api.auth == [f"Bearer {SECRET}"]
    stores = await get_json_http(http, daemon.url + "/api/v1/plugins/secret-stores")
    assert {s["name"]: s["active"] for s in stores} == {"env": False, "file": True,
                                                        "vault": False}
    assert SECRET not in await everything_visible(http, daemon, body["id"])
    daemon.stop()
    assert SECRET not in daemon.output


async def test_file_store_refuses_anything_but_plain_files_in_its_directory(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token").write_text("abc\r\n")
    (creds / "raw").write_bytes(b"line1\nline2")
    (tmp_path / "outside").write_text("private")
    os.symlink(tmp_path / "outside", creds / "escape")
    (creds / "sub").mkdir()
    (creds / "sub" / "x").write_text("nested")
    store = FileSecretStore()
    await store.initialize({"directory": str(creds)})
    assert await store.get_secret("token") == "abc"
    assert await store.get_secret("raw") == "line1\nline2"
    for key in ("../outside", "sub/x", "escape", ".", "..", "", "sub", "missing",
                "/etc/passwd", "a\0b"):
        with pytest.raises(KeyError):
            await store.get_secret(key)
    with pytest.raises(ValueError, match="does not exist"):
        await FileSecretStore().initialize({"directory": str(tmp_path / "nope")})
    with pytest.raises(ValueError, match=r"set NO8SD_SECRET_DIR or run under systemd"):
        await FileSecretStore().initialize({"directory": None})


async def test_vault_store_reads_kv2_secrets_with_its_token(vault):
    store = VaultSecretStore()
    await store.initialize({"addr": vault.url + "/", "token": VAULT_TOKEN,
                            "namespace": "team-a", "mount": "secret"})
    try:
        assert await store.get_secret("apps/api") == SECRET
        assert await store.get_secret("apps/api#user") == "deploy"
        with pytest.raises(KeyError, match="not found in Vault"):
            await store.get_secret("apps/other")
        with pytest.raises(KeyError, match="has no field 'password'; fields: user, value"):
            await store.get_secret("apps/api#password")
        with pytest.raises(KeyError, match="not a valid Vault path"):
            await store.get_secret("apps/../sys")
    finally:
        await store.close()
    assert set(vault.namespaces) == {"team-a"}
    with pytest.raises(ValueError, match="refused the token"):
        bad = VaultSecretStore()
        try:
            await bad.initialize({"addr": vault.url, "token": "wrong"})
        finally:
            await bad.close()


async def test_vault_store_serves_plugins_and_the_token_stays_hidden(daemon_factory, http, api,
                                                                    vault, tmp_path):
    daemon = await start_daemon(daemon_factory, "--secret-store", "vault", env={
        "VAULT_ADDR": vault.url, "VAULT_TOKEN": VAULT_TOKEN})
    body = await drive_keyed(http, daemon, api.url, "apps/api", "ready")
    assert api.auth == [f"Bearer {SECRET}"]
    visible = await everything_visible(http, daemon, body["id"])
    assert SECRET not in visible and VAULT_TOKEN not in visible
    daemon.stop()
    assert SECRET not in daemon.output and VAULT_TOKEN not in daemon.output
    assert SECRET.encode() not in database_bytes(tmp_path)


async def run_failing(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    full_env.update({"PYTHONPATH": str(TESTS), **env})
    proc = await asyncio.create_subprocess_exec(
        *no8sd_command(), "--db", str(tmp_path / "fail.db"), "--port", "0",
        "--no-entry-points", *args, env=full_env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode()


async def test_a_secret_store_that_cannot_start_stops_the_daemon(tmp_path, vault):
    code, out = await run_failing(tmp_path, "--secret-store", "vault",
                                  env={"VAULT_ADDR": vault.url, "VAULT_TOKEN": "s.wrong-1"})
    assert code == 1
    assert "no8sd: error: secret store 'vault' cannot start: Vault at" in out
    assert "refused the token (HTTP 403)" in out and "s.wrong-1" not in out
    assert "Traceback" not in out and "listening on" not in out
    code, out = await run_failing(tmp_path, env={"NO8SD_SECRET_STORE": "keychain"})
    assert code == 1
    assert ("no8sd: error: Unknown secret store plugin: 'keychain'. "
            "Available plugins: env, file, vault") in out
    code, out = await run_failing(tmp_path, "--secret-store", "file",
                                  env={"CREDENTIALS_DIRECTORY": str(tmp_path / "none")})
    assert code == 1 and "secret directory" in out and "does not exist" in out


async def get_json_http(http: Any, url: str) -> Any:
    resp = await http.get(url)
    assert resp.status == 200, await resp.text()
    return await resp.json()

