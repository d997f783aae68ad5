"""Request parsing at the edge: JSON bodies, body schemas, path ids and query parameters.

Everything a client can get wrong is turned into a 4xx here, before any handler logic:
malformed or non-UTF-8 JSON, NaN/Infinity, absurd nesting (400); wrong field types or
missing fields, bad ids and bad query values (422); oversized bodies (413).
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from aiohttp import web

from no8sd import jsoncodec
from no8sd.api.limits import BODY
from no8sd.core.quickcheck import fast_checkable, fast_valid
from no8sd.errors import Invalid, NotFound, Unprocessable

if TYPE_CHECKING:
    import jsonschema

MAX_DEPTH = 64
_LONG_NUMBER = re.compile(rb"\d{19,}")  # orjson would read such an integer as a float
MAX_ID = 2**63 - 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_json(raw: bytes) -> Any:
    """Parse a JSON document strictly (UTF-8, no NaN/Infinity, bounded nesting).

    The usual body takes the fast path: no number long enough to lose digits in orjson, and
    too few brackets to nest deeper than allowed. orjson refuses everything the rules below
    refuse (NaN, invalid UTF-8, lone surrogates, infinite numbers); whatever it refuses is
    parsed again by the standard library, which says precisely what is wrong.
    """
    if (not _LONG_NUMBER.search(raw)
            and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("Malformed JSON: the body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise Invalid(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, int/float limits, constants
        raise Invalid(f"Malformed JSON: {str(exc)[:200]}") from None
    if _depth(value) > MAX_DEPTH:
        raise Invalid(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels")
    if "\\ud" in text or "\\uD" in text:
        # An escaped lone surrogate parses, but is no Unicode text: it could be neither
        # stored nor sent back as UTF-8.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid("Malformed JSON: a string holds an unpaired UTF-16 surrogate"
                          ) from None
    return value


def _depth(value: Any) -> int:
    """Return the nesting depth of a parsed JSON value, iteratively."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


async def json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """Read the request body as a JSON object."""
    raw = request.get(BODY)
    if raw is None:  # read by the body middleware, except for a request that has none
        raw = b""
    if not raw.strip():
        if required:
            raise Unprocessable("Request body is required (a JSON object)")
        return {}
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise Unprocessable("Request body must be a JSON object")
    return value


class BodySchema:
    """A JSON Schema for a request body; also published in the OpenAPI document.

    A body the quick path vouches for never touches jsonschema; the full validator (which
    words the 422) is compiled when a body first needs it. Every instance is listed in
    `declared`, so the tests check each schema against the metaschema once, instead of
    every start paying for it."""

    declared: ClassVar[list[BodySchema]] = []

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator: jsonschema.Draft7Validator | None = None
        self._fast = fast_checkable(schema)
        BodySchema.declared.append(self)

    def check(self, body: dict[str, Any]) -> dict[str, Any]:
        """Raise 422 listing every field problem; return the body unchanged if it fits."""
        if self._fast and fast_valid(self.schema, body):
            return body
        if self._validator is None:
            import jsonschema
            self._validator = jsonschema.Draft7Validator(self.schema)
        problems = sorted(self._validator.iter_errors(body), key=lambda e: list(map(str, e.path)))
        if problems:
            errors = [{"path": ".".join(map(str, e.absolute_path)) or "(body)",
                       "message": _field_message(e)} for e in problems[:20]]
            raise Unprocessable("; ".join(f"{e['path']}: {e['message']}" for e in errors),
                                errors=errors)
        return body


def _field_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        return f"must be of type {' or '.join(map(str, names))}"
    if error.validator == "required":
        return error.message.replace("'", "", 2)
    if error.validator == "additionalProperties":
        return error.message
    text = error.message
    return text if len(text) <= 200 else text[:197] + "..."


def path_id(request: web.Request, name: str) -> int:
    """Parse an integer id from the path: 422 if not an integer, 404 if out of range."""
    text = request.match_info[name]
    if not text.isascii() or not text.isdigit():
        raise Unprocessable(f"{name} must be an integer")
    # Length first: int() refuses (raises) on thousands of digits; no id is that long.
    if len(text.lstrip("0")) > 19:
        raise NotFound(_not_found_for(name))
    value = int(text)
    if value < 1 or value > MAX_ID:
        raise NotFound(_not_found_for(name))
    return value


def _not_found_for(name: str) -> str:
    return {
        "resource_id": "Resource not found",
        "resource_type_id": "Resource type not found",
    }.get(name, "Not found")


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 0,
              maximum: int = 1000) -> int:
    """Parse an integer query parameter within bounds (422 otherwise)."""
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if len(text) > 30:
        raise Unprocessable(f"{name} must be between {minimum} and {maximum}")
    try:
        value = int(text)
    except ValueError:
        raise Unprocessable(f"{name} must be an integer") from None
    if value < minimum or value > maximum:
        raise Unprocessable(f"{name} must be between {minimum} and {maximum}")
    return value


def query_str(request: web.Request, name: str, *, choices: tuple[str, ...] | None = None
              ) -> str | None:
    """Read an optional string query parameter ("" = absent), optionally from a fixed set."""
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if choices is not None and value not in choices:
        raise Unprocessable(f"{name} must be one of: {', '.join(choices)}")
    return value


def query_bool(request: web.Request, name: str) -> bool:
    """Parse an optional boolean query parameter (true/false/1/0)."""
    value = request.query.get(name, "").lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise Unprocessable(f"{name} must be true or false")


def json_response(data: Any, status: int = 200) -> web.Response:
    """Serialise `data` as a JSON response."""
    return web.Response(body=jsoncodec.dumps_bytes(data), status=status,
                        content_type="application/json", charset="utf-8")
