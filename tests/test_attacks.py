"""Attacks that used to work, one test (or more) per hole, each against a real server.

1. cross-site requests and DNS rebinding against --auth none; 2. the login throttle race;
3. memory held before authentication; 4. one user taking every event-stream slot;
5. UPDATE-only callers reading whole resources; 6. validation stalling the event loop;
7. sessions that outlive a suspension, revocation or password change; 8. file modes and
the environment; 9. small leaks (admission failures, name collisions), the bearer scheme's
case, HEAD, and IPv6 loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from authkit import (
    ADMIN,
    PASSWORD,
    Authed,
    admin_token,
    bearer,
    login,
    make_role,
    make_user,
    token_client,
)
from conftest import (
    create_widget,
    create_widget_type,
    get_json,
    no8sd_command,
    wait_for,
    wait_ready,
)
from no8sd_testplugins.widgets import WidgetReconciler
from sse import next_event

JSON = {"Content-Type": "application/json"}
TYPE_BODY = {"name": "Planted", "version": "v1", "schema": {"type": "object"}}
HOOK = {"name": "planted", "webhook_url": "http://127.0.0.1:9/steal",
        "webhook_type": "mutating", "operations": ["CREATE", "UPDATE"]}


def _url(client: Any, path: str) -> str:
    return f"http://{client.host}:{client.port}{path}"


# ---- 1. cross-site requests and DNS rebinding ---------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_a_body_that_is_not_declared_json_is_refused_before_anything_is_stored(
        make_client, content_type):
    client = await make_client()
    headers = {"Content-Type": content_type} if content_type else {}
    for path, body in (("/api/v1/resource-types", TYPE_BODY),
                       ("/api/v1/admission-webhooks", HOOK),
                       ("/api/v1/users", {"username": "planted", "password": PASSWORD})):
        # What a page can send without a CORS preflight: a "simple" body type.
        resp = await client.post(path, data=json.dumps(body).encode(), headers=headers,
                                 skip_auto_headers=["Content-Type"])
        assert resp.status == 415, (path, await resp.text())
        assert "must be JSON" in (await resp.json())["detail"]
    assert await get_json(client, "/api/v1/resource-types") == []
    assert await get_json(client, "/api/v1/admission-webhooks") == []


async def test_json_media_types_are_accepted(make_client):
    client = await make_client()
    for i, content_type in enumerate(("application/json", "application/json; charset=utf-8",
                                      "Application/JSON")):
        body = {**TYPE_BODY, "name": f"T{i}"}
        resp = await client.post("/api/v1/resource-types", data=json.dumps(body),
                                 headers={"Content-Type": content_type})
        assert resp.status == 201, (content_type, await resp.text())
    # application/*+json too (a JSON merge patch, say): it passes the guard and reaches
    # the handler, which parses it as JSON.
    resp = await client.post("/api/v1/resource-types", data=json.dumps(
        {**TYPE_BODY, "name": "Merge"}), headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status == 201


@pytest.mark.parametrize("auth", ["none", "token"])
async def test_a_foreign_origin_cannot_change_state(make_client, auth):
    client = (await token_client(make_client) if auth == "token" else await make_client())
    headers = {**JSON, **(bearer(await admin_token(client)) if auth == "token" else {})}
    for origin in ("http://evil.example", "http://127.0.0.1.evil.example:8000", "null",
                   f"https://{client.host}:{client.port}.evil.example"):
        for method, path, body in (("POST", "/api/v1/resource-types", TYPE_BODY),
                                   ("POST", "/api/v1/admission-webhooks", HOOK),
                                   ("PUT", "/api/v1/resource-types/1", {"description": "x"}),
                                   ("DELETE", "/api/v1/resource-types/1", None)):
            resp = await client.request(method, path, json=body,
                                        headers={**headers, "Origin": origin})
            assert resp.status == 403, (origin, method, path, await resp.text())
            assert "Cross-origin request refused" in (await resp.json())["detail"]
    # The daemon's own page (same origin) may, and reads are not refused for an Origin.
    own = f"http://{client.host}:{client.port}"
    resp = await client.post("/api/v1/resource-types", json=TYPE_BODY,
                             headers={**headers, "Origin": own})
    assert resp.status == 201, await resp.text()
    resp = await client.get("/api/v1/resource-types",
                            headers={**headers, "Origin": "http://evil.example"})
    assert resp.status == 200


async def test_allowed_origin_admits_a_proxied_page(make_client):
    client = await make_client(allowed_origins=("https://no8sd.example.com",))
    resp = await client.post("/api/v1/resource-types", json=TYPE_BODY,
                             headers={"Origin": "https://no8sd.example.com"})
    assert resp.status == 201
    resp = await client.post("/api/v1/resource-types", json={**TYPE_BODY, "name": "B"},
                             headers={"Origin": "https://other.example.com"})
    assert resp.status == 403


async def test_dns_rebinding_cannot_reach_the_api_without_auth(make_client, http):
    client = await make_client()
    await create_widget_type(client)
    for host in ("rebind.evil.example:8000", "rebind.evil.example", "192.0.2.7:8000",
                 "localhost.evil.example", "[::2]"):
        resp = await http.get(_url(client, "/api/v1/resource-types"), headers={"Host": host})
        assert resp.status == 421, host
        assert "Host header" in (await resp.json())["detail"]
    for host in (f"127.0.0.1:{client.port}", f"localhost:{client.port}", "localhost",
                 "127.0.0.2", "app.localhost:9000"):
        resp = await http.get(_url(client, "/api/v1/resource-types"), headers={"Host": host})
        assert resp.status == 200, host


async def test_with_tokens_any_host_name_is_answered(make_client, http):
    client = await token_client(make_client)
    token = await admin_token(client)
    resp = await http.get(_url(client, "/api/v1/resource-types"),
                          headers={"Host": "no8sd.example.com", **bearer(token)})
    assert resp.status == 200


def test_initial_admin_ignored_and_missing_admin_are_logged(daemon_factory, tmp_path):
    db = tmp_path / "boot.db"
    env = {"INITIAL_ADMIN_USERNAME": "root", "INITIAL_ADMIN_PASSWORD": "root-password-1"}
    first = daemon_factory("--auth", "token", db=db, env=env)
    assert first.stop() == 0
    assert "Created initial admin user root" in first.output
    second = daemon_factory("--auth", "token", db=db,
                            env={**env, "INITIAL_ADMIN_USERNAME": "other"})
    assert second.stop() == 0
    ignored = [line for line in second.lines if "INITIAL_ADMIN" in line and "ignored" in line]
    assert len(ignored) == 1, second.output
    assert "already has users" in ignored[0]
    empty = daemon_factory("--auth", "token", db=tmp_path / "empty.db")
    assert empty.stop() == 0
    assert "no8sd --db" in empty.output and "user create --admin" in empty.output


# ---- 2. the login throttle race --------------------------------------------------------


async def test_a_burst_of_guesses_gets_only_the_throttle_s_worth_of_checks(make_client):
    client = await token_client(make_client)

    async def guess(username: str, password: str) -> int:
        resp = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
        return resp.status

    statuses = await asyncio.gather(*(guess(ADMIN[0], f"wrong-{i}") for i in range(39)),
                                    guess(*ADMIN))
    # At most five attempts per username are ever checked; the rest are refused at once,
    # the right password among them: guessing in parallel gains nothing.
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(200) == 0, statuses
    assert set(statuses) <= {401, 429}, statuses


async def test_a_burst_across_usernames_is_bounded_per_address(make_client):
    client = await token_client(make_client)
    statuses = await asyncio.gather(*(
        client.post("/api/v1/auth/login", json={"username": f"user{i}", "password": "x" * 9})
        for i in range(60)))
    codes = [r.status for r in statuses]
    assert codes.count(401) <= 20, codes
    # Beyond one check per CPU plus a short queue, logins are refused at once instead of
    # queueing work for unauthenticated clients.
    assert set(codes) <= {401, 429, 503}, codes
    busy = [r for r in statuses if r.status == 503]
    assert busy, codes
    assert busy[0].headers["Retry-After"] == "1"
    assert "retry" in (await busy[0].json())["detail"]


# ---- 3. memory held before authentication -----------------------------------------------


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _stall(host: str, port: int, path: str, length: int, sent: int) -> asyncio.StreamReader:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode() + b" " * sent)
    await writer.drain()
    reader.writer = writer  # type: ignore[attr-defined]
    return reader


async def test_unmatched_routes_answer_without_reading_the_body(make_client):
    client = await make_client()
    for method, path, status in (("POST", "/nonexistent", 404),
                                 ("DELETE", "/api/v1/resources", 405)):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        # A huge declared body, none of it sent: only an answer that does not wait for the
        # body can arrive.
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
                     .encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(f"HTTP/1.1 {status}".encode()), head
        writer.close()


async def test_public_routes_take_small_bodies_only(make_client):
    client = await token_client(make_client)
    big = {"username": "root", "password": "x" * 20_000}
    resp = await client.post("/api/v1/auth/login", json=big)
    assert resp.status == 413
    assert "16384 bytes" in (await resp.json())["detail"]


async def test_stalled_uploads_cost_bounded_memory(daemon_factory, http):
    daemon = daemon_factory("--body-timeout", "60")
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    pid = daemon.proc.pid
    health = f"{daemon.url}/health"
    assert (await http.get(health)).status == 200
    before = _rss_kib(pid)
    near_mib = 1024 * 1024 - 100
    stalled = []
    for path in ["/nonexistent"] * 70 + ["/api/v1/auth/login"] * 65 + ["/api/v1/resources"] * 65:
        stalled.append(await _stall(host, int(port), path, near_mib, 60_000))
    answered = 0
    for _ in range(20):  # the daemon keeps answering while they are held
        resp = await http.get(health, timeout=aiohttp.ClientTimeout(total=2))
        answered += resp.status == 200
    assert answered == 20
    held = _rss_kib(pid) - before
    assert held <= 32 * 1024, f"RSS grew {held} KiB with 200 stalled uploads"
    # The ones that would have been read beyond the limits were refused at once.
    refused = 0
    for reader in stalled:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.5)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            continue
        refused += head.startswith((b"HTTP/1.1 404", b"HTTP/1.1 413", b"HTTP/1.1 429"))
    assert refused >= 190, refused
    for reader in stalled:
        reader.writer.close()  # type: ignore[attr-defined]

    async def settled() -> bool:
        return _rss_kib(pid) - before <= 16 * 1024

    await wait_for(settled, timeout=20)


# ---- 4. one user taking every stream slot ----------------------------------------------


async def test_one_user_cannot_take_every_stream(make_client):
    client = await token_client(make_client, max_streams=40, max_streams_per_user=16)
    admin = await admin_token(client)
    _, nobody = await make_user(client, admin, "nobody")
    opened = []
    for _ in range(16):
        resp = await client.get("/api/v1/events", headers=bearer(nobody))
        assert resp.status == 200
        opened.append(resp)
    resp = await client.get("/api/v1/events", headers=bearer(nobody))
    assert resp.status == 429
    assert "most one user may hold" in (await resp.json())["detail"]
    # Others still get theirs, down to the admins' reserve, which only admins can take.
    for name in ("second", "third"):
        _, token = await make_user(client, admin, name)
        for _ in range(16):
            resp = await client.get("/api/v1/events", headers=bearer(token))
            if resp.status != 200:
                break
            opened.append(resp)
    assert resp.status == 503
    assert len(opened) == 40 - 2  # 40 // 20 = 2 slots kept for admins
    resp = await client.get("/api/v1/events", headers=bearer(admin))
    assert resp.status == 200
    for stream in [*opened, resp]:
        stream.close()


# ---- 5. UPDATE-only callers ---------------------------------------------------------------


MINIMAL = {"id", "name", "resource_type_name", "resource_type_version", "generation", "status"}


async def test_a_caller_without_read_learns_nothing_of_the_content_from_a_write(make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    await create_widget_type(Authed(client, admin))
    secret = {"size": 1, "outputs": {"token": "s3cret"}}
    created = await create_widget(Authed(client, admin), "w1", secret,
                                  plugin_config={"password": "hunter2"})
    await wait_ready(Authed(client, admin), created["id"])
    role = await make_role(client, admin, "writers", [
        {"resource_type_name": "Widget", "resource_type_version": "v1",
         "operations": ["CREATE", "UPDATE"]}])
    _, writer = await make_user(client, admin, "writer", role_id=role["id"])
    h = bearer(writer)
    rid = created["id"]
    assert (await client.get(f"/api/v1/resources/{rid}", headers=h)).status == 403
    replies = [
        await client.put(f"/api/v1/resources/{rid}?dry_run=true", headers=h,
                         json={"metadata": {}}),
        await client.put(f"/api/v1/resources/{rid}/finalizers", headers=h, json={}),
        await client.put(f"/api/v1/resources/{rid}", headers=h, json={"metadata": {"a": 1}}),
        await client.post("/api/v1/resources?dry_run=true", headers=h, json={
            "name": "w2", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 2}}),
        await client.post("/api/v1/resources", headers=h, json={
            "name": "w3", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 3}, "plugin_config": {"k": "v"}}),
    ]
    assert [r.status for r in replies] == [200, 200, 200, 200, 201]
    for resp in replies:
        body = await resp.json()
        assert set(body) == MINIMAL, (resp.method, str(resp.url), body)
        assert "s3cret" not in json.dumps(body) and "hunter2" not in json.dumps(body)


# ---- 6. validation stalls ---------------------------------------------------------------


HOSTILE = "^(a|aa)+$"


async def test_hostile_patterns_get_their_400_while_the_daemon_keeps_serving(make_client):
    client = await make_client(WidgetReconciler())
    resp = await client.post("/api/v1/resource-types", json={
        "name": "Widget", "version": "v1",
        "schema": {"type": "object", "properties": {"s": {"type": "string",
                                                          "pattern": HOSTILE}}}})
    assert resp.status == 201

    async def hostile(i: int) -> Any:
        return await client.post("/api/v1/resources", json={
            "name": f"h{i}", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"s": "a" * 5000 + "b"}})

    creates = asyncio.gather(*(hostile(i) for i in range(8)))
    served_meanwhile = 0
    while not creates.done():
        assert (await client.get("/health")).status == 200
        served_meanwhile += not creates.done()
    for resp in await creates:
        assert resp.status == 400
        assert "took longer than" in (await resp.json())["detail"]
    # The loop was free: plenty of other requests were answered while the eight ran.
    assert served_meanwhile >= 5, served_meanwhile
    # A fitting spec still goes through the same schema at once.
    good = await client.post("/api/v1/resources", json={
        "name": "fine", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"s": "aaaa"}})
    assert good.status == 201


async def test_an_expensive_schema_is_checked_off_the_loop(make_client):
    # A budget small enough that 240 long patterns overrun it on any machine.
    client = await make_client(schema_budget=0.05)

    def pattern(i: int) -> str:
        # Each takes milliseconds to compile: 240 of them more than the schema budget.
        return "^" + "".join(f"(x{i}{j}|(a{j}[b-z]{{1,{20 + j % 50}}}){{2,30}})?"
                             for j in range(25))[:990] + "$"

    schema = {"type": "object", "properties": {
        f"p{i}": {"type": "string", "pattern": pattern(i)} for i in range(240)}}
    register = asyncio.ensure_future(client.post("/api/v1/resource-types", json={
        "name": "Heavy", "version": "v1", "schema": schema}))
    served_meanwhile = 0
    while not register.done():
        assert (await client.get("/health")).status == 200
        served_meanwhile += not register.done()
    resp = register.result()
    # Checking stops at the schema budget (a 400 naming it), and the daemon served other
    # requests all the while.
    assert resp.status == 400, await resp.text()
    assert "took longer than" in (await resp.json())["detail"]
    assert served_meanwhile >= 5, served_meanwhile


# ---- 7. sessions ----------------------------------------------------------------------


async def test_suspension_and_password_changes_end_logins_but_not_api_tokens(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    user, session = await make_user(client, admin, "sam")
    resp = await client.post(f"/api/v1/users/{user['id']}/tokens", headers=bearer(admin),
                             json={"name": "ci"})
    api_token = (await resp.json())["token"]
    me = "/api/v1/auth/me"
    # A password change ends the logins; the API token keeps working.
    await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                     json={"password": "another-password-1"})
    assert (await client.get(me, headers=bearer(session))).status == 401
    assert (await client.get(me, headers=bearer(api_token))).status == 200
    # An admin ends every session at once (route), the API token again survives.
    session = await login(client, "sam", "another-password-1")
    resp = await client.delete(f"/api/v1/users/{user['id']}/sessions", headers=bearer(admin))
    assert resp.status == 204
    assert (await client.get(me, headers=bearer(session))).status == 401
    assert (await client.get(me, headers=bearer(api_token))).status == 200
    # Suspension revokes logins for good; reactivation does not bring them back.
    session = await login(client, "sam", "another-password-1")
    await client.delete(f"/api/v1/users/{user['id']}", headers=bearer(admin))
    await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                     json={"status": "active"})
    resp = await client.get(me, headers=bearer(session))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has been revoked"
    assert (await client.get(me, headers=bearer(api_token))).status == 200


async def _stream_ends(resp: Any) -> bool:
    try:
        while True:
            await next_event(resp, timeout=10)
    except EOFError:
        return True


@pytest.mark.parametrize("change", ["suspend", "revoke", "role", "end-sessions"])
async def test_open_streams_end_promptly_when_their_caller_changes(make_client, change):
    # The heartbeat (and the old re-check) is 60 s; the stream must end long before.
    client = await token_client(make_client, sse_heartbeat=60.0)
    admin = await admin_token(client)
    role = await make_role(client, admin, "readers", [{"operations": ["READ"]}])
    user, session = await make_user(client, admin, "sue", role_id=role["id"])
    resp = await client.post(f"/api/v1/users/{user['id']}/tokens", headers=bearer(admin),
                             json={"name": "watch"})
    token = await resp.json()
    watched = token["token"] if change == "revoke" else session
    stream = await client.get("/api/v1/events", headers=bearer(watched))
    assert stream.status == 200
    if change == "suspend":
        await client.delete(f"/api/v1/users/{user['id']}", headers=bearer(admin))
    elif change == "revoke":
        await client.delete(f"/api/v1/users/{user['id']}/tokens/{token['id']}",
                            headers=bearer(admin))
    elif change == "role":
        perm = role["permissions"][0]
        await client.put(f"/api/v1/custom-roles/{role['id']}/permissions/{perm['id']}",
                         headers=bearer(admin), json={"operations": ["UPDATE"]})
    else:
        await client.delete(f"/api/v1/users/{user['id']}/sessions", headers=bearer(admin))
    assert await asyncio.wait_for(_stream_ends(stream), 10)


async def test_a_revocation_by_another_process_ends_open_streams(daemon_factory, tmp_path, http):
    db = tmp_path / "shared.db"
    env = {"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1]}
    daemon = daemon_factory("--auth", "token", "--sse-heartbeat", "60", db=db, env=env)
    created = subprocess.run([*no8sd_command(), "--db", str(db), "token", "create", "--user",
                              ADMIN[0], "--name", "watcher"], capture_output=True, text=True,
                             timeout=60, env={k: v for k, v in os.environ.items()
                                              if not k.startswith("NO8SD_")})
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    token_id = created.stderr.split()[2]
    stream = await http.get(f"{daemon.url}/api/v1/events", headers=bearer(secret))
    assert stream.status == 200
    revoked = subprocess.run([*no8sd_command(), "--db", str(db), "token", "revoke", token_id],
                             capture_output=True, text=True, timeout=60)
    assert revoked.returncode == 0, revoked.stderr
    assert await asyncio.wait_for(_stream_ends(stream), 10)


# ---- 8. files and environment ----------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_and_directory_are_private(daemon_factory, tmp_path):
    db = tmp_path / "fresh" / "state" / "no8sd.db"
    daemon = daemon_factory(db=db)
    assert _mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        assert _mode(Path(str(db) + suffix)) == 0o600
    assert _mode(db.parent) == 0o700
    assert daemon.stop() == 0
    os.chmod(db, 0o644)  # as a file copied in by hand would be
    again = daemon_factory(db=db)
    assert _mode(db) == 0o600
    assert again.stop() == 0
    assert "Made the database files private" in again.output and "was 644" in again.output


async def test_bootstrap_secrets_leave_the_environment(daemon_factory, tmp_path, http):
    env = {"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1],
           "NO8SD_LOG_LEVEL": "INFO", "PLAIN_SECRET": "fine"}
    daemon = daemon_factory("--auth", "token", "--plugin",
                            "no8sd_testplugins.widgets:WidgetReconciler", env=env)
    token = (await (await http.post(f"{daemon.url}/api/v1/auth/login", json={
        "username": ADMIN[0], "password": ADMIN[1]})).json())["access_token"]
    h = bearer(token)
    from conftest import WIDGET_SCHEMA
    resp = await http.post(f"{daemon.url}/api/v1/resource-types", headers=h, json={
        "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA})
    assert resp.status == 201
    names = ["INITIAL_ADMIN_PASSWORD", "INITIAL_ADMIN_USERNAME", "NO8SD_LOG_LEVEL",
             "PLAIN_SECRET"]
    resp = await http.post(f"{daemon.url}/api/v1/resources", headers=h, json={
        "name": "probe", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"env": names}})
    rid = (await resp.json())["id"]

    async def outputs() -> Any:
        body = await (await http.get(f"{daemon.url}/api/v1/resources/{rid}", headers=h)).json()
        return body["outputs"] or None

    seen = await wait_for(outputs)
    for name in ("INITIAL_ADMIN_PASSWORD", "INITIAL_ADMIN_USERNAME"):
        assert seen[name]["in_environ"] is False, seen
        assert seen[name]["secret"].startswith("KeyError"), seen
    assert seen["NO8SD_LOG_LEVEL"]["secret"].startswith("KeyError"), seen
    assert seen["PLAIN_SECRET"] == {"in_environ": True, "secret": "fine"}


# ---- 9. small leaks and protocol details ---------------------------------------------------


async def test_an_admission_failure_names_only_the_webhook_to_those_who_cannot_see_it(
        make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    await create_widget_type(Authed(client, admin))
    dead_port = _free_port()
    resp = await client.post("/api/v1/admission-webhooks", headers=bearer(admin), json={
        "name": "gate", "webhook_url": f"http://127.0.0.1:{dead_port}/v",
        "webhook_type": "validating", "operations": ["CREATE"], "timeout_seconds": 1})
    assert resp.status == 201
    role = await make_role(client, admin, "makers", [{"operations": ["CREATE", "READ"]}])
    _, maker = await make_user(client, admin, "maker", role_id=role["id"])
    body = {"name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1}}
    resp = await client.post("/api/v1/resources", headers=bearer(maker), json=body)
    assert resp.status == 403
    detail = (await resp.json())["detail"]
    assert detail == "Admission webhook gate failed"
    assert str(dead_port) not in detail and "127.0.0.1" not in detail
    resp = await client.post("/api/v1/resources", headers=bearer(admin), json=body)
    assert resp.status == 403
    assert str(dead_port) in (await resp.json())["detail"]  # admins may see the webhooks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_name_collision_says_only_that_the_name_is_taken(make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    await create_widget_type(Authed(client, admin))
    await create_widget_type(Authed(client, admin), version="v2")
    hidden = await create_widget(Authed(client, admin), "taken",
                                 {"size": 1, "outputs": {"k": "v"}})
    role = await make_role(client, admin, "v2-makers", [
        {"resource_type_name": "Widget", "resource_type_version": "v2",
         "operations": ["CREATE"]}])
    _, maker = await make_user(client, admin, "v2maker", role_id=role["id"])
    resp = await client.post("/api/v1/resources", headers=bearer(maker), json={
        "name": "taken", "resource_type_name": "Widget", "resource_type_version": "v2",
        "spec": {"size": 1}})
    assert resp.status == 409
    detail = (await resp.json())["detail"]
    assert detail == "Resource 'taken' of type Widget already exists"
    assert "v1" not in detail and str(hidden["id"]) not in detail


async def test_the_bearer_scheme_is_case_insensitive(make_client):
    client = await token_client(make_client)
    token = await admin_token(client)
    for scheme in ("bearer", "BEARER", "Bearer", "bEaReR"):
        resp = await client.get("/api/v1/auth/me", headers={"Authorization": f"{scheme} {token}"})
        assert resp.status == 200, scheme


async def test_head_works_wherever_get_does(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "w1")
    from no8sd.app import all_routes

    gets = [route.path for route in all_routes() if route.method == "GET"]
    assert "/api/v1/events" in gets
    values = {"resource_id": str(widget["id"]), "resource_type_id": "1", "name": "Widget",
              "version": "v1", "resource_type_name": "Widget", "resource_type_version": "v1",
              "user_id": "1", "role_id": "1", "webhook_id": "1"}
    for path in gets:
        url = path
        for key, value in values.items():
            url = url.replace("{" + key + "}", value)
        if path.endswith("{name}") and "by-name" in path:
            url = url.rsplit("/", 1)[0] + "/w1"
        get = await client.get(url)
        head = await asyncio.wait_for(client.head(url), 10)
        assert head.status == get.status, (path, head.status, get.status)
        assert await head.read() == b""
        get.close()


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback_binds(daemon_factory, host):
    assert socket.has_ipv6
    daemon = daemon_factory("--host", host)
    assert "listening on http://[::1]:" in daemon.output
    assert daemon.stop() == 0

