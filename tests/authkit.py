"""Helpers for the authentication tests: a token-mode server with a first admin, logins,
users with roles, and Authorization headers."""

from __future__ import annotations

from typing import Any

ADMIN = ("root", "root-password-123")
PASSWORD = "user-password-123"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


async def token_client(make_client: Any, *plugins: Any, **overrides: Any) -> Any:
    """A real server in token mode whose users table starts with the admin ADMIN."""
    overrides.setdefault("initial_admin", ADMIN)
    return await make_client(*plugins, auth="token", **overrides)


async def login(client: Any, username: str, password: str) -> str:
    """Log in and return the access token (asserting success)."""
    resp = await client.post("/api/v1/auth/login",
                             json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["access_token"]


async def admin_token(client: Any) -> str:
    """Log in as the bootstrap admin."""
    return await login(client, *ADMIN)


async def make_role(client: Any, admin: str, name: str, permissions: list[dict[str, Any]],
                    system_permissions: list[str] | None = None) -> dict[str, Any]:
    """Create a custom role as the admin."""
    resp = await client.post("/api/v1/custom-roles", headers=bearer(admin), json={
        "name": name, "permissions": permissions,
        "system_permissions": system_permissions or []})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def make_user(client: Any, admin: str, username: str, *, role_id: int | None = None,
                    is_admin: bool = False) -> tuple[dict[str, Any], str]:
    """Create a user as the admin, log them in, and return (user record, token)."""
    resp = await client.post("/api/v1/users", headers=bearer(admin), json={
        "username": username, "password": PASSWORD, "custom_role_id": role_id,
        "is_admin": is_admin})
    assert resp.status == 201, await resp.text()
    return await resp.json(), await login(client, username, PASSWORD)


class Authed:
    """The test client with a token sent on every call (for helpers that take a client)."""

    def __init__(self, client: Any, token: str) -> None:
        self._client = client
        self._headers = bearer(token)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self._client.post(path, headers=self._headers, **kw)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self._client.get(path, headers=self._headers, **kw)
