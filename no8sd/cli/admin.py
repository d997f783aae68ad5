"""`no8sd user ...` and `no8sd token ...`: account administration on the database file.

These commands open the database *shared* (no8sd.store.db): no exclusive lock, the same
writer code and SQLite's busy timeout, so they work whether or not a daemon is running,
and they make every change through the same accounts service (no8sd.core.accounts) as
the HTTP API. Passwords are read from a prompt or from standard input, never from the
command line (where `ps` would show them).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from no8sd.config import Settings
from no8sd.core.accounts import Accounts, check_password
from no8sd.errors import No8sdError, StartupError
from no8sd.store.db import Database
from no8sd.timeutil import iso

T = TypeVar("T")


def with_accounts(settings: Settings, work: Callable[[Accounts], Awaitable[T]]) -> T:
    """Open the database shared, run `work` with an accounts service, close it again."""

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
    detail = exc.detail if isinstance(exc, No8sdError) else str(exc)
    click.echo(f"no8sd: error: {detail}", err=True)
    sys.exit(1)


def read_password() -> str:
    """Read a new password from a hidden prompt (asked twice), or one line of stdin."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                     err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_password(password)
    except No8sdError as exc:
        fail(exc)
    return password


@click.group("user")
def user_group() -> None:
    """Manage users in the database file."""


@user_group.command("create")
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
@click.argument("name")
@click.pass_obj
def user_create(settings: Settings, admin: bool, name: str) -> None:
    """Create user NAME; the password is prompted for, or read from stdin.

    Example: no8sd --db /srv/no8sd/no8sd.db user create --admin alice
    """
    from no8sd.core.accounts import check_name

    try:
        check_name(name, "username")
    except No8sdError as exc:
        fail(exc)
    password = read_password()
    user = with_accounts(settings, lambda accounts: accounts.create_user(
        name, password, is_admin=admin))
    role = "admin" if user.is_admin else "user"
    click.echo(f"Created {role} {user.username} (id {user.id})")


@user_group.command("end-sessions")
@click.argument("name")
@click.pass_obj
def user_end_sessions(settings: Settings, name: str) -> None:
    """End every login session of user NAME (API tokens keep working); its open event
    streams close within a second.

    Example: no8sd user end-sessions alice
    """

    async def work(accounts: Accounts) -> int:
        return await accounts.end_sessions((await accounts.find_user(name)).id)

    ended = with_accounts(settings, work)
    click.echo(f"Ended {ended} login session(s) of {name}")


@user_group.command("ldap-sync")
@click.pass_obj
def user_ldap_sync(settings: Settings) -> None:
    """Sync users from the LDAP directory now, as POST /api/v1/users/ldap-sync does: new
    directory users are created, known ones refreshed, vanished ones suspended.

    Example: LDAP_URL=ldap://ldap.lan LDAP_BASE_DN=dc=lan ... no8sd user ldap-sync
    """
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

    counts = with_accounts(settings, work)
    click.echo(", ".join(f"{key} {value}" for key, value in counts.items()))


@click.group("token")
def token_group() -> None:
    """Manage named API tokens in the database file."""


@token_group.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="A name for the token (unique per user).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Lifetime in days. Default: no expiry.")
@click.pass_obj
def token_create(settings: Settings, username: str, name: str,
                 expires_in_days: int | None) -> None:
    """Create an API token and print its secret (shown only this once) on stdout.

    Example: no8sd token create --user deployer --name ci
    """

    async def work(accounts: Accounts) -> Any:
        user = await accounts.find_user(username)
        return await accounts.create_api_token(
            user.id, name, expires_in_days * 86400.0 if expires_in_days else None)

    token, secret = with_accounts(settings, work)
    click.echo(f"Created token {token.id} '{name}' for {username}; it is shown only once:",
               err=True)
    click.echo(secret)


@token_group.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
@click.pass_obj
def token_list(settings: Settings, username: str | None) -> None:
    """List API tokens (never their secrets)."""

    async def work(accounts: Accounts) -> Any:
        user_id = (await accounts.find_user(username)).id if username is not None else None
        return await accounts.list_api_tokens(user_id)

    tokens = with_accounts(settings, work)
    if not tokens:
        click.echo("No API tokens.")
        return
    now = settings.clock.now()
    click.echo("ID\tUSER\tNAME\tCREATED\tEXPIRES\tLAST USED\tSTATE")
    for t in tokens:
        state = "revoked" if t.revoked else (
            "expired" if t.expires_at is not None and t.expires_at <= now else "active")
        click.echo(f"{t.id}\t{t.username}\t{t.name}\t{iso(t.created_at)}\t"
                   f"{iso(t.expires_at) or 'never'}\t{iso(t.last_used_at) or 'never'}\t"
                   f"{state}")


@token_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@click.pass_obj
def token_revoke(settings: Settings, token_id: int) -> None:
    """Revoke API token TOKEN_ID; it stops working on its next use."""
    with_accounts(settings, lambda accounts: accounts.revoke_api_token(token_id))
    click.echo(f"Revoked token {token_id}")
