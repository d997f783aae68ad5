"""Authentication and accounts over HTTP: login, tokens, users, roles, and their rules."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import datetime

import jsonschema
from authkit import ADMIN, PASSWORD, admin_token, bearer, login, make_role, make_user, token_client
from conftest import create_widget, create_widget_type, wait_for
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.api import auth_schemas as a
from no8sd.api import keys
from no8sd.core import credentials


async def test_login_returns_a_bearer_token_that_expires(make_client):
    client = await token_client(make_client, token_ttl=3600)
    resp = await client.post("/api/v1/auth/login",
                             json={"username": ADMIN[0], "password": ADMIN[1]})
    assert resp.status == 200
    body = await resp.json()
    jsonschema.validate(body, a.LOGIN_RESULT)
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["username"] == "root" and body["is_admin"] is True
    resp = await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert resp.status == 200
    me = await resp.json()
    jsonschema.validate(me, a.USER)
    assert me["username"] == "root" and me["is_admin"] and me["status"] == "active"
    assert me["last_login_at"] is not None and me["custom_role_id"] is None


async def test_requests_without_a_valid_bearer_token_get_401_with_a_challenge(make_client):
    client = await token_client(make_client)
    malformed, unknown = "Missing or invalid Authorization header", "Invalid token"
    for header, detail in ((None, malformed), ("Basic cm9vdDpyb290", malformed),
                           ("Bearer", malformed), ("Bearer  abc", malformed),
                           ("bearer abc", unknown), ("Bearer not-a-token", unknown)):
        headers = {} if header is None else {"Authorization": header}
        resp = await client.get("/api/v1/resources", headers=headers)
        assert resp.status == 401, headers
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert (await resp.json())["detail"] == detail, headers
    # Public routes stay open; unknown paths and methods answer as the router does.
    assert (await client.get("/health")).status == 200
    assert (await client.get("/api/v1/cluster/health")).status == 200
    assert (await client.get("/api/v1/openapi.json")).status == 200
    resp = await client.get("/api/v1/no-such-thing")
    assert resp.status == 404 and (await resp.json()) == {"detail": "Not Found"}
    resp = await client.patch("/api/v1/resources")
    assert resp.status == 405 and (await resp.json()) == {"detail": "Method Not Allowed"}


async def test_auth_off_means_the_local_operator_can_do_everything(make_client):
    client = await make_client()
    resp = await client.get("/api/v1/users")
    assert resp.status == 200 and await resp.json() == []
    resp = await client.post("/api/v1/users", json={"username": "ann", "password": PASSWORD})
    assert resp.status == 201
    resp = await client.get("/api/v1/auth/me")
    assert resp.status == 404


async def test_login_failures_look_the_same(make_client, monkeypatch):
    """Unknown users, wrong passwords, suspended users and empty or huge input all get the
    same answer, and each pays for a full password check (an unknown name is checked
    against a dummy hash), so neither the answer nor its cost tells them apart. (What the
    failures cost in time is measured by tests/bench/bench_responsiveness.py.)"""
    client = await token_client(make_client)
    admin = await admin_token(client)
    user, _ = await make_user(client, admin, "sus")
    assert (await client.delete(f"/api/v1/users/{user['id']}", headers=bearer(admin))).status \
        == 204
    checks: list[str] = []
    real_verify = credentials.verify_password

    def counted(password: str, encoded: str) -> bool:
        checks.append(password)
        return real_verify(password, encoded)

    monkeypatch.setattr(credentials, "verify_password", counted)
    for username, password in (("nobody", "whatever-password"), ("root", "wrong-password"),
                               ("sus", PASSWORD), ("", ""), ("root", "x" * 4096)):
        checks.clear()
        resp = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
        assert resp.status == 401, username
        assert await resp.json() == {"detail": "Invalid credentials"}
        assert checks == [password], username  # one full check, whoever it was


async def test_repeated_failures_are_throttled_per_user_and_per_address(make_client):
    client = await token_client(make_client, login_max_failures_user=3,
                                login_max_failures_address=5)
    for _ in range(3):
        resp = await client.post("/api/v1/auth/login",
                                 json={"username": "root", "password": "guess-guess"})
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"username": ADMIN[0],
                                                          "password": ADMIN[1]})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 300
    assert "Too many failed login attempts" in (await resp.json())["detail"]
    # Other names from the same address: two more failures reach the address limit.
    for name in ("a1", "a2"):
        resp = await client.post("/api/v1/auth/login", json={"username": name, "password": "x"})
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"username": "a3", "password": "x"})
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_throttling_is_a_sliding_window(make_client, clock):
    client = await token_client(make_client, login_max_failures_user=2,
                                login_failure_window=300.0, clock=clock)
    for _ in range(2):
        resp = await client.post("/api/v1/auth/login",
                                 json={"username": "root", "password": "guess-guess"})
        assert resp.status == 401
        clock.advance(10)  # the second failure leaves the window 10 s after the first
    resp = await client.post("/api/v1/auth/login", json={"username": ADMIN[0],
                                                          "password": ADMIN[1]})
    assert resp.status == 429 and resp.headers["Retry-After"] == "280"
    clock.advance(279)
    resp = await client.post("/api/v1/auth/login", json={"username": ADMIN[0],
                                                          "password": ADMIN[1]})
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    clock.advance(1)  # the first failure leaves the window: one failure counted, one free
    await admin_token(client)


async def test_changes_to_a_user_apply_on_their_next_request(make_client):
    client = await token_client(make_client, WidgetReconciler())
    admin = await admin_token(client)
    await create_widget_type(client_with(client, admin))
    widget = await create_widget(client_with(client, admin), "w1")
    role = await make_role(client, admin, "readers", [
        {"resource_type_name": "Widget", "resource_type_version": "v1", "operations": ["READ"]}])
    user, token = await make_user(client, admin, "rita", role_id=role["id"])
    assert user["custom_role_id"] == role["id"]
    path = f"/api/v1/resources/{widget['id']}"
    assert (await client.get(path, headers=bearer(token))).status == 200
    # Taking the permission away: denied on the very next request.
    perm = role["permissions"][0]
    resp = await client.put(f"/api/v1/custom-roles/{role['id']}/permissions/{perm['id']}",
                            headers=bearer(admin), json={"operations": ["UPDATE"]})
    assert resp.status == 200 and (await resp.json())["operations"] == ["UPDATE"]
    resp = await client.get(path, headers=bearer(token))
    assert resp.status == 403 and (await resp.json())["detail"] == "Insufficient permissions"
    # Suspension: the same token is refused at once; it ended the user's logins, so
    # reactivation does not revive it: the user logs in again.
    assert (await client.delete(f"/api/v1/users/{user['id']}", headers=bearer(admin))).status \
        == 204
    resp = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has been revoked"
    resp = await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                            json={"status": "active"})
    assert resp.status == 200
    resp = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has been revoked"
    token = await login(client, "rita", PASSWORD)
    assert (await client.get("/api/v1/auth/me", headers=bearer(token))).status == 200
    # Promotion and demotion take effect immediately too.
    await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                     json={"is_admin": True})
    assert (await client.get("/api/v1/users", headers=bearer(token))).status == 200
    await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                     json={"is_admin": False})
    resp = await client.get("/api/v1/users", headers=bearer(token))
    assert resp.status == 403 and (await resp.json())["detail"] == "Admin role required"
    # Deleting the role leaves the user without one, and without access.
    await client.put(f"/api/v1/custom-roles/{role['id']}/permissions/{perm['id']}",
                     headers=bearer(admin), json={"operations": ["READ"]})
    assert (await client.get(path, headers=bearer(token))).status == 200
    assert (await client.delete(f"/api/v1/custom-roles/{role['id']}",
                                headers=bearer(admin))).status == 204
    assert (await client.get(path, headers=bearer(token))).status == 403
    resp = await client.get(f"/api/v1/users/{user['id']}", headers=bearer(admin))
    assert (await resp.json())["custom_role_id"] is None


def client_with(client, token):
    """A thin wrapper that adds the Authorization header to every call."""

    class Authed:
        async def post(self, path, **kw):
            return await client.post(path, headers=bearer(token), **kw)

        async def get(self, path, **kw):
            return await client.get(path, headers=bearer(token), **kw)

    return Authed()


async def test_the_last_active_admin_cannot_be_suspended_or_demoted(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    me = await (await client.get("/api/v1/auth/me", headers=bearer(admin))).json()
    for call in (client.delete(f"/api/v1/users/{me['id']}", headers=bearer(admin)),
                 client.put(f"/api/v1/users/{me['id']}", headers=bearer(admin),
                            json={"is_admin": False}),
                 client.put(f"/api/v1/users/{me['id']}", headers=bearer(admin),
                            json={"status": "suspended"})):
        resp = await call
        assert resp.status == 409
        assert (await resp.json())["detail"] == "Cannot suspend or demote the last active admin"
    assert (await client.get("/api/v1/auth/me", headers=bearer(admin))).status == 200
    other, other_token = await make_user(client, admin, "second", is_admin=True)
    assert (await client.put(f"/api/v1/users/{me['id']}", headers=bearer(other_token),
                             json={"is_admin": False})).status == 200
    resp = await client.delete(f"/api/v1/users/{other['id']}", headers=bearer(other_token))
    assert resp.status == 409


async def test_users_crud_and_its_rules(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    h = bearer(admin)
    role = await make_role(client, admin, "ops", [])
    resp = await client.post("/api/v1/users", headers=h, json={
        "username": "ann", "password": "p" * 200, "email": "ann@example.com",
        "display_name": "Ann", "custom_role_id": role["id"]})
    assert resp.status == 201
    ann = await resp.json()
    jsonschema.validate(ann, a.USER)
    assert ann["custom_role_id"] == role["id"] and ann["source"] == "manual"
    await login(client, "ann", "p" * 200)  # long passwords are fine
    cases = [
        ({"username": "ann", "password": PASSWORD}, 409, "User 'ann' already exists"),
        ({"username": "Bad_Name", "password": PASSWORD}, 422, "username must consist of"),
        ({"username": "", "password": PASSWORD}, 422, "username cannot be empty"),
        ({"username": "bob", "password": "short"}, 422, "password"),
        ({"username": "bob"}, 422, "password"),
        ({"username": "bob", "password": PASSWORD, "custom_role_id": 999}, 422,
         "custom_role_id: role 999 does not exist"),
        ({"username": "bob", "password": PASSWORD, "is_admin": "yes"}, 422, "is_admin"),
    ]
    for body, status, fragment in cases:
        resp = await client.post("/api/v1/users", headers=h, json=body)
        assert resp.status == status, body
        assert fragment in (await resp.json())["detail"], body
    resp = await client.post("/api/v1/users", headers={**h, "Content-Type": "application/json"},
                             data=b"{nope")
    assert resp.status == 400
    # PUT: null leaves a field alone, except custom_role_id where null clears the role.
    resp = await client.put(f"/api/v1/users/{ann['id']}", headers=h,
                            json={"email": None, "display_name": "Ann B"})
    body = await resp.json()
    assert body["email"] == "ann@example.com" and body["display_name"] == "Ann B"
    assert body["custom_role_id"] == role["id"]
    resp = await client.put(f"/api/v1/users/{ann['id']}", headers=h, json={"custom_role_id": None})
    assert (await resp.json())["custom_role_id"] is None
    resp = await client.put(f"/api/v1/users/{ann['id']}", headers=h, json={"custom_role_id": 77})
    assert resp.status == 422
    resp = await client.put(f"/api/v1/users/{ann['id']}", headers=h, json={"status": "gone"})
    assert resp.status == 422
    for path, status, detail in ((f"/api/v1/users/{ann['id'] + 100}", 404, "User not found"),
                                 ("/api/v1/users/abc", 422, "user_id must be an integer"),
                                 ("/api/v1/users/0", 404, "User not found")):
        resp = await client.get(path, headers=h)
        assert resp.status == status and (await resp.json())["detail"] == detail
    resp = await client.put(f"/api/v1/users/{ann['id'] + 100}", headers=h, json={})
    assert resp.status == 404
    # Listing and filters.
    await client.delete(f"/api/v1/users/{ann['id']}", headers=h)
    names = [u["username"] for u in await (await client.get("/api/v1/users", headers=h)).json()]
    assert names == ["root", "ann"]
    resp = await client.get("/api/v1/users?status=suspended", headers=h)
    assert [u["username"] for u in await resp.json()] == ["ann"]
    resp = await client.get("/api/v1/users?is_admin=true", headers=h)
    assert [u["username"] for u in await resp.json()] == ["root"]
    resp = await client.get("/api/v1/users?limit=1&offset=1", headers=h)
    assert [u["username"] for u in await resp.json()] == ["ann"]
    for query in ("status=zombie", "source=x", "limit=-1", "is_admin=maybe"):
        assert (await client.get(f"/api/v1/users?{query}", headers=h)).status == 422
    # A suspended user cannot log in.
    resp = await client.post("/api/v1/auth/login",
                             json={"username": "ann", "password": "p" * 200})
    assert resp.status == 401


async def test_password_change_ends_existing_logins(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    user, token = await make_user(client, admin, "pat")
    resp = await client.put(f"/api/v1/users/{user['id']}", headers=bearer(admin),
                            json={"password": "a-new-password-1"})
    assert resp.status == 200
    resp = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has been revoked"
    await login(client, "pat", "a-new-password-1")


async def test_roles_are_transactional_and_scoped(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    h = bearer(admin)
    resp = await client.post("/api/v1/custom-roles", headers=h, json={
        "name": "dup", "permissions": [{"resource_type_name": "A"},
                                       {"resource_type_name": "A"}]})
    assert resp.status == 409
    assert (await resp.json())["detail"] == \
        "Permission for this resource type/version already exists"
    assert await (await client.get("/api/v1/custom-roles", headers=h)).json() == []
    resp = await client.post("/api/v1/custom-roles", headers=h, json={
        "name": "x", "system_permissions": ["view_plugins", "root_shell"]})
    assert resp.status == 422
    assert (await resp.json())["detail"].startswith("Unknown system_permissions: root_shell.")
    first = await make_role(client, admin, "first", [{}], ["view_webhooks"])
    jsonschema.validate(first, a.ROLE)
    assert first["permissions"][0]["resource_type_name"] == "*"
    assert first["permissions"][0]["operations"] == ["CREATE", "READ", "UPDATE", "DELETE"]
    assert first["system_permissions"] == ["view_webhooks"]
    second = await make_role(client, admin, "second", [])
    resp = await client.post("/api/v1/custom-roles", headers=h, json={"name": "first"})
    assert resp.status == 409 and (await resp.json())["detail"] == "Role 'first' already exists"
    resp = await client.put(f"/api/v1/custom-roles/{second['id']}", headers=h,
                            json={"name": "first"})
    assert resp.status == 409
    resp = await client.put(f"/api/v1/custom-roles/{second['id']}", headers=h,
                            json={"description": "d", "system_permissions": ["view_plugins"]})
    body = await resp.json()
    assert body["name"] == "second" and body["description"] == "d"
    assert body["system_permissions"] == ["view_plugins"]
    perm = first["permissions"][0]
    # A permission is only reachable through its own role.
    wrong = f"/api/v1/custom-roles/{second['id']}/permissions/{perm['id']}"
    resp = await client.put(wrong, headers=h, json={"operations": ["READ"]})
    assert resp.status == 404 and (await resp.json())["detail"] == "Permission not found"
    assert (await client.delete(wrong, headers=h)).status == 404
    resp = await client.post(f"/api/v1/custom-roles/{first['id']}/permissions", headers=h,
                             json={})
    assert resp.status == 409
    resp = await client.post(f"/api/v1/custom-roles/{first['id']}/permissions", headers=h,
                             json={"resource_type_name": "Widget", "operations": ["BOGUS"]})
    assert resp.status == 422
    resp = await client.post(f"/api/v1/custom-roles/{first['id']}/permissions", headers=h,
                             json={"resource_type_name": "Widget", "operations": []})
    assert resp.status == 201
    added = await resp.json()
    jsonschema.validate(added, a.PERMISSION)
    right = f"/api/v1/custom-roles/{first['id']}/permissions/{perm['id']}"
    assert (await client.delete(right, headers=h)).status == 204
    role = await (await client.get(f"/api/v1/custom-roles/{first['id']}", headers=h)).json()
    assert [p["id"] for p in role["permissions"]] == [added["id"]]
    for path in ("/api/v1/custom-roles/999", "/api/v1/custom-roles/999/permissions"):
        resp = await client.post(path, headers=h, json={}) if path.endswith("s") else \
            await client.get(path, headers=h)
        assert resp.status == 404 and (await resp.json())["detail"] == "Role not found"


async def test_api_tokens_are_shown_once_listed_without_secret_and_revocable(make_client,
                                                                            clock):
    client = await token_client(make_client, clock=clock)
    admin = await admin_token(client)
    h = bearer(admin)
    user, _ = await make_user(client, admin, "bot")
    path = f"/api/v1/users/{user['id']}/tokens"
    resp = await client.post(path, headers=h, json={"name": "ci"})
    assert resp.status == 201
    created = await resp.json()
    jsonschema.validate(created, a.TOKEN_CREATED)
    assert created["expires_at"] is None and created["revoked"] is False
    secret = created["token"]
    resp = await client.get("/api/v1/auth/me", headers=bearer(secret))
    assert resp.status == 200 and (await resp.json())["username"] == "bot"
    resp = await client.post(path, headers=h, json={"name": "ci"})
    assert resp.status == 409
    listed = await (await client.get(path, headers=h)).json()
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    jsonschema.validate(listed[0], a.TOKEN)
    resp = await client.delete(f"{path}/{created['id']}", headers=h)
    assert resp.status == 204
    resp = await client.get("/api/v1/auth/me", headers=bearer(secret))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has been revoked"
    assert (await (await client.get(path, headers=h)).json())[0]["revoked"] is True
    # Another user's token id is not reachable through this user.
    other = await (await client.get("/api/v1/auth/me", headers=h)).json()
    resp = await client.delete(f"/api/v1/users/{other['id']}/tokens/{created['id']}", headers=h)
    assert resp.status == 404 and (await resp.json())["detail"] == "Token not found"
    resp = await client.post("/api/v1/users/999/tokens", headers=h, json={"name": "x"})
    assert resp.status == 404 and (await resp.json())["detail"] == "User not found"
    for body in ({}, {"name": ""}, {"name": "x", "expires_in": 0}, {"name": "x",
                                                                     "expires_in": "1h"}):
        assert (await client.post(path, headers=h, json=body)).status == 422
    # A token with a lifetime works to its last second and stops when it runs out.
    resp = await client.post(path, headers=h, json={"name": "short", "expires_in": 3600})
    short = (await resp.json())["token"]
    assert (await client.get("/api/v1/auth/me", headers=bearer(short))).status == 200
    clock.advance(3599)
    assert (await client.get("/api/v1/auth/me", headers=bearer(short))).status == 200
    clock.advance(1)
    resp = await client.get("/api/v1/auth/me", headers=bearer(short))
    assert resp.status == 401 and (await resp.json())["detail"] == "Token has expired"


async def test_logout_revokes_the_token_used(make_client):
    client = await token_client(make_client)
    token = await admin_token(client)
    assert (await client.post("/api/v1/auth/logout", headers=bearer(token))).status == 204
    assert (await client.get("/api/v1/auth/me", headers=bearer(token))).status == 401
    assert (await client.get("/api/v1/auth/me",
                             headers=bearer(await admin_token(client)))).status == 200


async def test_initial_admin_is_created_only_on_an_empty_users_table(make_client, tmp_path):
    from conftest import make_settings

    first = await make_client(settings=make_settings(tmp_path, auth="token",
                                                     initial_admin=ADMIN))
    await admin_token(first)
    await first.close()
    second = await make_client(settings=make_settings(tmp_path, auth="token",
                                                      initial_admin=("other", "other-pass-1")))
    resp = await second.post("/api/v1/auth/login",
                              json={"username": "other", "password": "other-pass-1"})
    assert resp.status == 401
    await admin_token(second)


async def test_token_use_is_recorded_at_most_once_a_minute(make_client, clock):
    client = await token_client(make_client, clock=clock)
    admin = await admin_token(client)
    user, _ = await make_user(client, admin, "bot")
    path = f"/api/v1/users/{user['id']}/tokens"
    secret = (await (await client.post(path, headers=bearer(admin),
                                       json={"name": "n"})).json())["token"]
    await client.get("/api/v1/auth/me", headers=bearer(secret))

    async def used():
        listed = await (await client.get(path, headers=bearer(admin))).json()
        return listed[0]["last_used_at"]

    first = _ts(await wait_for(used))
    assert first == clock.now()
    clock.advance(30)
    await client.get("/api/v1/auth/me", headers=bearer(secret))  # within the minute: not noted
    clock.advance(30)
    await client.get("/api/v1/auth/me", headers=bearer(secret))  # a minute on: noted
    # Had the use at +30 s been written, the one at +60 s would be within its minute and
    # the last use would stay at +30 s.
    assert await wait_for(lambda: _at(used, first + 60)) == first + 60


async def _at(read, expected):
    value = _ts(await read())
    return value if value == expected else None


def _ts(text):
    return datetime.fromisoformat(text).timestamp()


async def test_open_event_streams_end_when_the_callers_rights_change(make_client,
                                                                       monkeypatch):
    from sse import next_event

    client = await token_client(make_client, WidgetReconciler(), sse_heartbeat=0.2)
    admin = await admin_token(client)
    checks = _count_token_checks(client, monkeypatch)
    await create_widget_type(client_with(client, admin))
    widget = await create_widget(client_with(client, admin), "w1")
    role = await make_role(client, admin, "readers", [
        {"resource_type_name": "Widget", "resource_type_version": "v1", "operations": ["READ"]}])
    user, token = await make_user(client, admin, "rita", role_id=role["id"])
    one = await client.get(f"/api/v1/resources/{widget['id']}/events?last_event_id=0",
                           headers=bearer(token))
    assert one.status == 200
    assert (await next_event(one)).data["resource_id"] == widget["id"]
    # Unchanged rights: the stream stays open across several re-checks.
    await _rechecked(checks, token, times=3)
    assert not one.content.at_eof()
    # Taking READ away ends the per-resource stream; reconnecting is then refused.
    perm = role["permissions"][0]
    await client.put(f"/api/v1/custom-roles/{role['id']}/permissions/{perm['id']}",
                     headers=bearer(admin), json={"operations": ["UPDATE"]})
    await asyncio.wait_for(one.read(), 5)
    one.close()
    again = await client.get(f"/api/v1/resources/{widget['id']}/events", headers=bearer(token))
    assert again.status == 403
    # Suspension ends the user's streams; reconnecting gets 401.
    every = await client.get("/api/v1/events", headers=bearer(token))
    assert every.status == 200
    await _rechecked(checks, token, times=2)
    assert not every.content.at_eof()
    await client.delete(f"/api/v1/users/{user['id']}", headers=bearer(admin))
    await asyncio.wait_for(every.read(), 5)
    every.close()
    assert (await client.get("/api/v1/events", headers=bearer(token))).status == 401


def _count_token_checks(client, monkeypatch):
    """Count the daemon's token checks per token (an open stream re-checks its caller's)."""
    accounts = client.server.app[keys.CORE].accounts
    real_resolve = accounts.resolve
    checks: Counter[str] = Counter()

    async def counted(token):
        checks[token] += 1
        return await real_resolve(token)

    monkeypatch.setattr(accounts, "resolve", counted)
    return checks


async def _rechecked(checks, token, *, times):
    """Wait until the streams have re-checked `token` `times` more times."""
    target = checks[token] + times

    async def done():
        return checks[token] >= target

    await wait_for(done)


async def test_password_hashing_never_stalls_other_requests(make_client, monkeypatch):
    """While a password is being hashed, other requests are answered: the hash runs off the
    event loop. (How long requests wait meanwhile: tests/bench/bench_responsiveness.py.)"""
    client = await token_client(make_client)
    await admin_token(client)  # warm-up
    hashing, release = threading.Event(), threading.Event()
    real_verify = credentials.verify_password

    def held(password: str, encoded: str) -> bool:
        hashing.set()
        release.wait(30)  # on the event loop, this would stall every request meanwhile
        return real_verify(password, encoded)

    monkeypatch.setattr(credentials, "verify_password", held)
    login = asyncio.ensure_future(client.post("/api/v1/auth/login", json={
        "username": ADMIN[0], "password": ADMIN[1]}))
    try:
        await wait_for(hashing.is_set)
        for _ in range(3):
            assert (await client.get("/health")).status == 200
            assert (await client.get("/api/v1/auth/me")).status == 401
        assert not login.done()  # all answered while the hash was still held
    finally:
        release.set()
    assert (await login).status == 200


async def test_a_database_from_before_authentication_is_upgraded(make_client, tmp_path):
    import sqlite3

    from no8sd.store.db import migration_files

    number, _, sql = migration_files()[0]
    assert number == 1
    with sqlite3.connect(tmp_path / "test.db") as conn:
        conn.executescript(f"{sql}\nPRAGMA user_version = 1;")
        conn.execute("INSERT INTO resource_types (name, version, schema, created_at, updated_at)"
                     " VALUES ('Old', 'v1', '{}', 0, 0)")
    client = await token_client(make_client)
    admin = await admin_token(client)
    resp = await client.get("/api/v1/resource-types/Old/v1", headers=bearer(admin))
    assert resp.status == 200
