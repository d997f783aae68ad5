"""A route table that also describes each route for the OpenAPI document.

Every API module declares its handlers with `@routes.add(...)`, giving the request
body schema, query parameters and responses next to the handler. The app registers
them with aiohttp and the OpenAPI document is built from the same list, so a route
cannot exist without being documented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from no8sd.api.util import BodySchema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    """A documented query parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass
class Route:
    """One HTTP route and its documentation."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: BodySchema | None = None
    query: tuple[Param, ...] = ()
    responses: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    public: bool = False  # reachable without authentication
    content_type: str = "application/json"  # of the successful reply
    content_types: tuple[str, ...] = ("application/json",)  # the request body may be


class Routes:
    """A list of routes declared by one API module."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.items: list[Route] = []

    def add(self, method: str, path: str, *, summary: str, body: BodySchema | None = None,
            query: tuple[Param, ...] = (),
            responses: Mapping[int, tuple[str, dict[str, Any] | None]] | None = None,
            public: bool = False, content_type: str = "application/json",
            content_types: tuple[str, ...] = ("application/json",),
            ) -> Callable[[Handler], Handler]:
        """Declare a handler for `method path`."""

        def decorate(handler: Handler) -> Handler:
            self.items.append(Route(method, path, handler, summary, self.tag, body, query,
                                    dict(responses or {}), public, content_type,
                                    content_types))
            return handler

        return decorate

    def register(self, app: web.Application) -> None:
        """Add every route to an aiohttp application."""
        for route in self.items:
            if route.method == "GET":  # HEAD works wherever GET does
                app.router.add_get(route.path, route.handler, allow_head=True)
            else:
                app.router.add_route(route.method, route.path, route.handler)


LIMIT = Param("limit", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100},
              "Maximum number of items to return")
OFFSET = Param("offset", {"type": "integer", "minimum": 0, "default": 0},
               "Number of items to skip")
