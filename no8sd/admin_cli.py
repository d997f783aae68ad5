"""`no8sd user ...` and `no8sd token ...`: account administration on the database file.

These commands open the database directly with a short-lived sqlite3 connection, so they
work whether or not a daemon is running: SQLite's WAL mode and busy timeout let them
write next to the daemon's writer. They never take the daemon's file lock, except for a
moment to bring an unused database's schema up to date. Passwords are read from a prompt
or from standard input, never from the command line (where `ps` would show them).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from no8sd import credentials
from no8sd.api.auth_schemas import MAX_PASSWORD, MIN_PASSWORD
from no8sd.config import default_db_path
from no8sd.errors import No8sdError, StartupError, Unprocessable
from no8sd.store import auth as store
from no8sd.store.db import Tx, migrate, migration_files
from no8sd.timeutil import iso, now

T = TypeVar("T")


def _db_path(params: dict[str, Any]) -> Path:
    return Path(params["db"]) if params.get("db") else default_db_path()


@contextlib.contextmanager
def open_database(path: Path) -> Iterator[sqlite3.Connection]:
    """Open the database for a short administrative change, migrating it if nobody uses it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StartupError(f"cannot open database {path}: {exc.strerror}") from None
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _ensure_schema(path, conn)
        yield conn
    except sqlite3.DatabaseError as exc:
        raise StartupError(f"cannot use database {path}: {exc}") from None
    finally:
        conn.close()


def _ensure_schema(path: Path, conn: sqlite3.Connection) -> None:
    latest = migration_files()[-1][0]
    if conn.execute("PRAGMA user_version").fetchone()[0] >= latest:
        return  # migrate() below reports a schema newer than this no8sd
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"database {path} is used by a running no8sd that has not upgraded its "
                "schema; stop it or upgrade it first") from None
        migrate(conn)
    finally:
        os.close(fd)  # also releases the lock


def run_unit(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one write unit in its own transaction on `conn`."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(Tx(conn), *args, **kwargs)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def read_password() -> str:
    """Read a new password from a hidden prompt (asked twice), or one line of stdin."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Unprocessable(f"the password must be at most {MAX_PASSWORD} characters")
    return password


def _fail(exc: Exception) -> None:
    detail = exc.detail if isinstance(exc, No8sdError) else str(exc)
    click.echo(f"no8sd: error: {detail}", err=True)
    sys.exit(1)


@click.group("user")
def user_group() -> None:
    """Manage users in the database file."""


@user_group.command("create")
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
@click.argument("name")
@click.pass_obj
def user_create(params: dict[str, Any], admin: bool, name: str) -> None:
    """Create user NAME; the password is prompted for, or read from stdin."""
    from no8sd.api.resources import check_name

    try:
        check_name(name, "username")
        password = read_password()
        encoded = credentials.hash_password(password)
        with open_database(_db_path(params)) as conn:
            user = run_unit(conn, store.insert_user, username=name, password_hash=encoded,
                            email=None, display_name=None, is_admin=admin,
                            custom_role_id=None, now=now())
    except (No8sdError, StartupError) as exc:
        _fail(exc)
    role = "admin" if user["is_admin"] else "user"
    click.echo(f"Created {role} {user['username']} (id {user['id']})")


@click.group("token")
def token_group() -> None:
    """Manage named API tokens in the database file."""


@token_group.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="A name for the token (unique per user).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Lifetime in days. Default: no expiry.")
@click.pass_obj
def token_create(params: dict[str, Any], username: str, name: str,
                 expires_in_days: int | None) -> None:
    """Create an API token and print its secret (shown only this once) on stdout."""
    secret = credentials.new_token()
    stamp = now()
    try:
        with open_database(_db_path(params)) as conn:
            user = run_unit(conn, store.find_user_tx, username)
            if user is None:
                raise StartupError(f"no user named {username!r}")
            token = run_unit(
                conn, store.insert_api_token, user_id=user["id"], name=name,
                token_hash=credentials.token_digest(secret),
                expires_at=stamp + expires_in_days * 86400 if expires_in_days else None,
                now=stamp)
    except (No8sdError, StartupError) as exc:
        _fail(exc)
    click.echo(f"Created token {token['id']} '{name}' for {username}; it is shown only once:",
               err=True)
    click.echo(secret)


@token_group.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
@click.pass_obj
def token_list(params: dict[str, Any], username: str | None) -> None:
    """List API tokens (never their secrets)."""
    try:
        with open_database(_db_path(params)) as conn:
            user_id = None
            if username is not None:
                user = run_unit(conn, store.find_user_tx, username)
                if user is None:
                    raise StartupError(f"no user named {username!r}")
                user_id = user["id"]
            tokens = run_unit(conn, store.list_api_tokens_tx, user_id)
    except (No8sdError, StartupError) as exc:
        _fail(exc)
    if not tokens:
        click.echo("No API tokens.")
        return
    click.echo("ID\tUSER\tNAME\tCREATED\tEXPIRES\tLAST USED\tSTATE")
    for t in tokens:
        state = "revoked" if t["revoked"] else (
            "expired" if t["expires_at"] is not None and t["expires_at"] <= now() else "active")
        click.echo(f"{t['id']}\t{t['username']}\t{t['name']}\t{iso(t['created_at'])}\t"
                   f"{iso(t['expires_at']) or 'never'}\t{iso(t['last_used_at']) or 'never'}\t"
                   f"{state}")


@token_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@click.pass_obj
def token_revoke(params: dict[str, Any], token_id: int) -> None:
    """Revoke API token TOKEN_ID; it stops working on its next use."""
    try:
        with open_database(_db_path(params)) as conn:
            run_unit(conn, store.revoke_token, token_id, now(), kind="api")
    except (No8sdError, StartupError) as exc:
        _fail(exc)
    click.echo(f"Revoked token {token_id}")
