"""Accounts: login, token resolution, and every user, role and API-token change.

The API's handlers and the `no8sd user`/`no8sd token` commands both call this one
service, so the rules (name and password rules, the last-admin guard, hashing, token
digests) live in one place. No aiohttp here. Password work runs in threads, a few at a
time, so logins never stall the event loop and a burst of them cannot exhaust memory
(each scrypt takes 16 MiB). Every token is resolved against the database on every
request, so suspending or demoting a user, changing a role or revoking a token takes
effect on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final, Protocol

from no8sd import background
from no8sd.core import credentials
from no8sd.core.principal import OPERATIONS, SYSTEM_PERMISSIONS, Grant, Principal
from no8sd.core.throttle import SlidingWindow
from no8sd.errors import (
    NotFound,
    StartupError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from no8sd.store import auth as store
from no8sd.store.db import Database
from no8sd.store.rows import DirectorySync, LoginCandidate, Permission, Role, Token, User
from no8sd.timeutil import SYSTEM_CLOCK, Clock

log = logging.getLogger("no8sd.auth")

INVALID_CREDENTIALS: Final = "Invalid credentials"
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 4096  # scrypt takes any length; this only bounds the work per request
NAME_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # resource and user names
NAME_RE: Final = re.compile(NAME_PATTERN)
TOUCH_EVERY: Final = 60.0  # seconds between last_used_at writes for one token
LOGIN_QUEUE: Final = 8  # logins that may wait for a free CPU beyond those being checked


def check_name(name: str, field: str = "name") -> None:
    """Apply the name rules (resources, users), each failure with its own message (422)."""
    if not name:
        raise Unprocessable(f"{field} cannot be empty")
    if len(name) > 63:
        raise Unprocessable(f"{field} cannot exceed 63 characters")
    if not NAME_RE.match(name):
        raise Unprocessable(
            f"{field} must consist of lowercase alphanumeric characters or '-', "
            "must start and end with an alphanumeric character"
        )


def check_password(password: str) -> None:
    """Refuse a password that is too short or absurdly long (422)."""
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Unprocessable(f"the password must be at most {MAX_PASSWORD} characters")


def system_permissions(values: list[str]) -> list[str]:
    """Validate and order a role's system permissions (422 for unknown ones)."""
    unknown = sorted(set(values) - set(SYSTEM_PERMISSIONS))
    if unknown:
        raise Unprocessable(f"Unknown system_permissions: {', '.join(unknown)}. "
                            f"Valid values: {', '.join(SYSTEM_PERMISSIONS)}")
    return sorted(set(values), key=SYSTEM_PERMISSIONS.index)


def operations(values: list[str]) -> list[str]:
    """Order a permission's operations canonically (duplicates dropped)."""
    return sorted(set(values), key=OPERATIONS.index)


def permission(body: Mapping[str, Any]) -> dict[str, Any]:
    """A permission to grant: scope ("*" = any) and operations (default: all)."""
    return {"resource_type_name": body.get("resource_type_name", "*"),
            "resource_type_version": body.get("resource_type_version", "*"),
            "operations": operations(body.get("operations", list(OPERATIONS)))}


class LoginsBusy(Unavailable):
    """Too many logins are waiting for a password check; try again in a moment."""

    def __init__(self) -> None:
        super().__init__("Too many logins are being checked right now; retry in a moment")
        self.headers = {"Retry-After": "1"}


class Throttled(TooManyRequests):
    """Too many failed logins; carries the Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed login attempts; retry in {retry_after} seconds")
        self.headers = {"Retry-After": str(retry_after)}


class DirectoryUsers(Protocol):
    """The directory behind `ldap` users (no8sd.core.directory, present when LDAP_URL is)."""

    async def authenticate(self, user: LoginCandidate, password: str) -> bool:
        """Whether the directory accepts the password (LoginsBusy when saturated)."""

    async def sync(self) -> DirectorySync:
        """Sync users from the directory (BadGateway when it cannot be read)."""


BOOTSTRAP_VARIABLES: Final = ("INITIAL_ADMIN_USERNAME", "INITIAL_ADMIN_PASSWORD")


def initial_admin_from_env(environ: MutableMapping[str, str]) -> tuple[str, str] | None:
    """Take INITIAL_ADMIN_USERNAME and INITIAL_ADMIN_PASSWORD (or a systemd credential
    file `initial_admin_password` in $CREDENTIALS_DIRECTORY); None unless both are set.

    The variables are removed from `environ` as they are read, so nothing the daemon runs
    later (a plugin, a subprocess it starts) can find the first admin's password there.
    """
    username = environ.pop("INITIAL_ADMIN_USERNAME", "").strip()
    password = environ.pop("INITIAL_ADMIN_PASSWORD", "")
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

    def __init__(self, db: Database, *, token_ttl: float = 86400.0, max_failures_user: int = 5,
                 max_failures_address: int = 20, failure_window: float = 300.0,
                 concurrent_hashes: int | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.clock = clock
        # In-memory windows: monotonic time, so a wall-clock step cannot empty or stretch them.
        self.by_user = SlidingWindow(max_failures_user, failure_window, clock=clock.monotonic)
        self.by_address = SlidingWindow(max_failures_address, failure_window,
                                        clock=clock.monotonic)
        # At most one scrypt per CPU at once; a few more logins may wait their turn, and any
        # beyond that are refused at once, so unauthenticated clients cannot queue work.
        self._hash_slots = concurrent_hashes or os.cpu_count() or 2
        self._hashing = asyncio.Semaphore(self._hash_slots)
        self._logins = 0  # logins between their throttle check and their answer
        self._check_cost = 0.0  # seconds, see _verify
        self._pending: set[asyncio.Task[None]] = set()  # strong refs to bookkeeping writes
        self._touching: set[int] = set()  # token ids whose last_used_at write is under way
        self.tokens = store.TokenReader(db)
        self.directory: DirectoryUsers | None = None  # set while LDAP is configured

    # ---- passwords -----------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        """Hash a password in a worker thread."""
        async with self._hashing:
            return await asyncio.to_thread(credentials.hash_password, password)

    async def _verify(self, password: str, encoded: str) -> bool:
        started = time.perf_counter()
        try:
            async with self._hashing:
                return await asyncio.to_thread(credentials.verify_password, password, encoded)
        finally:
            # What a password check costs a caller now (a moving average, queueing included):
            # failed directory logins are made to last as long (see login).
            elapsed = time.perf_counter() - started
            self._check_cost += (0.2 if self._check_cost else 1.0) * (elapsed - self._check_cost)

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
        same amount of hashing work, and count towards the throttles. A directory (`ldap`)
        user's password is checked by the directory instead (no8sd.core.directory); its
        failures, an unreachable directory included, are answered and counted alike.
        """
        user_key = username.lower()
        wait = max(self.by_user.retry_after(user_key), self.by_address.retry_after(address))
        if wait:
            raise Throttled(wait)
        if self._logins >= self._hash_slots + LOGIN_QUEUE:
            raise LoginsBusy()
        # Reserved before any await: the attempt counts against both throttles while it is
        # being checked, so concurrent guesses cannot slip past the limits.
        self.by_user.reserve(user_key)
        self.by_address.reserve(address)
        self._logins += 1
        counted = True
        try:
            found = await store.login_candidate(self.db, username)
            if found is not None and found.source == "ldap" and found.status == "active":
                # The directory checks it, with its own slots and queue, so a slow or dead
                # directory never holds the password-hashing slots manual logins need.
                self._logins -= 1
                counted = False
                started = time.perf_counter()
                ok = await self._check_directory(found, password)
                if not ok and self._check_cost:
                    # A bind fails in milliseconds, a password check takes a scrypt: wait
                    # the difference, so a directory user's name and a made-up one fail
                    # alike (it costs a timer, not a CPU).
                    await asyncio.sleep(self._check_cost - (time.perf_counter() - started))
                elif not ok:  # no figure yet: pay for a real check once
                    await self._verify(password, credentials.dummy_hash())
            else:
                encoded = found.password_hash if found and found.password_hash else None
                ok = await self._verify(password, encoded or credentials.dummy_hash())
                ok = ok and encoded is not None
        except BaseException:
            self.by_user.release(user_key)
            self.by_address.release(address)
            raise
        finally:
            if counted:
                self._logins -= 1
        if not (ok and found and found.status == "active"):
            if counted:  # (the directory logs its own reasons)
                log.info("Login of %r failed: %s", username, "no such user" if found is None
                         else "user suspended" if found.status != "active"
                         else "wrong password")
            raise Unauthorized(INVALID_CREDENTIALS)  # the reservations stay: failures
        self.by_user.clear(user_key)
        self.by_address.release(address)
        token = credentials.new_token()
        stamp = self.clock.now()
        await self.db.write(store.record_login, found.id, credentials.token_digest(token),
                            stamp + self.token_ttl, stamp)
        return {"access_token": token, "token_type": "bearer",
                "expires_in": int(self.token_ttl), "username": found.username,
                "is_admin": found.is_admin}

    async def _check_directory(self, found: LoginCandidate, password: str) -> bool:
        if self.directory is None:
            log.warning("Login of LDAP user %r refused: LDAP is not configured (LDAP_URL)",
                        found.username)
            return False
        return await self.directory.authenticate(found, password)

    async def sync_directory(self) -> dict[str, int]:
        """Sync users from the directory now: {created, updated, total} as upstream, plus
        suspended and skipped (503 when LDAP is not configured, 502 when it fails)."""
        if self.directory is None:
            raise Unavailable("LDAP is not configured")
        result = await self.directory.sync()
        return {"created": result.created, "updated": result.updated, "total": result.total,
                "suspended": result.suspended, "skipped": result.skipped}

    # ---- resolving a bearer token --------------------------------------------------

    async def resolve(self, token: str) -> Principal:
        """Turn a bearer token into the caller, from the database, or raise 401."""
        rows = await self.tokens.resolve(credentials.token_digest(token))
        if not rows:
            raise Unauthorized("Invalid token")
        first = rows[0]
        stamp = self.clock.now()
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
            background.spawn(self._touch(token_id, stamp), name="token-last-used",
                             owner=self._pending)
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
        await self.db.write(store.revoke_token, token_id, self.clock.now())

    # ---- bootstrap -----------------------------------------------------------------

    async def bootstrap(self, initial: tuple[str, str] | None) -> None:
        """Create the first admin from the environment if there are no users yet."""
        if initial is None:
            return
        if await store.has_users(self.db):
            log.warning("INITIAL_ADMIN_USERNAME/INITIAL_ADMIN_PASSWORD ignored: the database "
                        "already has users, and the first admin is only created while it has "
                        "none (to add an admin: no8sd user create --admin NAME)")
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
                               now=self.clock.now()):
            log.info("Created initial admin user %s", username)

    async def has_usable_admin(self) -> bool:
        """Whether some active admin exists (one that could log in or hold API tokens)."""
        return await store.has_active_admin(self.db)

    # ---- users -----------------------------------------------------------------------

    async def create_user(self, username: str, password: str, *, email: str | None = None,
                          display_name: str | None = None, is_admin: bool = False,
                          custom_role_id: int | None = None) -> User:
        """Create a manual user with a password (409 if the name is taken)."""
        check_name(username, "username")
        check_password(password)
        encoded = await self.hash_password(password)
        return await self.db.write(
            store.insert_user, username=username, password_hash=encoded, email=email,
            display_name=display_name, is_admin=is_admin, custom_role_id=custom_role_id,
            now=self.clock.now())

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> User:
        """Change email, display name, admin flag, status, role (None clears it) or password.

        Leaving no active admin is refused; a new password ends the user's logins.
        """
        changes = dict(changes)
        password = changes.pop("password", None)
        if password is not None:
            check_password(password)
            changes["password_hash"] = await self.hash_password(password)
        return await self.db.write(store.update_user, user_id, changes, self.clock.now())

    async def suspend_user(self, user_id: int) -> User:
        """Suspend a user; the record stays, so it can be reactivated."""
        return await self.update_user(user_id, {"status": "suspended"})

    async def end_sessions(self, user_id: int) -> int:
        """Revoke every login token of a user (API tokens stay); return how many."""
        ended: int = await self.db.write(store.end_sessions, user_id, self.clock.now())
        return ended

    async def get_user(self, user_id: int) -> User:
        """Read one user (404 if absent)."""
        return await store.get_user(self.db, user_id)

    async def find_user(self, username: str) -> User:
        """Read one user by name (404 if absent)."""
        found = await store.find_user(self.db, username)
        if found is None:
            raise NotFound(f"no user named {username!r}")
        return found

    async def list_users(self, *, source: str | None = None, is_admin: bool | None = None,
                         status: str | None = None, limit: int = 100,
                         offset: int = 0) -> list[User]:
        """List users in id order."""
        return await store.list_users(self.db, source=source, is_admin=is_admin, status=status,
                                      limit=limit, offset=offset)

    # ---- API tokens ------------------------------------------------------------------

    async def create_api_token(self, user_id: int, name: str,
                               expires_in: float | None = None) -> tuple[Token, str]:
        """Create a named API token for a user; return it with its secret (shown once)."""
        secret = credentials.new_token()
        stamp = self.clock.now()
        token = await self.db.write(
            store.insert_api_token, user_id=user_id, name=name,
            token_hash=credentials.token_digest(secret),
            expires_at=stamp + expires_in if expires_in else None, now=stamp)
        return token, secret

    async def list_api_tokens(self, user_id: int | None = None) -> list[Token]:
        """A user's API tokens (every user's when None), revoked ones included."""
        if user_id is None:
            return await store.list_all_api_tokens(self.db)
        return await store.list_api_tokens(self.db, user_id)

    async def revoke_api_token(self, token_id: int, user_id: int | None = None) -> Token:
        """Revoke an API token (of `user_id`, when given); it stops working at once."""
        return await self.db.write(store.revoke_token, token_id, self.clock.now(),
                                   user_id=user_id, kind="api")

    # ---- roles -----------------------------------------------------------------------

    async def create_role(self, name: str, description: str | None,
                          system: list[str], permissions: list[Mapping[str, Any]]) -> Role:
        """Create a role and all its permissions in one transaction."""
        return await self.db.write(
            store.insert_role, name=name, description=description,
            system_permissions=system_permissions(system),
            permissions=[permission(p) for p in permissions], now=self.clock.now())

    async def update_role(self, role_id: int, changes: dict[str, Any]) -> Role:
        """Change a role's name, description or system permissions."""
        changes = dict(changes)
        if "system_permissions" in changes:
            changes["system_permissions"] = system_permissions(changes["system_permissions"])
        return await self.db.write(store.update_role, role_id, changes, self.clock.now())

    async def delete_role(self, role_id: int) -> None:
        """Delete a role and its permissions (its users are left without a role)."""
        await self.db.write(store.delete_role, role_id)

    async def get_role(self, role_id: int) -> Role:
        """Read one role with its permissions."""
        return await store.get_role(self.db, role_id)

    async def list_roles(self) -> list[Role]:
        """Every role, in id order."""
        return await store.list_roles(self.db)

    async def add_permission(self, role_id: int, body: Mapping[str, Any]) -> Permission:
        """Grant operations on a type/version scope to a role."""
        return await self.db.write(store.add_permission, role_id, permission(body),
                                   self.clock.now())

    async def set_permission_operations(self, role_id: int, perm_id: int,
                                        ops: list[str]) -> Permission:
        """Replace the operations of one of a role's permissions."""
        return await self.db.write(store.set_permission_operations, role_id, perm_id,
                                   operations(ops), self.clock.now())

    async def delete_permission(self, role_id: int, perm_id: int) -> None:
        """Remove one of a role's permissions."""
        await self.db.write(store.delete_permission, role_id, perm_id, self.clock.now())
