"""Server-sent event streams: GET /api/v1/events and GET /api/v1/resources/{id}/events.

Each stream is a cursor over the event log. `id:` is the log id, so a client that
reconnects with `Last-Event-ID` (header, or `?last_event_id=` for browsers) resumes
exactly after it, across daemon restarts too. A resume point older than retention
first gets a GAP event (re-list, then carry on). Streams read from the hub's shared
ring of recent events, or from the store when they have fallen behind, and wait on a
doorbell otherwise: no per-client queue, so a slow client costs nothing but its own
socket buffer, and a client that stops reading is disconnected after a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from no8sd.api import access, keys
from no8sd.api import schemas as s
from no8sd.api.routes import Param, Routes
from no8sd.api.util import path_id, query_str
from no8sd.config import Settings
from no8sd.core.principal import Principal
from no8sd.errors import TooManyRequests, Unavailable, Unprocessable
from no8sd.store.rows import Event

routes = Routes("events")

BATCH = 500
FRAMES_PER_WRITE = 64
WRITE_TIMEOUT = 30.0
MAX_ID = 2**63 - 1
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Streams:
    """The open event streams: in all, and per caller.

    One caller may hold at most `--max-streams-per-user` streams, and the last few of the
    `--max-streams` slots are kept for admins, so no single user can lock everyone (the
    admin included) out of watching. With auth off there is one local caller and only the
    overall limit applies.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.by_caller: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self.tasks)

    def open(self, caller: Principal, settings: Settings) -> int | None:
        """Admit one more stream for `caller` or raise; returns the key to close it with."""
        reserve = admin_reserve(settings.max_streams)
        if len(self.tasks) >= settings.max_streams or (
                not caller.is_admin and len(self.tasks) >= settings.max_streams - reserve):
            raise Unavailable("Too many event streams are open; try again later")
        key = caller.user_id
        if key is not None and self.by_caller[key] >= settings.max_streams_per_user:
            raise TooManyRequests(f"You have {self.by_caller[key]} event streams open, the "
                                  "most one user may hold; close one first")
        if key is not None:
            self.by_caller[key] += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        return key

    def close(self, key: int | None) -> None:
        """Forget the current task's stream."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.discard(task)
        if key is not None:
            self.by_caller[key] -= 1
            if self.by_caller[key] <= 0:
                del self.by_caller[key]


def admin_reserve(max_streams: int) -> int:
    """Stream slots only admins can take: a few, never more than a twentieth."""
    return min(8, max_streams // 20)


STREAMS = web.AppKey("sse_streams", Streams)

_EVENT_SCHEMA = {
    "type": "string",
    "description": "text/event-stream frames: `id: <log id>`, `event: CREATED|MODIFIED|DELETED|"
                   "RECONCILED|REMOVED|GAP`, `data: <JSON payload>`, blank line; comment lines "
                   "starting with ':' are heartbeats.",
}
_ERR = ("Error", s.ERROR)
LAST_EVENT_ID = Param("last_event_id", {"type": "integer", "minimum": 0},
                      "Resume after this event id (same as the Last-Event-ID header)")


def _start_cursor(request: web.Request) -> int | None:
    """Return the resume point from the Last-Event-ID header or query, if any."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw == "":
        return None
    raw = raw.strip()
    # Length first: int() refuses (raises) on thousands of digits.
    if len(raw) > 19 or not raw.isascii() or not raw.isdigit() or int(raw) > MAX_ID:
        raise Unprocessable("Last-Event-ID must be a non-negative integer event id")
    return int(raw)


@functools.lru_cache(maxsize=1024)
def _encode(event_id: int, event_type: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n".encode()


def _frame(event: Event) -> bytes:
    """The SSE frame of an event, encoded once however many watchers receive it."""
    return _encode(event.id, event.event_type, event.data)


async def _stream(request: web.Request, matches: Callable[[Event], bool], *,
                  resource_id: int | None = None, type_name: str | None = None,
                  version: str | None = None) -> web.StreamResponse:
    app = request.app
    settings = app[keys.SETTINGS]
    core = app[keys.CORE]
    hub = core.hub
    streams = app[STREAMS]
    cursor = _start_cursor(request)
    if request.method == "HEAD":
        return web.Response(headers=SSE_HEADERS)
    key = streams.open(access.principal(request), settings)
    response = web.StreamResponse(headers=SSE_HEADERS)
    subscription = hub.subscribe()
    stopping = app[keys.STOPPING]
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        if cursor is None:
            cursor = hub.last_id
        else:
            oldest, newest = await core.event_bounds()
            newest = max(newest, hub.last_id)
            if cursor + 1 < oldest or cursor > newest:
                # The client missed events we no longer have (or holds an id from another
                # log): tell it to re-list, then carry on from what we do have.
                resume = min(oldest - 1, newest) if cursor + 1 < oldest else newest
                gap = {"event_type": "GAP", "last_event_id": cursor, "resume_after": resume,
                       "detail": "events after last_event_id are no longer available; "
                                 "re-list the resources, then continue from this stream"}
                await _write(response, f"id: {resume}\nevent: GAP\ndata: {json.dumps(gap)}\n\n"
                             .encode())
                cursor = resume
        while not stopping.is_set():
            subscription.signal.clear()
            batch = hub.recent_after(cursor)
            if batch is None:
                published = hub.last_id  # read first: everything up to it is committed
                batch = await core.events_after(cursor, limit=BATCH, resource_id=resource_id,
                                                resource_type=type_name, version=version)
                if not batch:
                    # Nothing up to `published` matches this stream: skip ahead to it.
                    cursor = max(cursor, published)
            # Everything this wake-up delivers goes out as one write.
            frames = []
            ended = False
            for event in batch:
                cursor = event.id
                if matches(event):
                    frames.append(_frame(event))
                    if resource_id is not None and event.event_type == "REMOVED":
                        ended = True
                        break
                    if len(frames) >= FRAMES_PER_WRITE:  # bounded memory while catching up
                        await _write(response, b"".join(frames))
                        frames = []
            if frames:
                await _write(response, b"".join(frames))
            if ended:
                break
            if batch:
                continue
            # Shutdown rings every doorbell too (Hub.ring_all), so one wait covers both.
            try:
                async with asyncio.timeout(settings.sse_heartbeat):
                    await subscription.signal.wait()
            except TimeoutError:
                await _write(response, b": heartbeat\n\n")
    except (ConnectionError, asyncio.CancelledError, TimeoutError):
        pass
    finally:
        hub.unsubscribe(subscription)
        streams.close(key)
    with contextlib.suppress(Exception):
        await response.write_eof()
    return response


async def _write(response: web.StreamResponse, data: bytes) -> None:
    """Write to the client; a client that accepts nothing for WRITE_TIMEOUT is dropped."""
    try:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await response.write(data)
    except TimeoutError:
        raise ConnectionError("the client stopped reading") from None


def _readable(request: web.Request) -> Callable[[str, str], bool]:
    caller = access.principal(request)
    scopes = caller.scopes("READ")
    if scopes is None:
        return lambda _t, _v: True
    return lambda type_name, version: caller.can("READ", type_name, version)


@routes.add("GET", "/api/v1/events", summary="Watch all resource events (SSE)",
            query=(Param("resource_type", {"type": "string"}),
                   Param("resource_type_version", {"type": "string"}), LAST_EVENT_ID),
            responses={200: ("An event stream", _EVENT_SCHEMA), 422: _ERR,
                       429: ("Too many streams for this user", s.ERROR),
                       503: ("Too many streams", s.ERROR)},
            content_type="text/event-stream")
async def watch_all(request: web.Request) -> web.StreamResponse:
    """Stream every committed change the caller may read, optionally for one type."""
    type_name = query_str(request, "resource_type")
    version = query_str(request, "resource_type_version")
    readable = _readable(request)

    def matches(event: Event) -> bool:
        return ((type_name is None or event.resource_type_name == type_name)
                and (version is None or event.resource_type_version == version)
                and readable(event.resource_type_name, event.resource_type_version))

    return await _stream(request, matches, type_name=type_name, version=version)


@routes.add("GET", "/api/v1/resources/{resource_id}/events",
            summary="Watch one resource's events (SSE); ends when the resource is removed",
            query=(LAST_EVENT_ID,),
            responses={200: ("An event stream", _EVENT_SCHEMA), 404: _ERR, 422: _ERR,
                       429: ("Too many streams for this user", s.ERROR),
                       503: ("Too many streams", s.ERROR)},
            content_type="text/event-stream")
async def watch_one(request: web.Request) -> web.StreamResponse:
    """Stream the changes of one resource."""
    resource_id = path_id(request, "resource_id")
    await access.load_resource(request, "READ", resource_id)
    return await _stream(request, lambda event: event.resource_id == resource_id,
                         resource_id=resource_id)
