"""What validation can do without jsonschema: the budgets, and a quick path for simple schemas.

Most resource types (and every request body the API declares) use a handful of keywords;
`fast_valid` shows such a value valid in microseconds, on the event loop, and only a
value it cannot vouch for goes to no8sd.core.validation, which loads jsonschema when
first needed, so a daemon whose specs are simple never pays for importing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

VALIDATION_BUDGET = 0.5  # seconds one spec validation may take
SCHEMA_BUDGET = 2.0  # seconds checking (and compiling the patterns of) one schema may take

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
# Keywords the fast path understands; annotations are ignored by validation anyway.
_FAST_KEYWORDS = frozenset(("type", "required", "properties", "items", "maxItems", "maxLength",
                            "minLength", "enum", "minimum", "maximum", "description",
                            "default", "title", "examples", "$comment", "$schema",
                            "additionalProperties"))


def fast_checkable(schema: Any) -> bool:
    """Answer whether `schema` uses only keywords `fast_valid` understands."""
    if not isinstance(schema, dict) or not set(schema) <= _FAST_KEYWORDS:
        return False
    if schema.get("additionalProperties", False) is not False:
        return False  # only "no other keys" is understood here
    kind = schema.get("type")
    if kind is not None and not all(k in _TYPES for k in (
            kind if isinstance(kind, list) else [kind])):
        return False
    subs = list(schema.get("properties", {}).values())
    if "items" in schema:
        subs.append(schema["items"])
    return isinstance(schema.get("properties", {}), dict) and all(map(fast_checkable, subs))


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    return bool(a == b)


def fast_valid(schema: dict[str, Any], value: Any) -> bool:
    """Answer quickly whether `value` fits a fast-checkable schema.

    True means valid. False means "not shown valid": the caller then runs jsonschema,
    which gives the messages (and the final word on borderline cases such as 1.0 for
    an integer). Full validation costs more than the rest of a write, so the common
    valid case skips it.
    """
    kind = schema.get("type")
    if kind is not None and not any(_TYPES[k](value) for k in (
            kind if isinstance(kind, list) else [kind])):
        return False
    if "enum" in schema and not any(_same_json(value, option) for option in schema["enum"]):
        return False
    if isinstance(value, str):
        return bool(schema.get("minLength", 0) <= len(value)
                    <= schema.get("maxLength", len(value)))
    if isinstance(value, dict):
        if any(key not in value for key in schema.get("required", ())):
            return False
        if "additionalProperties" in schema and not set(value) <= set(
                schema.get("properties", {})):
            return False
        return all(fast_valid(sub, value[key])
                   for key, sub in schema.get("properties", {}).items() if key in value)
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            return False
        items = schema.get("items")
        return items is None or all(fast_valid(items, v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return not (("minimum" in schema and value < schema["minimum"])
                    or ("maximum" in schema and value > schema["maximum"]))
    return True
