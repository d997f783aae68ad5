"""Deadlines on reading request bodies, so a client cannot hold a handler by dripping bytes.

aiohttp has no time limit on receiving a request body: a client that sends a large
Content-Length and then one byte every few seconds (slowloris) would keep a handler,
its memory and a connection forever. This middleware reads the whole body up front
within `Settings.body_timeout` seconds (aiohttp caches it, so handlers read it again for
free) and answers 408 otherwise, closing the connection.

Requests so malformed that aiohttp's HTTP parser rejects them (a NUL in a header, a
header line over 8 KiB) are answered 400 by aiohttp itself, before any middleware;
aiohttp then logs a full traceback at ERROR, so any client could flood the log.
`quiet_malformed_requests` turns those into one WARNING line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import http_exceptions, web

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


class _MalformedRequestFilter(logging.Filter):
    """Shorten aiohttp's report of a request its parser refused to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError) and 400 <= exc.code < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            reason = " ".join(str(exc.message).split())[:200]
            record.msg = "Refused a malformed request from %s: %s %s"
            record.args = (remote, exc.code, reason)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_malformed_requests() -> None:
    """Log requests aiohttp's parser refuses as one line instead of a traceback."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(_MalformedRequestFilter())
