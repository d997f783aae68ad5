"""Cross-site protections: what a web page in the operator's browser must not be able to do.

Loopback is not a trust boundary on its own: any page the operator opens can send requests
to http://127.0.0.1:8000. Browsers send three kinds of request without asking the server
first (no CORS preflight): GET/HEAD, and POST with a "simple" body type (text/plain, form
data). And a page served from a name the attacker controls can re-point that name at
127.0.0.1 (DNS rebinding) and then also read the replies. So, before anything is read:

- a request with a body must declare it as JSON (`application/json` or
  `application/*+json`), else 415 — a page cannot send those cross-site without a
  preflight, which no8sd never approves;
- a state-changing request (POST, PUT, PATCH, DELETE) carrying an `Origin` that is not one
  of the daemon's own is refused with 403. Own origins: the address the request came in on
  (and `localhost` for a loopback one), each `--allowed-origin`, and the origin the request
  itself names in its Host header once that Host is acceptable (so the page works through
  an SSH tunnel or a TLS proxy);
- with `--auth none`, the Host header must name a loopback address, `localhost` or an
  address the daemon listens on, else 421: a rebound name never reaches the API.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from no8sd.api import keys
from no8sd.errors import Forbidden, MisdirectedRequest, UnsupportedMediaType

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATE_CHANGING = frozenset(("POST", "PUT", "PATCH", "DELETE"))
JSON_TYPES = ("application/json",)


def is_json_type(content_type: str) -> bool:
    """`application/json` or any `application/*+json` (merge patches, problem details ...)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def has_body(request: web.Request) -> bool:
    """Whether the request announces a body (a length above 0, or chunked transfer)."""
    length = request.content_length
    if length is not None:
        return length > 0
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


@functools.lru_cache(maxsize=256)
def split_host(value: str) -> tuple[str, int | None]:
    """Split a Host header (or an origin's netloc) into (lower-case host, port)."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


@functools.lru_cache(maxsize=256)
def is_loopback_name(host: str) -> bool:
    """localhost (and names under .localhost) or a loopback address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_address(request: web.Request) -> tuple[str, int] | None:
    """The address and port this connection came in on."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]).lower(), int(sockname[1])
    return None


def _bound_hosts(request: web.Request) -> set[str]:
    hosts = {h.strip("[]").lower() for h in request.app[keys.SETTINGS].hosts}
    local = _local_address(request)
    if local is not None:
        hosts.add(local[0])
    return hosts


def acceptable_host(request: web.Request) -> bool:
    """With auth off: the Host header names this machine (loopback, localhost, or a listening
    address). No Host header (an HTTP/1.0 tool) is not a browser, so it passes."""
    header = request.headers.get("Host")
    if header is None:
        return True
    host, _port = split_host(header)
    return bool(host) and (is_loopback_name(host) or host in _bound_hosts(request))


def _origin_key(scheme: str, host: str, port: int | None) -> str:
    default = {"http": 80, "https": 443}.get(scheme)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port in (None, default) else f":{port}")


def normalise_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in canonical form, or None for something that is no origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _origin_key(parts.scheme, parts.hostname.lower(), port)


def own_origins(request: web.Request) -> set[str]:
    """The origins whose pages may change state through this daemon."""
    found = set()
    for origin in request.app[keys.SETTINGS].allowed_origins:
        normalised = normalise_origin(origin)
        if normalised is not None:
            found.add(normalised)
    local = _local_address(request)
    if local is not None:
        bound_host, bound_port = local
        found.add(_origin_key("http", bound_host, bound_port))
        if is_loopback_name(bound_host):
            found.add(_origin_key("http", "localhost", bound_port))
    header = request.headers.get("Host")
    if header is not None:
        host, port = split_host(header)
        if host:
            # The request's own origin: a page served by this daemon under the name the
            # client used (a tunnel's port, a proxy's name). With auth off the Host has been
            # checked already; with tokens a foreign page cannot hold one anyway.
            for scheme in ("http", "https"):
                found.add(_origin_key(scheme, host, port))
    return found


@web.middleware
async def cross_site_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse rebound Host names (auth off), foreign Origins on state-changing requests,
    and bodies that are not JSON — before any body is read."""
    settings = request.app[keys.SETTINGS]
    if settings.auth == "none" and not acceptable_host(request):
        raise MisdirectedRequest(
            "Host header does not name this machine; with --auth none the API answers only "
            "to localhost, loopback and listening addresses")
    origin = request.headers.get("Origin")
    if origin is not None and request.method in STATE_CHANGING:
        normalised = normalise_origin(origin)
        if normalised is None or normalised not in own_origins(request):
            raise Forbidden("Cross-origin request refused: the Origin is not one of this "
                            "daemon's (see --allowed-origin)")
    if has_body(request) and not is_json_type(request.headers.get("Content-Type", "")):
        raise UnsupportedMediaType("Request body must be JSON (Content-Type: application/json)")
    return await handler(request)
