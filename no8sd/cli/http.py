"""The client's connection to a running daemon: requests, errors, exit codes, event streams.

The standard library's HTTP client is enough for one request at a time, and importing it
costs a few milliseconds where aiohttp costs half a second, so the client commands start
fast. Every failure becomes a ClientError: one line on stderr (`no8sd: error: ...`) and a
documented exit code, never a traceback. Event streams (server-sent events) resume with
`Last-Event-ID` after a dropped connection or a daemon restart, so nothing is lost or
repeated; a resume point the daemon no longer has arrives as a GAP event.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

import click

from no8sd import __version__

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_DENIED: Final = 4  # also a conflict
EXIT_TIMEOUT: Final = 5

DEFAULT_SERVER: Final = "http://127.0.0.1:8000"
REQUEST_TIMEOUT: Final = 60.0
STREAM_READ_TIMEOUT: Final = 90.0  # well above the daemon's heartbeat (15 s by default)


def exit_code_for(status: int) -> int:
    """The exit code of an HTTP error status."""
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403, 409):
        return EXIT_DENIED
    if status in (408, 504):
        return EXIT_TIMEOUT
    return EXIT_ERROR


class ClientError(click.ClickException):
    """A failure shown as one line on stderr, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = exit_code

    @property  # click exits with this
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"no8sd: error: {self.message}", err=True, file=file)


class ApiError(ClientError):
    """The daemon answered with an error status; `detail` is its explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail, exit_code_for(status))
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """One server-sent event: its log id, type and JSON payload."""

    id: int | None
    type: str
    data: Any


class Connection:
    """Talks to one daemon as one caller (a bearer token, or none when auth is off)."""

    def __init__(self, server: str, token: str | None = None, *,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"the server must be an http:// or https:// URL, not {server!r}",
                              EXIT_USAGE)
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._parts = parts
        self._base = parts.path.rstrip("/")
        self._http: http.client.HTTPConnection | None = None

    def _open(self, timeout: float | None) -> http.client.HTTPConnection:
        try:
            port = self._parts.port
        except ValueError:
            raise ClientError(f"the server URL {self.server!r} has a bad port",
                              EXIT_USAGE) from None
        host = self._parts.hostname or ""
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"no8sd-cli/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        """The request target for an API path, with query parameters (None ones left out)."""
        shown = {k: str(v).lower() if isinstance(v, bool) else v
                 for k, v in (query or {}).items() if v is not None}
        suffix = "?" + urllib.parse.urlencode(shown) if shown else ""
        return self._base + path + suffix

    def request(self, method: str, path: str, body: Any = None, *,
                query: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON answer (None when empty)."""
        return self.exchange(method, path, body, query=query)[0]

    def exchange(self, method: str, path: str, body: Any = None, *,
                 query: dict[str, Any] | None = None) -> tuple[Any, http.client.HTTPMessage]:
        """Send one request; return the decoded JSON answer and the answer's headers."""
        target = self.url(path, query)
        headers = self._headers("application/json")
        payload = None
        if body is not None:
            payload = json.dumps(body, default=_plain).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self._http is not None
            if self._http is None:
                self._http = self._open(self.timeout)
            try:
                self._http.request(method, target, body=payload, headers=headers)
                response = self._http.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # The daemon closed an idle kept-alive connection: ask once more on a new one.
                if not reused or attempt == 2:
                    raise ClientError(f"no8sd at {self.server} closed the connection") from None
            except OSError as exc:
                self.close()
                raise self._unreachable(exc) from None
            except http.client.HTTPException as exc:
                self.close()
                raise ClientError(f"bad answer from {self.server}: {exc!r}") from None
        if response.status >= 400:
            raise ApiError(response.status, _detail(data, response.reason))
        if not data:
            return None, response.headers
        try:
            return json.loads(data), response.headers
        except ValueError:
            raise ClientError(f"{self.server} did not answer JSON; is it no8sd?") from None

    def _unreachable(self, exc: OSError) -> ClientError:
        if isinstance(exc, TimeoutError):
            return ClientError(f"no answer from no8sd at {self.server} within "
                               f"{self.timeout:g} s", EXIT_TIMEOUT)
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, socket.gaierror):
            reason = f"unknown host {self._parts.hostname}"
        else:
            reason = (exc.strerror or str(exc)).lower()
        return ClientError(f"cannot reach no8sd at {self.server}: {reason}")

    def close(self) -> None:
        """Close the kept-alive connection (a new one opens on the next request)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # ---- event streams -------------------------------------------------------------

    def events(self, path: str, *, query: dict[str, Any] | None = None,
               last_event_id: int | None = None, deadline: float | None = None,
               on_reconnect: Any = None) -> Iterator[Event]:
        """Yield the events of an SSE stream for ever (or until `deadline`, a monotonic
        time, when it raises a ClientError with EXIT_TIMEOUT). Each connection first
        yields its opening frame (type ""), so callers know when they are connected. A
        dropped connection is opened again with the last id seen, so no event is lost or
        repeated; while the daemon is down, `on_reconnect(reason)` is called before each
        new attempt."""
        cursor = last_event_id
        pause = 0.2
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ClientError("timed out", EXIT_TIMEOUT)
            timeout = STREAM_READ_TIMEOUT if left is None else min(STREAM_READ_TIMEOUT, left)
            conn = self._open(timeout)
            try:
                headers = self._headers("text/event-stream")
                if cursor is not None:
                    headers["Last-Event-ID"] = str(cursor)
                conn.request("GET", self.url(path, query), headers=headers)
                response = conn.getresponse()
                if response.status >= 400:
                    raise ApiError(response.status, _detail(response.read(), response.reason))
                pause = 0.2
                for event in _frames(response):
                    if event.id is not None:
                        cursor = event.id
                    yield event
                reason = "the stream ended"
            except (OSError, http.client.HTTPException) as exc:
                reason = str(self._unreachable(exc).message) if isinstance(exc, OSError) \
                    else "the connection broke"
            finally:
                conn.close()
            if deadline is not None and time.monotonic() >= deadline:
                raise ClientError("timed out", EXIT_TIMEOUT)
            if on_reconnect is not None:
                on_reconnect(reason)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _frames(response: http.client.HTTPResponse) -> Iterator[Event]:
    """Parse text/event-stream frames (comments skipped); a frame without `event:` has
    type ""."""
    fields: dict[str, str] = {}
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if fields or data:
                event_id = fields.get("id", "")
                payload = "\n".join(data)
                yield Event(int(event_id) if event_id.isdigit() else None,
                            fields.get("event", ""), json.loads(payload) if payload else None)
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data":
            data.append(value)
        else:
            fields[key] = value


def _plain(value: Any) -> Any:
    """JSON for what YAML reads but JSON lacks: dates and times become ISO 8601 text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise ClientError(f"a {type(value).__name__} value cannot be sent as JSON", EXIT_USAGE)


def _detail(data: bytes, reason: str) -> str:
    """The daemon's `detail`, or the status reason when the body is not our JSON."""
    try:
        parsed = json.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace").strip()
        return text.splitlines()[0][:300] if text else reason
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    return str(detail) if detail else reason
