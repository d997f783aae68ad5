"""SQL for users, custom roles, role permissions and bearer tokens.

Write units (`fn(tx, ...)`) run on the daemon's single writer, or inside a short
transaction opened by the command line on the same file. Reads return typed records
(no8sd.store.rows) with times as Unix seconds; shaping for the API happens in core.views.
Password hashes and token digests never leave this module except where a caller asks
for them explicitly (login verification, token resolution).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from no8sd.errors import Conflict, NotFound, Unprocessable
from no8sd.store.db import Database, Tx, last_id
from no8sd.store.rows import (
    DirectorySync,
    DirectoryUser,
    LoginCandidate,
    Permission,
    Role,
    Token,
    User,
    dumps,
)

USER_COLUMNS = User.COLUMNS
TOKEN_COLUMNS = Token.COLUMNS
ROLE_COLUMNS = Role.COLUMNS
PERMISSION_COLUMNS = Permission.COLUMNS
LAST_ADMIN = "Cannot suspend or demote the last active admin"
# Marked changed by every write that can change what a signed-in caller may do, so open
# event streams re-check their caller at once (see core.Core.accounts_changed).
ACCOUNTS = "accounts"


def _user(row: sqlite3.Row) -> User:
    return User.from_row(row)


def _token(row: sqlite3.Row) -> Token:
    return Token.from_row(row)


def _permission(row: sqlite3.Row) -> Permission:
    return Permission.from_row(row)


def _role(row: sqlite3.Row, permissions: list[Permission]) -> Role:
    return Role.from_row(row, tuple(permissions))


# ---- users: write units ------------------------------------------------------------


def _check_role(tx: Tx, role_id: int | None) -> None:
    if role_id is not None and tx.one("SELECT 1 FROM custom_roles WHERE id = ?",
                                      (role_id,)) is None:
        raise Unprocessable(f"custom_role_id: role {role_id} does not exist")


def get_user_tx(tx: Tx, user_id: int) -> User:
    """Read one user inside a unit (404 if absent)."""
    row = tx.one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    if row is None:
        raise NotFound("User not found")
    return _user(row)


def insert_user(tx: Tx, *, username: str, password_hash: str | None, email: str | None,
                display_name: str | None, is_admin: bool, custom_role_id: int | None,
                now: float) -> User:
    """Create a manual user; a taken username is a Conflict."""
    _check_role(tx, custom_role_id)
    try:
        cur = tx.execute(
            "INSERT INTO users (username, email, display_name, source, password_hash, is_admin,"
            " status, custom_role_id, created_at, updated_at)"
            " VALUES (?, ?, ?, 'manual', ?, ?, 'active', ?, ?, ?)",
            (username, email, display_name, password_hash, int(is_admin), custom_role_id,
             now, now),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"User '{username}' already exists") from None
    return get_user_tx(tx, last_id(cur))


def bootstrap_admin(tx: Tx, *, username: str, password_hash: str, now: float) -> bool:
    """Create an admin only if there are no users at all; return whether one was made."""
    if tx.one("SELECT 1 FROM users LIMIT 1") is not None:
        return False
    insert_user(tx, username=username, password_hash=password_hash, email=None,
                display_name=None, is_admin=True, custom_role_id=None, now=now)
    return True


def _active_admins(tx: Tx) -> int:
    row = tx.one("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND status = 'active'")
    return int(row[0]) if row is not None else 0


def update_user(tx: Tx, user_id: int, changes: dict[str, Any], now: float) -> User:
    """Apply changes (email, display_name, is_admin, status, custom_role_id, password_hash).

    A present `custom_role_id` of None clears the role. Leaving no active admin is refused,
    so nobody can lock every administrator out. A new password ends the user's logins.
    """
    current = get_user_tx(tx, user_id)
    if "password_hash" in changes and current.source == "ldap":
        raise Unprocessable("a directory user's password is kept in the directory")
    if "custom_role_id" in changes:
        _check_role(tx, changes["custom_role_id"])
    columns = [c for c in ("email", "display_name", "is_admin", "status", "custom_role_id",
                           "password_hash") if c in changes]
    if columns:
        assignments = ", ".join(f"{c} = ?" for c in columns)
        values = [int(changes[c]) if c == "is_admin" else changes[c] for c in columns]
        tx.execute(f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
                   (*values, now, user_id))
    else:
        tx.execute("UPDATE users SET updated_at = ? WHERE id = ?", (now, user_id))
    if current.is_admin and current.status == "active" and _active_admins(tx) == 0:
        raise Conflict(LAST_ADMIN)
    # A new password or a suspension ends the user's logins (API tokens stay; a suspended
    # user's cannot be used until reactivation, and reactivating revives no login).
    if "password_hash" in changes or changes.get("status") == "suspended":
        end_sessions(tx, user_id, now)
    if "status" in changes:  # an admin's decision: the next directory sync keeps it
        tx.execute("UPDATE users SET ldap_vanished_at = NULL WHERE id = ?", (user_id,))
    tx.changed.add(ACCOUNTS)
    return get_user_tx(tx, user_id)


def end_sessions(tx: Tx, user_id: int, now: float) -> int:
    """Revoke every login token of a user; return how many were live."""
    get_user_tx(tx, user_id)
    cur = tx.execute("UPDATE tokens SET revoked = 1, revoked_at = ? WHERE user_id = ?"
                     " AND kind = 'login' AND revoked = 0", (now, user_id))
    tx.changed.add(ACCOUNTS)
    return cur.rowcount


def sync_directory_users(tx: Tx, found: list[DirectoryUser], *, total: int,
                         now: float) -> DirectorySync:
    """Make the directory users match one complete search of the directory, all at once.

    New names become `ldap` users (not admin, no role, no password); known directory
    users get their attributes and DN refreshed, and are reactivated if a sync suspended
    them for vanishing. A name taken by a manual user is never taken over (it would hand
    that account, perhaps an admin, to whoever controls the directory entry). Directory
    users missing from the search are suspended and lose every token, login and API.
    `total` is how many entries the search returned (some may have been left out before).
    """
    known = {row["username"]: row for row in tx.execute(
        "SELECT id, username, source, status, ldap_vanished_at FROM users").fetchall()}
    created = updated = 0
    seen: set[int] = set()
    for entry in found:
        row = known.get(entry.username)
        if row is None:
            tx.execute(
                "INSERT INTO users (username, email, display_name, source, is_admin, status,"
                " created_at, updated_at, last_synced_at, ldap_dn)"
                " VALUES (?, ?, ?, 'ldap', 0, 'active', ?, ?, ?, ?)",
                (entry.username, entry.email, entry.display_name, now, now, now, entry.dn))
            created += 1
        elif row["source"] == "ldap":
            back = row["status"] == "suspended" and row["ldap_vanished_at"] is not None
            tx.execute(
                "UPDATE users SET email = ?, display_name = ?, ldap_dn = ?, last_synced_at = ?,"
                " updated_at = ?, status = CASE WHEN ? THEN 'active' ELSE status END,"
                " ldap_vanished_at = NULL WHERE id = ?",
                (entry.email, entry.display_name, entry.dn, now, now, back, row["id"]))
            seen.add(row["id"])
            updated += 1
    vanished = [row["id"] for row in known.values() if row["source"] == "ldap"
                and row["status"] == "active" and row["id"] not in seen]
    for user_id in vanished:
        tx.execute("UPDATE users SET status = 'suspended', ldap_vanished_at = ?, updated_at = ?"
                   " WHERE id = ?", (now, now, user_id))
        tx.execute("UPDATE tokens SET revoked = 1, revoked_at = ? WHERE user_id = ?"
                   " AND revoked = 0", (now, user_id))
    tx.changed.add(ACCOUNTS)
    return DirectorySync(created=created, updated=updated, suspended=len(vanished),
                         skipped=total - created - updated, total=total)


# ---- users: reads ------------------------------------------------------------------


async def get_user(db: Database, user_id: int) -> User:
    """Read one user (404 if absent)."""
    row = await db.fetchone(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    if row is None:
        raise NotFound("User not found")
    return _user(row)


async def list_users(db: Database, *, source: str | None, is_admin: bool | None,
                     status: str | None, limit: int, offset: int) -> list[User]:
    """List users in id order with optional filters."""
    where: list[str] = []
    params: list[Any] = []
    if source is not None:
        where.append("source = ?")
        params.append(source)
    if is_admin is not None:
        where.append("is_admin = ?")
        params.append(int(is_admin))
    if status is not None:
        where.append("status = ?")
        params.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetchall(
        f"SELECT {USER_COLUMNS} FROM users {clause} ORDER BY id LIMIT ? OFFSET ?",
        (*params, limit, offset))
    return [_user(row) for row in rows]


async def find_user(db: Database, username: str) -> User | None:
    """Read one user by username, or None."""
    row = await db.fetchone(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,))
    return _user(row) if row is not None else None


async def has_active_admin(db: Database) -> bool:
    """Answer whether any active admin exists."""
    return await db.fetchone(
        "SELECT 1 FROM users WHERE is_admin = 1 AND status = 'active' LIMIT 1") is not None


async def has_users(db: Database) -> bool:
    """Answer whether any user exists."""
    return await db.fetchone("SELECT 1 FROM users LIMIT 1") is not None


async def login_candidate(db: Database, username: str) -> LoginCandidate | None:
    """Read what a login needs to decide: id, status, admin flag and password hash."""
    row = await db.fetchone(
        "SELECT id, username, is_admin, status, source, password_hash, ldap_dn FROM users"
        " WHERE username = ?", (username,))
    if row is None:
        return None
    return LoginCandidate(row["id"], row["username"], bool(row["is_admin"]), row["status"],
                          row["source"], row["password_hash"], row["ldap_dn"])


# ---- tokens ------------------------------------------------------------------------


def record_login(tx: Tx, user_id: int, token_hash: str, expires_at: float, now: float) -> int:
    """Store a login token, stamp last_login_at and drop long-expired login tokens."""
    tx.execute("DELETE FROM tokens WHERE kind = 'login' AND expires_at < ?", (now,))
    tx.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (now, user_id))
    cur = tx.execute(
        "INSERT INTO tokens (user_id, kind, name, token_hash, created_at, expires_at,"
        " last_used_at) VALUES (?, 'login', NULL, ?, ?, ?, ?)",
        (user_id, token_hash, now, expires_at, now))
    return last_id(cur)


def insert_api_token(tx: Tx, *, user_id: int, name: str, token_hash: str,
                     expires_at: float | None, now: float) -> Token:
    """Store a named API token for a user; a live token of the same name is a Conflict."""
    get_user_tx(tx, user_id)
    try:
        cur = tx.execute(
            "INSERT INTO tokens (user_id, kind, name, token_hash, created_at, expires_at)"
            " VALUES (?, 'api', ?, ?, ?, ?)", (user_id, name, token_hash, now, expires_at))
    except sqlite3.IntegrityError:
        raise Conflict(f"Token '{name}' already exists for this user") from None
    return _token(tx.row(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?", (last_id(cur),)))


def revoke_token(tx: Tx, token_id: int, now: float, *, user_id: int | None = None,
                 kind: str | None = None) -> Token:
    """Revoke a token (idempotent); with `user_id`/`kind`, only one that matches them."""
    row = tx.one(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,))
    if row is None or (user_id is not None and row["user_id"] != user_id) or \
            (kind is not None and row["kind"] != kind):
        raise NotFound("Token not found")
    if not row["revoked"]:
        tx.execute("UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ?", (now, token_id))
        tx.changed.add(ACCOUNTS)
    return _token(tx.row(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,)))


def touch_token(tx: Tx, token_id: int, now: float) -> None:
    """Record that a token was used."""
    tx.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))


_TOKENS_WITH_OWNER = (f"SELECT t.{TOKEN_COLUMNS.replace(', ', ', t.')}, u.username FROM tokens t"
                      " JOIN users u ON u.id = t.user_id WHERE t.kind = 'api'")


async def list_all_api_tokens(db: Database) -> list[Token]:
    """List every user's API tokens with their usernames, in id order."""
    rows = await db.fetchall(_TOKENS_WITH_OWNER + " ORDER BY t.id")
    return [_token(row) for row in rows]


async def list_api_tokens(db: Database, user_id: int) -> list[Token]:
    """List a user's API tokens, newest last (404 if the user does not exist)."""
    await get_user(db, user_id)
    rows = await db.fetchall(_TOKENS_WITH_OWNER + " AND t.user_id = ? ORDER BY t.id", (user_id,))
    return [_token(row) for row in rows]


_RESOLVE = (
    "SELECT t.id AS token_id, t.expires_at, t.revoked, t.last_used_at,"
    " u.id AS user_id, u.username, u.is_admin, u.status,"
    " r.system_permissions, p.resource_type_name, p.resource_type_version, p.operations"
    " FROM tokens t JOIN users u ON u.id = t.user_id"
    " LEFT JOIN custom_roles r ON r.id = u.custom_role_id"
    " LEFT JOIN custom_role_permissions p ON p.role_id = r.id"
    " WHERE t.token_hash = ? ORDER BY p.id"
)


async def resolve_token(db: Database, token_hash: str) -> list[sqlite3.Row]:
    """Read a token with its user, the user's role and the role's permissions (one query).

    One row per permission (a single row with NULL permission columns when there are none);
    no rows when the digest is unknown.
    """
    return await db.fetchall(_RESOLVE, (token_hash,))


class TokenReader:
    """The per-request token lookup, run directly on the event loop.

    It is one indexed point query (about 15 µs here), while a hop to a pooled reader
    thread costs about 100 µs, as much as the request's own read. It can never stall
    the loop: busy_timeout is 0, and a busy or unavailable database falls back to the
    pooled readers.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the read-only connection (after migrations have run)."""
        conn = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True, timeout=0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA query_only = 1")
        self._conn = conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def resolve(self, token_hash: str) -> list[sqlite3.Row]:
        """Same result as `resolve_token`."""
        if self._conn is not None:
            try:
                return self._conn.execute(_RESOLVE, (token_hash,)).fetchall()
            except sqlite3.OperationalError:
                pass  # busy (a checkpoint or recovery elsewhere): take the slow path
        return await resolve_token(self.db, token_hash)


# ---- roles: write units ------------------------------------------------------------


def _role_tx(tx: Tx, role_id: int) -> Role:
    row = tx.one(f"SELECT {ROLE_COLUMNS} FROM custom_roles WHERE id = ?", (role_id,))
    if row is None:
        raise NotFound("Role not found")
    perms = tx.execute(f"SELECT {PERMISSION_COLUMNS} FROM custom_role_permissions"
                       " WHERE role_id = ? ORDER BY id", (role_id,)).fetchall()
    return _role(row, [_permission(p) for p in perms])


def _insert_permission(tx: Tx, role_id: int, perm: dict[str, Any], now: float) -> int:
    try:
        cur = tx.execute(
            "INSERT INTO custom_role_permissions (role_id, resource_type_name,"
            " resource_type_version, operations, created_at) VALUES (?, ?, ?, ?, ?)",
            (role_id, perm["resource_type_name"], perm["resource_type_version"],
             dumps(perm["operations"]), now))
    except sqlite3.IntegrityError:
        raise Conflict("Permission for this resource type/version already exists") from None
    return last_id(cur)


def insert_role(tx: Tx, *, name: str, description: str | None, system_permissions: list[str],
                permissions: list[dict[str, Any]], now: float) -> Role:
    """Create a role with its permissions, all or nothing."""
    try:
        cur = tx.execute(
            "INSERT INTO custom_roles (name, description, system_permissions, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?)",
            (name, description, dumps(system_permissions), now, now))
    except sqlite3.IntegrityError:
        raise Conflict(f"Role '{name}' already exists") from None
    for perm in permissions:
        _insert_permission(tx, last_id(cur), perm, now)
    return _role_tx(tx, last_id(cur))


def update_role(tx: Tx, role_id: int, changes: dict[str, Any], now: float) -> Role:
    """Change a role's name, description and/or system permissions."""
    tx.changed.add(ACCOUNTS)
    _role_tx(tx, role_id)
    columns = [c for c in ("name", "description", "system_permissions") if c in changes]
    values = [dumps(changes[c]) if c == "system_permissions" else changes[c] for c in columns]
    assignments = "".join(f"{c} = ?, " for c in columns)
    try:
        tx.execute(f"UPDATE custom_roles SET {assignments}updated_at = ? WHERE id = ?",
                   (*values, now, role_id))
    except sqlite3.IntegrityError:
        raise Conflict(f"Role '{changes.get('name')}' already exists") from None
    return _role_tx(tx, role_id)


def delete_role(tx: Tx, role_id: int) -> None:
    """Delete a role; its permissions go with it and its users are left without a role."""
    tx.changed.add(ACCOUNTS)
    _role_tx(tx, role_id)
    tx.execute("DELETE FROM custom_roles WHERE id = ?", (role_id,))


def add_permission(tx: Tx, role_id: int, perm: dict[str, Any], now: float) -> Permission:
    """Add a permission to a role."""
    tx.changed.add(ACCOUNTS)
    _role_tx(tx, role_id)
    perm_id = _insert_permission(tx, role_id, perm, now)
    tx.execute("UPDATE custom_roles SET updated_at = ? WHERE id = ?", (now, role_id))
    return _permission_tx(tx, role_id, perm_id)


def _permission_tx(tx: Tx, role_id: int, perm_id: int) -> Permission:
    row = tx.one(f"SELECT {PERMISSION_COLUMNS} FROM custom_role_permissions"
                 " WHERE id = ? AND role_id = ?", (perm_id, role_id))
    if row is None:
        raise NotFound("Permission not found")
    return _permission(row)


def set_permission_operations(tx: Tx, role_id: int, perm_id: int, operations: list[str],
                              now: float) -> Permission:
    """Replace the operations of one of a role's permissions."""
    tx.changed.add(ACCOUNTS)
    _role_tx(tx, role_id)
    _permission_tx(tx, role_id, perm_id)
    tx.execute("UPDATE custom_role_permissions SET operations = ? WHERE id = ?",
               (dumps(operations), perm_id))
    tx.execute("UPDATE custom_roles SET updated_at = ? WHERE id = ?", (now, role_id))
    return _permission_tx(tx, role_id, perm_id)


def delete_permission(tx: Tx, role_id: int, perm_id: int, now: float) -> None:
    """Remove one of a role's permissions."""
    tx.changed.add(ACCOUNTS)
    _role_tx(tx, role_id)
    _permission_tx(tx, role_id, perm_id)
    tx.execute("DELETE FROM custom_role_permissions WHERE id = ?", (perm_id,))
    tx.execute("UPDATE custom_roles SET updated_at = ? WHERE id = ?", (now, role_id))


# ---- roles: reads ------------------------------------------------------------------


async def get_role(db: Database, role_id: int) -> Role:
    """Read one role with its permissions (404 if absent)."""
    row = await db.fetchone(f"SELECT {ROLE_COLUMNS} FROM custom_roles WHERE id = ?", (role_id,))
    if row is None:
        raise NotFound("Role not found")
    perms = await db.fetchall(f"SELECT {PERMISSION_COLUMNS} FROM custom_role_permissions"
                              " WHERE role_id = ? ORDER BY id", (role_id,))
    return _role(row, [_permission(p) for p in perms])


async def list_roles(db: Database) -> list[Role]:
    """List every role with its permissions, in id order (two queries, not one per role)."""
    roles = await db.fetchall(f"SELECT {ROLE_COLUMNS} FROM custom_roles ORDER BY id")
    perms = await db.fetchall(f"SELECT {PERMISSION_COLUMNS} FROM custom_role_permissions"
                              " ORDER BY id")
    by_role: dict[int, list[Permission]] = {}
    for perm in perms:
        by_role.setdefault(perm["role_id"], []).append(_permission(perm))
    return [_role(row, by_role.get(row["id"], [])) for row in roles]
