"""The one error middleware: every error leaves as JSON {"detail": ...} with its status.

Domain errors carry their own status; aiohttp's HTTP exceptions (404 unknown route,
405, 413 body too large) are reshaped; anything else is logged with its traceback and
answered with a bare 500 whose body reveals nothing about the internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from no8sd.api import access, keys
from no8sd.core.admission import AdmissionFailed
from no8sd.errors import No8sdError

log = logging.getLogger("no8sd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REASONS = {
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request body too large",
}


def error_response(status: int, detail: str, *, errors: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """Build the JSON error body every error path uses."""
    body: dict[str, object] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


def _detail_for(request: web.Request, exc: No8sdError) -> str:
    """The detail this caller may see: an admission failure's reason (hosts, ports) only
    for callers who may read the webhooks."""
    if isinstance(exc, AdmissionFailed):
        caller = request.get(access.PRINCIPAL)
        if caller is not None and caller.has_system("view_webhooks"):
            return exc.reason
    return exc.detail


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into the JSON error envelope."""
    try:
        return await handler(request)
    except No8sdError as exc:
        headers = getattr(exc, "headers", None)
        return error_response(exc.status, _detail_for(request, exc), errors=exc.errors,
                              headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            settings = request.app.get(keys.SETTINGS)
            limit = settings.max_body_bytes if settings else None
            detail = f"Request body too large: the limit is {limit} bytes" if limit else \
                _REASONS[413]
        else:
            detail = _REASONS.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        return error_response(exc.status, detail, headers=headers)
    except (ConnectionResetError, ConnectionError):
        raise
    except Exception:
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal server error")
