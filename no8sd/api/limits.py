"""Reading request bodies within bounds, so no client can make the daemon hold memory or a
handler for long — before it has even authenticated.

- A request that matches no route (404) or no method (405) is answered without reading
  its body.
- A route that anyone may call (login, health, the OpenAPI document) accepts at most
  PUBLIC_BODY_BYTES; every other route at most `Settings.max_body_bytes`. A declared
  length above the limit is refused (413) before a byte is read; a chunked body is
  refused as soon as it passes the limit.
- A body must arrive within `Settings.body_timeout` (else 408 and the connection closes):
  aiohttp itself has no such limit, so a client dripping one byte a second would hold a
  handler forever.
- Only so many bodies are read at once: MAX_BODY_READS in all, MAX_BODY_READS_PER_ADDRESS
  per client address (429 / 503 beyond, at once). Bodies that arrived whole with their
  headers (the usual small JSON) take no slot.

The body read here is kept on the request (`BODY`), where api.util.json_body finds it.

Requests so malformed that aiohttp's HTTP parser rejects them (a NUL in a header, a
header line over 8 KiB) are answered 400 by aiohttp itself, before any middleware;
aiohttp then logs a full traceback at ERROR, so any client could flood the log.
`quiet_malformed_requests` turns those into one WARNING line.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from aiohttp import http_exceptions, web

from no8sd.api import keys
from no8sd.errors import RequestTimeout, TooLarge, TooManyRequests, Unavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_BODY_BYTES: Final = 16 * 1024
MAX_BODY_READS: Final = 32
MAX_BODY_READS_PER_ADDRESS: Final = 8
BODY = web.RequestKey("body", bytes)


class Readers:
    """Counts bodies being read (globally and per client address)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_address: Counter[str] = Counter()

    def acquire(self, address: str) -> None:
        if self.by_address[address] >= MAX_BODY_READS_PER_ADDRESS:
            raise TooManyRequests("Too many request bodies are being sent from this address "
                                  "at once; retry when the others are done")
        if self.total >= MAX_BODY_READS:
            raise Unavailable("Too many request bodies are being received; retry shortly")
        self.total += 1
        self.by_address[address] += 1

    def release(self, address: str) -> None:
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


READERS = web.AppKey("body_readers", Readers)


def body_middleware(routes: Iterable[Any]) -> Any:
    """Build the middleware that reads every body within its route's limits."""
    public = frozenset(route.handler for route in routes if route.public)

    @web.middleware
    async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None:
            raise match.http_exception  # 404 / 405: the body is never read
        if request.body_exists:
            settings = request.app[keys.SETTINGS]
            limit = PUBLIC_BODY_BYTES if match.handler in public else settings.max_body_bytes
            request[BODY] = await _read(request, limit, settings.body_timeout)
        return await handler(request)

    return read_body


async def _read(request: web.Request, limit: int, timeout: float) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"Request body too large: the limit is {limit} bytes")
    content = request.content
    if content.is_eof():
        # The whole body came with the headers (the usual small JSON): nothing to wait for.
        return await _collect(content, limit)
    readers = request.app[READERS]
    address = request.remote or "unknown"
    readers.acquire(address)
    try:
        async with asyncio.timeout(timeout):
            return await _collect(content, limit)
    except TimeoutError:
        raise RequestTimeout(f"Request body not received within {timeout:g}s") from None
    finally:
        readers.release(address)


async def _collect(content: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"Request body too large: the limit is {limit} bytes")
        chunks.append(chunk)


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
