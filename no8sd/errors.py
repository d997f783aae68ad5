"""Domain errors shared by the store, the rules and the HTTP layer.

Each error carries the HTTP status it maps to, so the store and the domain can raise
them without importing aiohttp, and the API's one error middleware can shape them.
"""

from __future__ import annotations

from typing import Any


class No8sdError(Exception):
    """Base of every error a client can cause; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class Invalid(No8sdError):
    """The request is well-formed but its content is not acceptable (bad spec, bad schema)."""

    status = 400


class Unprocessable(No8sdError):
    """A field has the wrong type, is missing, or is out of range."""

    status = 422


class Unauthorized(No8sdError):
    """No valid credentials were presented."""

    status = 401


class Forbidden(No8sdError):
    """The caller is known but may not do this."""

    status = 403


class NotFound(No8sdError):
    """The addressed object does not exist."""

    status = 404


class Conflict(No8sdError):
    """The request conflicts with the stored state (duplicate, in use, being deleted)."""

    status = 409


class RequestTimeout(No8sdError):
    """The client did not send its request in time; the connection is closed."""

    status = 408
    headers = {"Connection": "close"}


class TooLarge(No8sdError):
    """The request body is larger than allowed."""

    status = 413


class UnsupportedMediaType(No8sdError):
    """The request body is not of a type the API accepts (JSON)."""

    status = 415


class MisdirectedRequest(No8sdError):
    """The request names a host this daemon does not answer for."""

    status = 421


class TooManyRequests(No8sdError):
    """The caller is being throttled."""

    status = 429


class BadGateway(No8sdError):
    """A server the daemon depends on (the LDAP directory) failed or could not be reached."""

    status = 502


class Unavailable(No8sdError):
    """The daemon cannot serve this now (starting, stopping, at a limit)."""

    status = 503


class StartupError(Exception):
    """A problem that stops the daemon from starting; its message is shown as one line."""
