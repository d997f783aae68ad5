"""`no8sd user ...` and `no8sd token ...`: account administration, on a running daemon over
HTTP or on the database file.

Which one: a server given with `--server`/`NO8SD_SERVER` (or a token with
`--token`/`NO8SD_TOKEN`) means HTTP; otherwise a database given with `--db`/`NO8SD_DB`
(or the config file) means the file; otherwise a stored login (`no8sd login`) means
HTTP to that daemon; otherwise the default database file. Over HTTP the caller needs an
admin token; on the file, the right to open it.

The file is opened *shared* (no8sd.store.db): no exclusive lock, the same writer code and
SQLite's busy timeout, so these commands work whether or not a daemon is running, and
they make every change through the same accounts service (no8sd.core.accounts) as the
HTTP API; they need no login, so they are the way back in when every admin password is
lost. Passwords are read from a prompt or from standard input, never from the command
line (where `ps` would show it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from no8sd.cli import Invocation, refs, session
from no8sd.cli.http import EXIT_NOT_FOUND, ClientError, Connection
from no8sd.cli.output import parse_time

if TYPE_CHECKING:
    from no8sd.core.accounts import Accounts

T = TypeVar("T")


def over_http(invocation: Invocation) -> bool:
    """Whether this command talks to a daemon (see the module docstring for the rule)."""
    if session.given():
        return True
    if invocation.gave("db_path"):
        return False
    return bool(session.load_logins().get("current"))


def with_accounts(invocation: Invocation, work: Callable[[Accounts], Awaitable[T]]) -> T:
    """Open the database shared, run `work` with an accounts service, close it again."""
    import asyncio

    from no8sd.core.accounts import Accounts
    from no8sd.errors import No8sdError, StartupError
    from no8sd.store.db import Database

    settings = invocation.settings

    async def run() -> T:
        db = Database(settings.db_path, shared=True, readers=1)
        await db.open()
        try:
            return await work(Accounts(db, clock=settings.clock))
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except (No8sdError, StartupError) as exc:
        fail(exc)


def fail(exc: Exception) -> NoReturn:
    """One line on stderr, exit code 1."""
    detail = getattr(exc, "detail", None) or str(exc)
    click.echo(f"no8sd: error: {detail}", err=True)
    sys.exit(1)


def read_password(*, check: bool) -> str:
    """Read a new password from a hidden prompt (asked twice), or one line of stdin."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                     err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if check:  # over HTTP the daemon checks it
        from no8sd.core.accounts import check_password
        from no8sd.errors import No8sdError

        try:
            check_password(password)
        except No8sdError as exc:
            fail(exc)
    return password


def _user_id(conn: Connection, username: str) -> int:
    for user in refs.paged(conn, "/api/v1/users"):
        if user["username"] == username:
            found: int = user["id"]
            return found
    raise ClientError(f"no user named {username!r}", EXIT_NOT_FOUND)


@click.group("user")
def user_group() -> None:
    """Manage users (on a running daemon, or in the database file).

    Example: no8sd --db /srv/no8sd/no8sd.db user create --admin alice
    """


@user_group.command("create")
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
@click.argument("name")
@session.connection_options
@click.pass_obj
def user_create(invocation: Invocation, admin: bool, name: str) -> None:
    """Create user NAME; the password is prompted for, or read from stdin.

    \b
    Examples:
      no8sd --db /srv/no8sd/no8sd.db user create --admin alice   # on the file
      no8sd user create --server https://no8sd.example.com bob   # as a logged-in admin
    """
    if over_http(invocation):
        created = session.connect().request("POST", "/api/v1/users", {
            "username": name, "password": read_password(check=False), "is_admin": admin})
        username, user_id, is_admin = created["username"], created["id"], created["is_admin"]
    else:
        from no8sd.core.accounts import check_name
        from no8sd.errors import No8sdError

        try:
            check_name(name, "username")
        except No8sdError as exc:
            fail(exc)
        password = read_password(check=True)
        user = with_accounts(invocation, lambda accounts: accounts.create_user(
            name, password, is_admin=admin))
        username, user_id, is_admin = user.username, user.id, user.is_admin
    click.echo(f"Created {'admin' if is_admin else 'user'} {username} (id {user_id})")


@user_group.command("end-sessions")
@click.argument("name")
@session.connection_options
@click.pass_obj
def user_end_sessions(invocation: Invocation, name: str) -> None:
    """End every login session of user NAME (API tokens keep working); its open event
    streams close within a second.

    Example: no8sd user end-sessions alice
    """
    if over_http(invocation):
        conn = session.connect()
        conn.request("DELETE", f"/api/v1/users/{_user_id(conn, name)}/sessions")
        click.echo(f"Ended the login sessions of {name}")
        return

    async def work(accounts: Accounts) -> int:
        return await accounts.end_sessions((await accounts.find_user(name)).id)

    ended = with_accounts(invocation, work)
    click.echo(f"Ended {ended} login session(s) of {name}")


@user_group.command("ldap-sync")
@click.pass_obj
def user_ldap_sync(invocation: Invocation) -> None:
    """Sync users from the LDAP directory now, as POST /api/v1/users/ldap-sync does: new
    directory users are created, known ones refreshed, vanished ones suspended.

    Example: LDAP_URL=ldap://ldap.lan LDAP_BASE_DN=dc=lan ... no8sd user ldap-sync
    """
    from no8sd.errors import StartupError

    settings = invocation.settings
    if not settings.ldap_url:
        fail(StartupError("LDAP is not configured (set LDAP_URL)"))
    from no8sd.core.directory import open_directory
    from no8sd.host.secrets import SecretStores

    async def work(accounts: Accounts) -> dict[str, int]:
        stores = SecretStores(settings.secret_store)

        async def secret(key: str) -> str:  # the store is started only if it is needed
            stores.discover(entry_points=settings.entry_points)
            await stores.start()
            return await (await stores.active()).get_secret(key)

        try:
            directory = await open_directory(settings, accounts.db, secret=secret)
        finally:
            await stores.close()
        accounts.directory = directory
        try:
            return await accounts.sync_directory()
        finally:
            directory.close()

    counts = with_accounts(invocation, work)
    click.echo(", ".join(f"{key} {value}" for key, value in counts.items()))


@click.group("token")
def token_group() -> None:
    """Manage named API tokens (on a running daemon, or in the database file).

    Example: no8sd token list
    """


@token_group.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="A name for the token (unique per user).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Lifetime in days. Default: no expiry.")
@session.connection_options
@click.pass_obj
def token_create(invocation: Invocation, username: str, name: str,
                 expires_in_days: int | None) -> None:
    """Create an API token and print its secret (shown only this once) on stdout.

    Example: no8sd token create --user deployer --name ci
    """
    lifetime = expires_in_days * 86400.0 if expires_in_days else None
    if over_http(invocation):
        conn = session.connect()
        made = conn.request("POST", f"/api/v1/users/{_user_id(conn, username)}/tokens",
                            {"name": name, "expires_in": lifetime})
        token_id, secret = made["id"], made["token"]
    else:
        async def work(accounts: Accounts) -> Any:
            user = await accounts.find_user(username)
            return await accounts.create_api_token(user.id, name, lifetime)

        token, secret = with_accounts(invocation, work)
        token_id = token.id
    click.echo(f"Created token {token_id} '{name}' for {username}; it is shown only once:",
               err=True)
    click.echo(secret)


def _http_tokens(conn: Connection, username: str | None) -> list[dict[str, Any]]:
    """Every token (of one user, or of all), each with its user's name."""
    found = []
    for user in refs.paged(conn, "/api/v1/users"):
        if username is None or user["username"] == username:
            for token in conn.request("GET", f"/api/v1/users/{user['id']}/tokens"):
                found.append({**token, "username": user["username"]})
    if username is not None and not found:
        _user_id(conn, username)  # says when there is no such user
    return sorted(found, key=lambda t: t["id"])


def _file_tokens(invocation: Invocation, username: str | None) -> list[dict[str, Any]]:
    from no8sd.timeutil import iso

    async def work(accounts: Accounts) -> Any:
        user_id = (await accounts.find_user(username)).id if username is not None else None
        return await accounts.list_api_tokens(user_id)

    return [{"id": t.id, "username": t.username, "name": t.name,
             "created_at": iso(t.created_at), "expires_at": iso(t.expires_at),
             "last_used_at": iso(t.last_used_at), "revoked": t.revoked}
            for t in with_accounts(invocation, work)]


@token_group.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
@session.connection_options
@click.pass_obj
def token_list(invocation: Invocation, username: str | None) -> None:
    """List API tokens (never their secrets).

    Example: no8sd token list --user deployer
    """
    tokens = (_http_tokens(session.connect(), username) if over_http(invocation)
              else _file_tokens(invocation, username))
    if not tokens:
        click.echo("No API tokens.")
        return
    now = time.time()
    click.echo("ID\tUSER\tNAME\tCREATED\tEXPIRES\tLAST USED\tSTATE")
    for t in tokens:
        expires = parse_time(t["expires_at"])
        state = "revoked" if t["revoked"] else (
            "expired" if expires is not None and expires <= now else "active")
        click.echo(f"{t['id']}\t{t['username']}\t{t['name']}\t{t['created_at']}\t"
                   f"{t['expires_at'] or 'never'}\t{t['last_used_at'] or 'never'}\t{state}")


@token_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@session.connection_options
@click.pass_obj
def token_revoke(invocation: Invocation, token_id: int) -> None:
    """Revoke API token TOKEN_ID; it stops working on its next use.

    Example: no8sd token revoke 7
    """
    if over_http(invocation):
        conn = session.connect()
        owner = next((t["user_id"] for t in _http_tokens(conn, None) if t["id"] == token_id),
                     None)
        if owner is None:
            raise ClientError("Token not found", EXIT_NOT_FOUND)
        conn.request("DELETE", f"/api/v1/users/{owner}/tokens/{token_id}")
    else:
        with_accounts(invocation, lambda accounts: accounts.revoke_api_token(token_id))
    click.echo(f"Revoked token {token_id}")
