"""Authentication at the HTTP edge: the bearer-token middleware and the exposure rule.

In `token` mode every route not declared `public=True` needs `Authorization: Bearer
<token>`; the token is resolved against the database on every request into the
request's Principal. Event streams re-check their caller every heartbeat interval and
end when the caller's rights change. Requests that match no route fall through to the
router's own 404/405, since the route table is public anyway (the OpenAPI document).
`check_exposure` refuses to serve without authentication on anything but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from no8sd import background
from no8sd.api import access, keys
from no8sd.api.access import Handler
from no8sd.config import Settings
from no8sd.core.principal import Principal
from no8sd.errors import StartupError, Unauthorized

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
    # "Bearer <token>": the scheme in any case (RFC 7235), one space, one non-empty token
    # with no whitespace.
    if scheme.lower() != "bearer" or not token or token != token.strip() or " " in token:
        raise Unauthenticated("Missing or invalid Authorization header")
    return token


def token_middleware(routes: Iterable[Any]) -> Any:
    """Build the middleware that authenticates every non-public route of `routes`."""
    routes = list(routes)
    public = frozenset(route.handler for route in routes if route.public)
    streaming = frozenset(route.handler for route in routes
                          if route.content_type == "text/event-stream")

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None or match.handler in public:
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization"))
        try:
            caller = await request.app[keys.CORE].accounts.resolve(token)
        except Unauthorized as exc:
            raise Unauthenticated(exc.detail) from None
        request[access.PRINCIPAL] = caller
        if match.handler in streaming:
            return await _guarded_stream(request, handler, token, caller)
        return await handler(request)

    return authenticate


async def _guarded_stream(request: web.Request, handler: Handler, token: str,
                          caller: Principal) -> web.StreamResponse:
    """Run a long-lived stream, ending it once its caller's credentials or rights change.

    A stream filters by the rights its caller had when it opened. It re-checks them as soon
    as users, tokens or roles change (the core's accounts_changed signal; within a second for
    a change made by another process), and every heartbeat interval for a token that
    expires. The client reconnects (resuming with Last-Event-ID) under its current rights.
    """
    core = request.app[keys.CORE]
    accounts = core.accounts
    interval = request.app[keys.SETTINGS].sse_heartbeat
    task = asyncio.current_task()
    assert task is not None
    ended = False

    async def recheck() -> None:
        nonlocal ended
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await core.wait_accounts_changed()
            try:
                current: Principal | None = await accounts.resolve(token)
            except Unauthorized:
                current = None
            except Exception:  # the store is briefly unavailable: keep the stream
                continue
            if current != caller:
                ended = True
                task.cancel()
                return

    watcher = background.spawn(recheck(), name="stream-credentials")
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not ended:
            raise
        task.uncancel()
        raise ConnectionResetError("credentials changed") from None
    finally:
        watcher.cancel()
        if ended and task.cancelling():
            task.uncancel()  # the stream ended itself on our cancel; nothing else is pending
