"""The permission matrix: every declared route against every kind of caller.

The routes come from no8sd.app.all_routes(), so a route added without an entry here
fails `test_every_route_has_a_matrix_entry`. Each entry says who may call the route and
what a permitted call returns; `prepare` makes a fresh target (as the admin) for each
call, so destructive routes always have something to act on.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from authkit import ADMIN, admin_token, bearer, make_role, make_user, token_client
from conftest import WIDGET_SCHEMA, FakeClock
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.app import all_routes

PUBLIC, ANY, ADMIN_ONLY, LIST = "public", "any", "admin", "list"
ROLES = ("CREATE", "READ", "UPDATE", "DELETE")
UNAUTHENTICATED = {
    "no header": None,
    "basic scheme": "Basic cm9vdDpwYXNz",
    "bearer without token": "Bearer",
    "two spaces": "Bearer  {token}",
    "trailing junk": "Bearer {token} x",
    "unknown token": "Bearer Zm9yZ2VkLXRva2VuLXRoYXQtZG9lcy1ub3QtZXhpc3Q",
    "suspended user": "Bearer {suspended}",
    "expired token": "Bearer {expired}",
    "revoked token": "Bearer {revoked}",
}


@dataclass
class World:
    """Everything the matrix calls need: a client, tokens per caller, and ids."""

    client: Any
    admin: str
    tokens: dict[str, str]
    widget: dict[str, Any]
    type_id: int
    user_id: int
    counter: itertools.count

    def n(self) -> int:
        return next(self.counter)

    async def call(self, method: str, path: str, token: str | None = None, *,
                   body: Any = None, raw_header: str | None = None) -> Any:
        headers = bearer(token) if token else {}
        if raw_header is not None:
            headers = {"Authorization": raw_header}
        return await self.client.request(method, path, headers=headers, json=body)

    async def admin_json(self, method: str, path: str, body: Any = None) -> Any:
        resp = await self.call(method, path, self.admin, body=body)
        assert resp.status < 300, (method, path, resp.status, await resp.text())
        return await resp.json()

    async def new_widget(self) -> dict[str, Any]:
        return await self.admin_json("POST", "/api/v1/resources", {
            "name": f"w-{self.n()}", "resource_type_name": "Widget",
            "resource_type_version": "v1", "spec": {"size": 1},
            "plugin_config": {"token": SECRET}, "metadata": {"note": SECRET}})

    async def new_role(self, permissions: list[Any] | None = None) -> dict[str, Any]:
        return await self.admin_json("POST", "/api/v1/custom-roles", {
            "name": f"scratch-{self.n()}", "permissions": permissions or []})

    async def new_user(self) -> dict[str, Any]:
        return await self.admin_json("POST", "/api/v1/users", {
            "username": f"scratch-{self.n()}", "password": "scratch-password"})

    async def new_webhook(self) -> dict[str, Any]:
        # Scoped to a type nothing uses, so it never blocks the matrix's own writes.
        return await self.admin_json("POST", "/api/v1/admission-webhooks", self.webhook_body())

    def webhook_body(self) -> dict[str, Any]:
        return {"name": f"hook-{self.n()}", "webhook_url": "http://127.0.0.1:9/hook",
                "webhook_type": "validating", "operations": ["CREATE"],
                "resource_type_name": "Unused", "failure_policy": "Ignore"}


Prepared = tuple[str, Any]  # the concrete path and the JSON body (or None)
Prepare = Callable[[World], Awaitable[Prepared]]


@dataclass
class Entry:
    """Who may call a route (`rule`), what they get (`ok`), and how to set up one call."""

    rule: str | tuple[str, str]
    ok: int
    prepare: Prepare
    stream: bool = False


def fixed(path: str, body: Any = None) -> Prepare:
    async def prepare(w: World) -> Prepared:
        return path.format(w=w), body
    return prepare


def fresh(make: Callable[[World], Awaitable[Prepared]]) -> Prepare:
    return make


async def _resource_type(w: World) -> Prepared:
    return "/api/v1/resource-types", {"name": f"T{w.n()}", "version": "v1", "schema": {}}


async def _delete_type(w: World) -> Prepared:
    created = await w.admin_json("POST", "/api/v1/resource-types",
                                 {"name": f"D{w.n()}", "version": "v1", "schema": {}})
    return f"/api/v1/resource-types/{created['id']}", None


async def _create_widget(w: World) -> Prepared:
    return "/api/v1/resources", {"name": f"c-{w.n()}", "resource_type_name": "Widget",
                                 "resource_type_version": "v1", "spec": {"size": 2}}


async def _delete_widget(w: World) -> Prepared:
    return f"/api/v1/resources/{(await w.new_widget())['id']}", None


async def _user_create(w: World) -> Prepared:
    return "/api/v1/users", {"username": f"u-{w.n()}", "password": "matrix-password"}


async def _user_put(w: World) -> Prepared:
    return f"/api/v1/users/{(await w.new_user())['id']}", {"display_name": "changed"}


async def _user_delete(w: World) -> Prepared:
    return f"/api/v1/users/{(await w.new_user())['id']}", None


async def _sessions_delete(w: World) -> Prepared:
    return f"/api/v1/users/{(await w.new_user())['id']}/sessions", None


async def _token_create(w: World) -> Prepared:
    return f"/api/v1/users/{w.user_id}/tokens", {"name": f"t-{w.n()}"}


async def _token_delete(w: World) -> Prepared:
    made = await w.admin_json("POST", f"/api/v1/users/{w.user_id}/tokens",
                              {"name": f"t-{w.n()}"})
    return f"/api/v1/users/{w.user_id}/tokens/{made['id']}", None


async def _role_create(w: World) -> Prepared:
    return "/api/v1/custom-roles", {"name": f"r-{w.n()}"}


async def _role_get(w: World) -> Prepared:
    return f"/api/v1/custom-roles/{(await w.new_role())['id']}", None


async def _role_put(w: World) -> Prepared:
    return f"/api/v1/custom-roles/{(await w.new_role())['id']}", {"description": "d"}


async def _perm_create(w: World) -> Prepared:
    role = await w.new_role()
    return f"/api/v1/custom-roles/{role['id']}/permissions", {"resource_type_name": "X"}


async def _perm_put(w: World) -> Prepared:
    role = await w.new_role([{"resource_type_name": "X"}])
    return (f"/api/v1/custom-roles/{role['id']}/permissions/{role['permissions'][0]['id']}",
            {"operations": ["READ"]})


async def _perm_delete(w: World) -> Prepared:
    path, _ = await _perm_put(w)
    return path, None


async def _hook_create(w: World) -> Prepared:
    return "/api/v1/admission-webhooks", w.webhook_body()


async def _hook_get(w: World) -> Prepared:
    return f"/api/v1/admission-webhooks/{(await w.new_webhook())['id']}", None


async def _hook_put(w: World) -> Prepared:
    return f"/api/v1/admission-webhooks/{(await w.new_webhook())['id']}", {"ordering": 5}


W = "/api/v1/resources/{w.widget[id]}"
MATRIX: dict[tuple[str, str], Entry] = {
    ("GET", "/health"): Entry(PUBLIC, 200, fixed("/health")),
    ("GET", "/api/v1/cluster/health"): Entry(PUBLIC, 200, fixed("/api/v1/cluster/health")),
    ("GET", "/livez"): Entry(PUBLIC, 200, fixed("/livez")),
    ("GET", "/readyz"): Entry(PUBLIC, 200, fixed("/readyz")),
    ("GET", "/api/v1/cluster/nodes"): Entry(ADMIN_ONLY, 200, fixed("/api/v1/cluster/nodes")),
    ("GET", "/metrics"): Entry(("system", "view_metrics"), 200, fixed("/metrics")),
    ("GET", "/api/v1/openapi.json"): Entry(PUBLIC, 200, fixed("/api/v1/openapi.json")),
    ("POST", "/api/v1/auth/login"): Entry(
        PUBLIC, 200, fixed("/api/v1/auth/login", {"username": ADMIN[0], "password": ADMIN[1]})),
    ("GET", "/api/v1/auth/me"): Entry(ANY, 200, fixed("/api/v1/auth/me")),
    ("POST", "/api/v1/auth/logout"): Entry(ANY, 204, fixed("/api/v1/auth/logout")),
    ("GET", "/api/v1/auth/permissions"): Entry(ANY, 200, fixed("/api/v1/auth/permissions")),
    # resource types
    ("POST", "/api/v1/resource-types"): Entry(ADMIN_ONLY, 201, fresh(_resource_type)),
    ("GET", "/api/v1/resource-types"): Entry(ANY, 200, fixed("/api/v1/resource-types")),
    ("GET", "/api/v1/resource-types/{resource_type_id}"): Entry(
        ANY, 200, fixed("/api/v1/resource-types/{w.type_id}")),
    ("GET", "/api/v1/resource-types/{name}/{version}"): Entry(
        ANY, 200, fixed("/api/v1/resource-types/Widget/v1")),
    ("PUT", "/api/v1/resource-types/{resource_type_id}"): Entry(
        ADMIN_ONLY, 200, fixed("/api/v1/resource-types/{w.type_id}", {"description": "d"})),
    ("DELETE", "/api/v1/resource-types/{resource_type_id}"): Entry(
        ADMIN_ONLY, 204, fresh(_delete_type)),
    # resources
    ("POST", "/api/v1/resources"): Entry(("op", "CREATE"), 201, fresh(_create_widget)),
    ("GET", "/api/v1/resources"): Entry(LIST, 200, fixed("/api/v1/resources")),
    ("GET", "/api/v1/resources/{resource_id}"): Entry(("op", "READ"), 200, fixed(W)),
    ("GET", "/api/v1/resources/by-name/{resource_type_name}/{resource_type_version}/{name}"):
        Entry(("op", "READ"), 200, fixed("/api/v1/resources/by-name/Widget/v1/{w.widget[name]}")),
    ("PUT", "/api/v1/resources/{resource_id}"): Entry(
        ("op", "UPDATE"), 200, fixed(W, {"metadata": {"touched": True}})),
    ("PATCH", "/api/v1/resources/{resource_id}"): Entry(
        ("op", "UPDATE"), 200, fixed(W, {"metadata": {"patched": True}})),
    ("PUT", "/api/v1/resources/{resource_id}/outputs"): Entry(
        ("op", "UPDATE"), 200, fixed(W + "/outputs", {"reported": "yes"})),
    ("DELETE", "/api/v1/resources/{resource_id}"): Entry(
        ("op", "DELETE"), 202, fresh(_delete_widget)),
    ("POST", "/api/v1/resources/{resource_id}/reconcile"): Entry(
        ("op", "UPDATE"), 202, fixed(W + "/reconcile")),
    ("PUT", "/api/v1/resources/{resource_id}/finalizers"): Entry(
        ("op", "UPDATE"), 200, fixed(W + "/finalizers", {})),
    ("GET", "/api/v1/resources/{resource_id}/history"): Entry(
        ("op", "READ"), 200, fixed(W + "/history")),
    ("GET", "/api/v1/resources/{resource_id}/outputs"): Entry(
        ("op", "READ"), 200, fixed(W + "/outputs")),
    ("GET", "/api/v1/events"): Entry(ANY, 200, fixed("/api/v1/events"), stream=True),
    ("GET", "/api/v1/resource-counts"): Entry(LIST, 200, fixed("/api/v1/resource-counts")),
    ("GET", "/api/v1/resource-search"): Entry(LIST, 200, fixed("/api/v1/resource-search")),
    ("GET", "/api/v1/resources/{resource_id}/events"): Entry(
        ("op", "READ"), 200, fixed(W + "/events"), stream=True),
    # users and their API tokens
    ("POST", "/api/v1/users"): Entry(ADMIN_ONLY, 201, fresh(_user_create)),
    ("GET", "/api/v1/users"): Entry(ADMIN_ONLY, 200, fixed("/api/v1/users")),
    ("GET", "/api/v1/users/{user_id}"): Entry(ADMIN_ONLY, 200,
                                              fixed("/api/v1/users/{w.user_id}")),
    ("PUT", "/api/v1/users/{user_id}"): Entry(ADMIN_ONLY, 200, fresh(_user_put)),
    ("DELETE", "/api/v1/users/{user_id}"): Entry(ADMIN_ONLY, 204, fresh(_user_delete)),
    ("DELETE", "/api/v1/users/{user_id}/sessions"): Entry(ADMIN_ONLY, 204,
                                                         fresh(_sessions_delete)),
    # No directory in this world: an admin gets past the check to "LDAP is not configured".
    ("POST", "/api/v1/users/ldap-sync"): Entry(ADMIN_ONLY, 503, fixed("/api/v1/users/ldap-sync")),
    ("POST", "/api/v1/users/{user_id}/tokens"): Entry(ADMIN_ONLY, 201, fresh(_token_create)),
    ("GET", "/api/v1/users/{user_id}/tokens"): Entry(
        ADMIN_ONLY, 200, fixed("/api/v1/users/{w.user_id}/tokens")),
    ("DELETE", "/api/v1/users/{user_id}/tokens/{token_id}"): Entry(
        ADMIN_ONLY, 204, fresh(_token_delete)),
    # custom roles
    ("POST", "/api/v1/custom-roles"): Entry(ADMIN_ONLY, 201, fresh(_role_create)),
    ("GET", "/api/v1/custom-roles"): Entry(ADMIN_ONLY, 200, fixed("/api/v1/custom-roles")),
    ("GET", "/api/v1/custom-roles/{role_id}"): Entry(ADMIN_ONLY, 200, fresh(_role_get)),
    ("PUT", "/api/v1/custom-roles/{role_id}"): Entry(ADMIN_ONLY, 200, fresh(_role_put)),
    ("DELETE", "/api/v1/custom-roles/{role_id}"): Entry(ADMIN_ONLY, 204, fresh(_role_get)),
    ("POST", "/api/v1/custom-roles/{role_id}/permissions"): Entry(
        ADMIN_ONLY, 201, fresh(_perm_create)),
    ("PUT", "/api/v1/custom-roles/{role_id}/permissions/{perm_id}"): Entry(
        ADMIN_ONLY, 200, fresh(_perm_put)),
    ("DELETE", "/api/v1/custom-roles/{role_id}/permissions/{perm_id}"): Entry(
        ADMIN_ONLY, 204, fresh(_perm_delete)),
    # admission webhooks
    ("POST", "/api/v1/admission-webhooks"): Entry(ADMIN_ONLY, 201, fresh(_hook_create)),
    ("GET", "/api/v1/admission-webhooks"): Entry(("system", "view_webhooks"), 200,
                                                 fixed("/api/v1/admission-webhooks")),
    ("GET", "/api/v1/admission-webhooks/{webhook_id}"): Entry(
        ("system", "view_webhooks"), 200, fresh(_hook_get)),
    ("PUT", "/api/v1/admission-webhooks/{webhook_id}"): Entry(ADMIN_ONLY, 200, fresh(_hook_put)),
    ("DELETE", "/api/v1/admission-webhooks/{webhook_id}"): Entry(
        ADMIN_ONLY, 204, fresh(_hook_get)),
    # the status page's files
    ("GET", "/"): Entry(PUBLIC, 200, fixed("/")),
    ("GET", "/ui/{name}"): Entry(PUBLIC, 200, fixed("/ui/app.js")),
    ("GET", "/favicon.ico"): Entry(PUBLIC, 200, fixed("/favicon.ico")),
    # plugin discovery
    ("GET", "/api/v1/plugins/reconcilers"): Entry(("system", "view_plugins"), 200,
                                                  fixed("/api/v1/plugins/reconcilers")),
    ("GET", "/api/v1/plugins/actions"): Entry(("system", "view_plugins"), 200,
                                              fixed("/api/v1/plugins/actions")),
    ("GET", "/api/v1/plugins/secret-stores"): Entry(("system", "view_plugins"), 200,
                                                    fixed("/api/v1/plugins/secret-stores")),
    ("GET", "/api/v1/plugins/inputs"): Entry(("system", "view_plugins"), 200,
                                             fixed("/api/v1/plugins/inputs")),
    # server-side apply: any caller may ask; each object is authorized on its own (below)
    ("POST", "/api/v1/apply"): Entry(ANY, 200, fixed("/api/v1/apply", {"manifests": []})),
}

# Callers with a valid token, and what each may do.
CALLERS = ("admin", "CREATE", "READ", "UPDATE", "DELETE", "wildcard", "system", "norole")
READERS = ("admin", "READ", "wildcard")  # who may read Widget resources
# In every widget's plugin_config and metadata: a reply to a caller who may not read
# widgets must never carry it, whatever the route.
SECRET = "matrix-secret-7f3a"
MINIMAL = {"id", "name", "resource_type_name", "resource_type_version", "generation", "status"}


def leaks(data: Any) -> list[str]:
    """What in a reply goes beyond the minimal view of a resource."""
    found = []
    if SECRET in json.dumps(data):
        found.append("the secret")

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("resource_type_name") == "Widget" and "name" in value \
                    and not set(value) <= MINIMAL:
                found.append(f"fields {sorted(set(value) - MINIMAL)}")
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)
    return found


def allowed(caller: str, rule: str | tuple[str, str]) -> bool:
    """The expected decision for one caller under one rule."""
    if rule in (PUBLIC, ANY, LIST) or caller == "admin":
        return True
    if rule == ADMIN_ONLY:
        return False
    kind, what = rule
    if kind == "op":
        return caller in (what, "wildcard")
    return caller == "system"  # ("system", permission): the role holding both


def test_every_route_has_a_matrix_entry():
    declared = {(r.method, r.path) for r in all_routes()}
    missing = declared - set(MATRIX)
    assert not missing, f"routes without a permission-matrix entry: {sorted(missing)}"
    for route in all_routes():
        assert route.public == (MATRIX[(route.method, route.path)].rule == PUBLIC), route.path


async def build_world(make_client: Any, clock: FakeClock) -> World:
    client = await token_client(make_client, WidgetReconciler(), clock=clock)
    admin = await admin_token(client)
    w = World(client, admin, {"admin": admin}, {}, 0, 0, itertools.count(1))
    w.type_id = (await w.admin_json("POST", "/api/v1/resource-types", {
        "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}))["id"]
    w.widget = await w.new_widget()
    for op in ROLES:
        role = await make_role(client, admin, f"only-{op.lower()}", [{
            "resource_type_name": "Widget", "resource_type_version": "v1", "operations": [op]}])
        _, w.tokens[op] = await make_user(client, admin, f"user-{op.lower()}",
                                          role_id=role["id"])
    role = await make_role(client, admin, "everything", [{}])
    _, w.tokens["wildcard"] = await make_user(client, admin, "user-wild", role_id=role["id"])
    role = await make_role(client, admin, "viewer", [],
                           ["view_webhooks", "view_plugins", "view_metrics"])
    _, w.tokens["system"] = await make_user(client, admin, "user-system", role_id=role["id"])
    user, w.tokens["norole"] = await make_user(client, admin, "user-none")
    w.user_id = user["id"]
    # The three tokens that must no longer work.
    suspended, w.tokens["suspended"] = await make_user(client, admin, "user-gone")
    await w.admin_json("PUT", f"/api/v1/users/{suspended['id']}", {"status": "suspended"})
    made = await w.admin_json("POST", f"/api/v1/users/{user['id']}/tokens",
                              {"name": "short", "expires_in": 1})
    w.tokens["expired"] = made["token"]
    made = await w.admin_json("POST", f"/api/v1/users/{user['id']}/tokens", {"name": "revoked"})
    w.tokens["revoked"] = made["token"]
    resp = await w.call("DELETE", f"/api/v1/users/{user['id']}/tokens/{made['id']}", admin)
    assert resp.status == 204
    clock.advance(1)  # the short token runs out
    return w


async def status_of(w: World, entry: Entry, method: str, path: str, body: Any,
                    token: str | None = None, raw_header: str | None = None) -> tuple[int, Any]:
    resp = await w.call(method, path, token, body=body, raw_header=raw_header)
    try:
        if entry.stream and resp.status == 200:
            assert resp.content_type == "text/event-stream"
            return resp.status, None
        if resp.status == 204:
            return 204, (await resp.read()) or None  # a 204 must have an empty body
        if resp.status == 200 and resp.content_type == "text/plain":
            return 200, await resp.text()  # /metrics
        if resp.status == 200 and resp.content_type != "application/json":
            return resp.status, None  # the status page's files
        return resp.status, await resp.json()
    finally:
        resp.close()


async def test_permission_matrix(make_client, clock):
    w = await build_world(make_client, clock)
    # Logout revokes the caller's token, so it goes last.
    routes = sorted(all_routes(), key=lambda r: r.path == "/api/v1/auth/logout")
    failures = []
    for route in routes:
        entry = MATRIX[(route.method, route.path)]
        for caller in CALLERS:
            path, body = await entry.prepare(w)
            status, data = await status_of(w, entry, route.method, path, body, w.tokens[caller])
            if allowed(caller, entry.rule):
                if status != entry.ok:
                    failures.append((route.method, route.path, caller, status, data))
                elif caller not in READERS and leaks(data):
                    failures.append((route.method, route.path, caller, "leaks",
                                     leaks(data), data))
            else:
                detail = "Admin role required" if entry.rule == ADMIN_ONLY else \
                    "Insufficient permissions"
                if status != 403 or data != {"detail": detail}:
                    failures.append((route.method, route.path, caller, status, data))
        path, body = await entry.prepare(w)
        for label, header in UNAUTHENTICATED.items():
            raw = header.format(token=w.tokens["READ"], **w.tokens) if header else None
            resp = await w.call(route.method, path, body=body, raw_header=raw)
            status = resp.status
            challenge = resp.headers.get("WWW-Authenticate")
            data = (await resp.json() if resp.content_type == "application/json"
                    else None)
            resp.close()
            if entry.rule == PUBLIC:
                if status != entry.ok:
                    failures.append((route.method, route.path, label, status, data))
            elif status != 401 or challenge != "Bearer" or not isinstance(data, dict) \
                    or not data.get("detail"):
                failures.append((route.method, route.path, label, status, data))
    assert not failures, "\n".join(map(repr, failures))


async def test_lists_and_403s_reveal_nothing_about_unreadable_resources(make_client, clock):
    w = await build_world(make_client, clock)
    for caller in CALLERS:
        status, data = await status_of(w, MATRIX[("GET", "/api/v1/resources")], "GET",
                                       "/api/v1/resources", None, w.tokens[caller])
        assert status == 200
        ids = [r["id"] for r in data]
        if caller in ("admin", "READ", "wildcard"):
            assert w.widget["id"] in ids, caller
        else:
            assert ids == [], caller
    # A caller without the operation gets the same 403 for an existing and a missing id.
    for method, suffix, caller in (
            ("GET", "", "CREATE"), ("GET", "/history", "UPDATE"), ("GET", "/outputs", "norole"),
            ("PUT", "", "READ"), ("DELETE", "", "READ"), ("POST", "/reconcile", "DELETE"),
            ("PUT", "/finalizers", "READ"), ("GET", "/events", "UPDATE")):
        body = {} if method == "PUT" else None
        answers = []
        for resource_id in (w.widget["id"], 987654):
            resp = await w.call(method, f"/api/v1/resources/{resource_id}{suffix}",
                                w.tokens[caller], body=body)
            answers.append((resp.status, await resp.json()))
        assert answers[0] == answers[1] == (403, {"detail": "Insufficient permissions"}), \
            (method, suffix)
        # Callers allowed everywhere learn the truth: 404 for ids that do not exist.
        for who in ("admin", "wildcard"):
            resp = await w.call(method, f"/api/v1/resources/987654{suffix}", w.tokens[who],
                                body=body)
            assert resp.status == 404, (method, suffix, who)
    # By name, the permission is checked before existence too.
    for name in (w.widget["name"], "no-such-widget"):
        resp = await w.call("GET", f"/api/v1/resources/by-name/Widget/v1/{name}",
                            w.tokens["norole"])
        assert resp.status == 403


async def test_apply_authorizes_each_object(make_client, clock):
    """Each manifest needs the right its action needs: CREATE for a new resource, UPDATE
    for an existing one (changed or not), admin for a type; the others still apply."""
    w = await build_world(make_client, clock)
    expected_rules = (("op", "CREATE"), ("op", "UPDATE"), ("op", "UPDATE"), ADMIN_ONLY)
    # What each allowed manifest does: a new widget, a changed spec, no spec given (nothing
    # to change), a new type.
    expected_results = ("created", "configured", "unchanged", "created")
    for caller in CALLERS:
        manifests = [
            {"name": f"apply-{w.n()}", "resource_type_name": "Widget",
             "resource_type_version": "v1", "spec": {"size": 1}},
            {"name": w.widget["name"], "resource_type_name": "Widget",
             "resource_type_version": "v1", "spec": {"size": 1 + w.n()}},
            {"name": w.widget["name"], "resource_type_name": "Widget",
             "resource_type_version": "v1"},
            {"kind": "ResourceType", "name": f"Applied{w.n()}", "version": "v1", "schema": {}},
        ]
        resp = await w.call("POST", "/api/v1/apply", w.tokens[caller],
                            body={"manifests": manifests})
        assert resp.status == 200, caller
        answers = (await resp.json())["results"]
        for rule, result, answer in zip(expected_rules, expected_results, answers,
                                        strict=True):
            if allowed(caller, rule):
                assert answer["result"] == result, (caller, answer)
            else:
                detail = "Admin role required" if rule == ADMIN_ONLY else \
                    "Insufficient permissions"
                assert (answer["result"], answer["status"], answer["detail"]) == \
                    ("error", 403, detail), (caller, answer)
    # A dry run is authorized the same way.
    resp = await w.call("POST", "/api/v1/apply?dry_run=true", w.tokens["READ"], body={
        "manifests": [{"name": "never", "resource_type_name": "Widget",
                       "resource_type_version": "v1", "spec": {"size": 1}}]})
    assert (await resp.json())["results"][0]["status"] == 403
