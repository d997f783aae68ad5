"""Accounts: login, token resolution, users, roles and API tokens behind the HTTP API.

No aiohttp here. Password work runs in threads, a few at a time, so logins never stall
the event loop and a burst of them cannot exhaust memory (each scrypt takes 16 MiB).
Every token is resolved against the database on every request, so suspending or
demoting a user, changing a role or revoking a token takes effect on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from no8sd import credentials
from no8sd.errors import StartupError, TooManyRequests, Unauthorized
from no8sd.principal import Grant, Principal
from no8sd.store import auth as store
from no8sd.store.db import Database
from no8sd.throttle import SlidingWindow
from no8sd.timeutil import iso, now

log = logging.getLogger("no8sd.auth")

INVALID_CREDENTIALS = "Invalid credentials"
MIN_PASSWORD = 8
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # the resource-name rule
TOUCH_EVERY = 60.0  # seconds between last_used_at writes for one token


class Throttled(TooManyRequests):
    """Too many failed logins; carries the Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed login attempts; retry in {retry_after} seconds")
        self.headers = {"Retry-After": str(retry_after)}


def user_rest(user: Mapping[str, Any]) -> dict[str, Any]:
    """The User record (upstream keys plus custom_role_id); never the password hash."""
    return {
        "id": user["id"],
        "username": user["username"],
        "email": user["email"],
        "display_name": user["display_name"],
        "source": user["source"],
        "is_admin": bool(user["is_admin"]),
        "status": user["status"],
        "custom_role_id": user["custom_role_id"],
        "created_at": iso(user["created_at"]),
        "updated_at": iso(user["updated_at"]),
        "last_login_at": iso(user["last_login_at"]),
        "last_synced_at": iso(user["last_synced_at"]),
    }


def permission_rest(perm: Mapping[str, Any]) -> dict[str, Any]:
    """The Permission record."""
    return {
        "id": perm["id"],
        "role_id": perm["role_id"],
        "resource_type_name": perm["resource_type_name"],
        "resource_type_version": perm["resource_type_version"],
        "operations": list(perm["operations"]),
        "created_at": iso(perm["created_at"]),
    }


def role_rest(role: Mapping[str, Any]) -> dict[str, Any]:
    """The Role record, with its permissions."""
    return {
        "id": role["id"],
        "name": role["name"],
        "description": role["description"],
        "system_permissions": list(role["system_permissions"]),
        "permissions": [permission_rest(p) for p in role["permissions"]],
        "created_at": iso(role["created_at"]),
        "updated_at": iso(role["updated_at"]),
    }


def token_rest(token: Mapping[str, Any]) -> dict[str, Any]:
    """An API token's record, without its secret."""
    return {
        "id": token["id"],
        "user_id": token["user_id"],
        "name": token["name"],
        "created_at": iso(token["created_at"]),
        "expires_at": iso(token["expires_at"]),
        "last_used_at": iso(token["last_used_at"]),
        "revoked": bool(token["revoked"]),
    }


def initial_admin_from_env(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Read INITIAL_ADMIN_USERNAME and INITIAL_ADMIN_PASSWORD (or a systemd credential
    file `initial_admin_password` in $CREDENTIALS_DIRECTORY); None unless both are set."""
    username = environ.get("INITIAL_ADMIN_USERNAME", "").strip()
    password = environ.get("INITIAL_ADMIN_PASSWORD", "")
    creds = environ.get("CREDENTIALS_DIRECTORY")
    if not password and creds:
        with contextlib.suppress(OSError):
            password = (Path(creds) / "initial_admin_password").read_text(
                encoding="utf-8").rstrip("\r\n")
    if username and password:
        return username, password
    return None


class Accounts:
    """Authentication and the user/role/token operations of one daemon."""

    def __init__(self, db: Database, *, token_ttl: float, max_failures_user: int = 5,
                 max_failures_address: int = 20, failure_window: float = 300.0,
                 concurrent_hashes: int | None = None) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.by_user = SlidingWindow(max_failures_user, failure_window)
        self.by_address = SlidingWindow(max_failures_address, failure_window)
        self._hashing = asyncio.Semaphore(concurrent_hashes or os.cpu_count() or 2)
        self._pending: set[asyncio.Task[None]] = set()  # strong refs to bookkeeping writes
        self._touching: set[int] = set()  # token ids whose last_used_at write is under way
        self.tokens = store.TokenReader(db)

    # ---- passwords -----------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        """Hash a password in a worker thread."""
        async with self._hashing:
            return await asyncio.to_thread(credentials.hash_password, password)

    async def _verify(self, password: str, encoded: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(credentials.verify_password, password, encoded)

    async def prepare(self) -> None:
        """Open the token reader and compute the dummy hash up front (so the first failed
        login is not faster than the others)."""
        self.tokens.open()
        await asyncio.to_thread(credentials.dummy_hash)

    async def close(self) -> None:
        """Finish pending bookkeeping writes and release the token reader."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self.tokens.close()

    # ---- login ---------------------------------------------------------------------

    async def login(self, username: str, password: str, address: str) -> dict[str, Any]:
        """Check a username and password; return a new bearer token and who it is for.

        Unknown users, suspended users and wrong passwords all fail the same way, after the
        same amount of hashing work, and count towards the throttles.
        """
        user_key = username.lower()
        wait = max(self.by_user.retry_after(user_key), self.by_address.retry_after(address))
        if wait:
            raise Throttled(wait)
        found = await store.login_candidate(self.db, username)
        encoded = found["password_hash"] if found and found["password_hash"] else None
        ok = await self._verify(password, encoded or credentials.dummy_hash())
        if not (ok and encoded and found and found["status"] == "active"
                and found["source"] == "manual"):
            self.by_user.add(user_key)
            self.by_address.add(address)
            raise Unauthorized(INVALID_CREDENTIALS)
        self.by_user.clear(user_key)
        token = credentials.new_token()
        stamp = now()
        await self.db.write(store.record_login, found["id"], credentials.token_digest(token),
                            stamp + self.token_ttl, stamp)
        return {"access_token": token, "token_type": "bearer",
                "expires_in": int(self.token_ttl), "username": found["username"],
                "is_admin": found["is_admin"]}

    # ---- resolving a bearer token --------------------------------------------------

    async def resolve(self, token: str) -> Principal:
        """Turn a bearer token into the caller, from the database, or raise 401."""
        rows = await self.tokens.resolve(credentials.token_digest(token))
        if not rows:
            raise Unauthorized("Invalid token")
        first = rows[0]
        stamp = now()
        if first["revoked"]:
            raise Unauthorized("Token has been revoked")
        if first["expires_at"] is not None and first["expires_at"] <= stamp:
            raise Unauthorized("Token has expired")
        if first["status"] != "active":
            raise Unauthorized("User account is suspended")
        grants = tuple(
            Grant(row["resource_type_name"], row["resource_type_version"],
                  frozenset(json.loads(row["operations"])))
            for row in rows if row["operations"] is not None)
        system = frozenset(json.loads(first["system_permissions"])) \
            if first["system_permissions"] else frozenset()
        token_id = first["token_id"]
        if (first["last_used_at"] is None or stamp - first["last_used_at"] >= TOUCH_EVERY) \
                and token_id not in self._touching:
            # Coarse on purpose: one write per token per minute, never one per request.
            self._touching.add(token_id)
            task = asyncio.get_running_loop().create_task(self._touch(token_id, stamp))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return Principal(user_id=first["user_id"], username=first["username"],
                         is_admin=bool(first["is_admin"]), grants=grants,
                         system_permissions=system, token_id=first["token_id"])

    async def _touch(self, token_id: int, stamp: float) -> None:
        try:
            await self.db.write(store.touch_token, token_id, stamp)
        except Exception as exc:  # bookkeeping only; the request already succeeded
            log.debug("could not record token use: %s", exc)
        finally:
            self._touching.discard(token_id)

    async def logout(self, token_id: int) -> None:
        """Revoke the token the caller used."""
        await self.db.write(store.revoke_token, token_id, now())

    # ---- bootstrap -----------------------------------------------------------------

    async def bootstrap(self, initial: tuple[str, str] | None) -> None:
        """Create the first admin from the environment if there are no users yet."""
        if initial is None or await store.has_users(self.db):
            return
        username, password = initial
        # Refuse a weak or unusable first admin loudly rather than create it.
        if not NAME_RE.match(username):
            raise StartupError(
                "INITIAL_ADMIN_USERNAME must be 1-63 lowercase letters, digits or '-', "
                "starting and ending with a letter or digit")
        if len(password) < MIN_PASSWORD:
            raise StartupError(
                f"INITIAL_ADMIN_PASSWORD must be at least {MIN_PASSWORD} characters")
        encoded = await self.hash_password(password)
        if await self.db.write(store.bootstrap_admin, username=username, password_hash=encoded,
                               now=now()):
            log.info("Created initial admin user %s", username)
