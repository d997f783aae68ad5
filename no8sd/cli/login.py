"""`no8sd login` and `no8sd logout`: store a daemon's address and a token, then forget them.

The password comes from a hidden prompt, or from one line of standard input when that is
not a terminal (`pass show no8sd | no8sd login ...`); never from the command line, where
`ps` would show it. Against a daemon with authentication off there is nothing to log in
to: the server alone is stored.
"""

from __future__ import annotations

import sys

import click

from no8sd.cli import session
from no8sd.cli.http import DEFAULT_SERVER, EXIT_USAGE, ApiError, ClientError, Connection
from no8sd.cli.output import echo, span


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, err=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@click.command("login")
@click.option("--server", envvar="NO8SD_SERVER", show_envvar=True, metavar="URL",
              help=f"The daemon's URL (default: the last one logged in to, else "
                   f"{DEFAULT_SERVER}).")
@click.option("--username", "-u", metavar="NAME", help="Log in as this user (prompted for on "
                                                       "a terminal when the daemon needs one).")
def login_command(server: str | None, username: str | None) -> None:
    """Log in to a daemon and remember it (and its token) for the other commands.

    The token is stored in the user config directory (`no8sd login` prints where), in a
    file only you can read. The password is prompted for, or read from standard input.

    \b
    Examples:
      no8sd login --server https://no8sd.example.com --username alice
      pass show no8sd/alice | no8sd login --server http://edge-box:8000 -u alice
    """
    logins = session.load_logins()
    server = (server or logins.get("current") or DEFAULT_SERVER).rstrip("/")
    conn = Connection(server)
    entry: dict[str, str] = {}
    if username is None:
        try:
            conn.request("GET", "/api/v1/auth/me")
        except ApiError as exc:
            if exc.status != 401:
                if exc.status == 404 and "authentication is off" in exc.detail:
                    entry = {}
                else:
                    raise
            elif sys.stdin.isatty():
                username = click.prompt("Username", err=True)
            else:
                raise ClientError(f"{server} needs a login: give --username", EXIT_USAGE
                                  ) from None
    if username is not None:
        answer = conn.request("POST", "/api/v1/auth/login",
                              {"username": username, "password": _read_password()})
        entry = {"token": answer["access_token"], "username": answer["username"]}
    logins["servers"][server] = entry
    logins["current"] = server
    path = session.save_logins(logins)
    if entry:
        echo(f"Logged in to {server} as {entry['username']} (the token is valid for "
             f"{span(float(answer.get('expires_in') or 0))}); stored in {path}")
    else:
        echo(f"Using {server} (authentication is off there: no token needed); stored in "
             f"{path}")


@click.command("logout")
@click.option("--server", envvar="NO8SD_SERVER", show_envvar=True, metavar="URL",
              help="Log out of this daemon (default: the current one).")
def logout_command(server: str | None) -> None:
    """Revoke the stored token at the daemon and forget it.

    The token is forgotten even when the daemon cannot be reached to revoke it (then
    the command says so and exits 1: the token stays valid until it expires).

    Example: no8sd logout
    """
    logins = session.load_logins()
    server = (server or logins.get("current") or "").rstrip("/")
    if server not in logins["servers"]:
        raise ClientError(f"not logged in to {server or 'any server'}")
    token = logins["servers"].pop(server).get("token")
    if logins.get("current") == server:
        logins["current"] = None
    session.save_logins(logins)
    if token:
        try:
            Connection(server, token).request("POST", "/api/v1/auth/logout")
        except ApiError as exc:
            if exc.status != 401:  # 401: the token had already expired or been revoked
                raise ClientError(f"forgot the login for {server}, but the daemon refused "
                                  f"to revoke its token: {exc.message}") from None
        except ClientError as exc:
            raise ClientError(f"forgot the login for {server}, but could not revoke its "
                              f"token there: {exc.message}") from None
    echo(f"Logged out of {server}")
