"""Authentication at the HTTP edge: the bearer-token middleware and the exposure rule.

In `token` mode every route not declared `public=True` needs `Authorization: Bearer
<token>`; the token is resolved against the database on every request into the
request's Principal. Requests that match no route fall through to the router's own
404/405, since the route table is public anyway (the OpenAPI document lists it).
`check_exposure` refuses to serve without authentication on anything but loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web

from no8sd.accounts import Accounts
from no8sd.api import access, keys
from no8sd.config import Settings
from no8sd.errors import StartupError, Unauthorized

ACCOUNTS = web.AppKey("accounts", Accounts)
AUTH_MODES = ("none", "token")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Unauthenticated(Unauthorized):
    """A 401 that carries the Bearer challenge header."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = dict(CHALLENGE)


def is_loopback(host: str) -> bool:
    """Answer whether a listening address only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def check_exposure(settings: Settings) -> None:
    """Refuse to start without authentication on a non-loopback address."""
    if settings.auth not in AUTH_MODES:
        raise StartupError(f"unknown auth mode {settings.auth!r} (use none or token)")
    if settings.auth != "none":
        return
    exposed = [host for host in settings.hosts if not is_loopback(host)]
    if exposed:
        raise StartupError(
            f"refusing to listen on {', '.join(exposed)} without authentication; "
            "use --auth token (see 'Exposing no8sd beyond localhost' in the README)"
        )


def bearer_token(header: str | None) -> str:
    """Extract the token from an Authorization header, or raise 401."""
    if not header:
        raise Unauthenticated("Missing or invalid Authorization header")
    scheme, _, token = header.partition(" ")
    # Exactly "Bearer <token>": one space, one non-empty token with no whitespace.
    if scheme != "Bearer" or not token or token != token.strip() or " " in token:
        raise Unauthenticated("Missing or invalid Authorization header")
    return token


def token_middleware(routes: Iterable[Any]) -> Any:
    """Build the middleware that authenticates every non-public route of `routes`."""
    public = frozenset(route.handler for route in routes if route.public)

    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None or match.handler in public:
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization"))
        try:
            request[access.PRINCIPAL] = await request.app[ACCOUNTS].resolve(token)
        except Unauthorized as exc:
            raise Unauthenticated(exc.detail) from None
        return await handler(request)

    return authenticate


def install(app: web.Application, settings: Settings) -> None:
    """Create the accounts service on the application."""
    app[ACCOUNTS] = Accounts(app[keys.DB], token_ttl=settings.token_ttl,
                             max_failures_user=settings.login_max_failures_user,
                             max_failures_address=settings.login_max_failures_address,
                             failure_window=settings.login_failure_window)


async def accounts_ctx(app: web.Application) -> AsyncIterator[None]:
    """At start-up (after the store opens): create the first admin from the environment."""
    accounts = app[ACCOUNTS]
    await accounts.prepare()
    await accounts.bootstrap(app[keys.SETTINGS].initial_admin)
    yield
    accounts.close()
