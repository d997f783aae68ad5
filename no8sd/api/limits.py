"""Deadlines on reading request bodies, so a client cannot hold a handler by dripping bytes.

aiohttp has no time limit on receiving a request body: a client that sends a large
Content-Length and then one byte every few seconds (slowloris) would keep a handler,
its memory and a connection forever. This middleware reads the whole body up front
within `Settings.body_timeout` seconds (aiohttp caches it, so handlers read it again for
free) and answers 408 otherwise, closing the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from no8sd.api import keys
from no8sd.errors import RequestTimeout

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def body_deadline_middleware(request: web.Request, handler: Handler
                                   ) -> web.StreamResponse:
    """Read any request body within the configured deadline (408 if it is too slow)."""
    if request.body_exists:
        timeout = request.app[keys.SETTINGS].body_timeout
        try:
            await asyncio.wait_for(request.read(), timeout)
        except TimeoutError:
            raise RequestTimeout(
                f"Request body not received within {timeout:g}s") from None
    return await handler(request)
