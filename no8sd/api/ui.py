"""The status page: the static files of no8sd/ui/, served at / (the page) and /ui/{name}.

The files ship inside the package (no build step). Each is read on its first request
and kept, with its ETag, until the file on disk changes, so nothing is read at start-up
and the whole set (a little over 100 KiB) is all the memory it costs. Replies carry a
strict Content-Security-Policy (only this origin's scripts and styles, nothing inline,
no framing; Trusted Types make any HTML-string sink throw), so even a mistake in the
page could not run a script that came with data. Clients revalidate with If-None-Match
on every load (Cache-Control: no-cache), so an upgraded daemon is seen at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from no8sd.api import schemas as s
from no8sd.api.routes import Routes
from no8sd.errors import NotFound

routes = Routes("status page")

UI_DIR: Final = Path(__file__).resolve().parent.parent / "ui"
# Flat folder, plain names: nothing a request names can leave it.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")
_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
CSP: Final = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
))
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    """One file as read from disk, with what identifies that version of it."""

    body: bytes
    etag: str
    content_type: str
    stamp: tuple[int, int]  # (mtime_ns, size) when read


_assets: dict[str, Asset] = {}
_UNCHANGED = ("Not modified: the If-None-Match ETag is current", None)


def load(name: str) -> Asset | None:
    """The file `name` of the page, from memory unless it changed on disk; None if absent."""
    if not _NAME.match(name):
        return None
    path = UI_DIR / name
    try:
        info = os.stat(path)
    except OSError:
        return None
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _assets.get(name)
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        body = path.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(body).hexdigest()[:20]
    asset = Asset(body, f'"{digest}"', _TYPES[name.rsplit(".", 1)[1]], stamp)
    _assets[name] = asset
    return asset


def _serve(request: web.Request, name: str) -> web.Response:
    asset = load(name)
    if asset is None:
        raise NotFound("Not found")
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
    # If-None-Match compares weakly (RFC 9110 13.1.2): "W/" prefixes do not matter.
    wanted = {tag.strip().removeprefix("W/") for tag in
              request.headers.get("If-None-Match", "").split(",")}
    if asset.etag in wanted or "*" in wanted:
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)


@routes.add("GET", "/", summary="The status page", public=True, content_type="text/html",
            responses={200: ("The page (HTML); it asks for a login when authentication is on",
                             None), 304: _UNCHANGED})
async def page(request: web.Request) -> web.Response:
    """Serve the status page itself; its data comes from the API, after login."""
    return _serve(request, "index.html")


@routes.add("GET", "/favicon.ico", summary="The icon browsers ask for by this name",
            public=True, content_type="image/svg+xml",
            responses={200: ("The status page's icon (SVG)", None), 304: _UNCHANGED})
async def favicon(request: web.Request) -> web.Response:
    """Serve the page's icon where browsers look for it unasked (from any page of the
    daemon, JSON included), instead of a 404 in every browser console."""
    return _serve(request, "icon.svg")


@routes.add("GET", "/ui/{name}", summary="A file of the status page (script, style, icon)",
            public=True, content_type="text/javascript",
            responses={200: ("The file", None), 304: _UNCHANGED,
                       404: ("No such file", s.ERROR)})
async def asset(request: web.Request) -> web.Response:
    """Serve one static file of the status page."""
    return _serve(request, request.match_info["name"])
