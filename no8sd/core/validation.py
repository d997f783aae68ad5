"""JSON Schema handling for resource types: checking schemas and validating specs.

A type's schema is checked against its metaschema (Draft 7 unless it names another
with `$schema`). Specs are validated with the format checker on, and every violation
is reported with its path. Compiled validators are cached per type and revision.

Evaluation is bounded, because a schema can be made expensive on purpose or by
accident: a schema is at most MAX_SCHEMA_BYTES, each regex at most MAX_PATTERN_CHARS;
regexes (`pattern`, `patternProperties`, `additionalProperties` beside them) run on the
`regex` engine with a timeout, since `re` backtracks exponentially on patterns such as
`^(a|aa)+$` and cannot be interrupted; `uniqueItems` compares canonical keys instead of
every pair; and every keyword checks a per-validation deadline, so `$ref`/`anyOf`
combinations that explode are cut off. An overrun is a 400, never a stalled daemon.

This module loads jsonschema and regex (about a tenth of the daemon's start-up): it is
imported when the first schema or spec needs more than no8sd.core.quickcheck.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import regex
from jsonschema import exceptions as js_exceptions
from jsonschema import validators

from no8sd.core.quickcheck import SCHEMA_BUDGET, VALIDATION_BUDGET, fast_checkable, fast_valid
from no8sd.errors import Invalid
from no8sd.store.rows import ResourceType

MAX_REPORTED = 50
MAX_MESSAGE = 300
_CACHE_SIZE = 256
MAX_SCHEMA_BYTES = 256 * 1024
MAX_PATTERN_CHARS = 1000


class _Overrun(Exception):
    """Raised inside validation when the deadline has passed."""


_deadline = threading.local()


def _check_deadline() -> float:
    """Return the seconds left for this validation; raise _Overrun when none are."""
    left = getattr(_deadline, "at", float("inf")) - time.monotonic()
    if left <= 0:
        raise _Overrun
    return left


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return regex.compile(pattern)


def _search(pattern: str, text: str) -> bool:
    try:
        # concurrent=True: the engine lets go of the GIL while it matches, so a hostile
        # pattern running in a worker thread does not starve the event loop.
        return _compiled(pattern).search(
            text, timeout=min(_check_deadline(), 60.0), concurrent=True
        ) is not None
    except TimeoutError:
        raise _Overrun from None


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(patrn, instance):
        yield js_exceptions.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in patterns.items():
        for key, value in instance.items():
            if _search(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def _additional_properties(validator: Any, extra: Any, instance: Any,
                           schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    patterns = list(schema.get("patternProperties", {}))
    known = schema.get("properties", {})
    extras = [k for k in instance
              if k not in known and not any(_search(p, k) for p in patterns)]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        names = ", ".join(repr(k) for k in sorted(extras))
        if patterns:
            yield js_exceptions.ValidationError(
                f"{names} do not match any of the regexes: "
                f"{', '.join(repr(p) for p in sorted(patterns))}")
        else:
            yield js_exceptions.ValidationError(
                f"Additional properties are not allowed ({names} unexpected)")


def _canonical(value: Any) -> Any:
    """A hashable key equal for JSON-equal values (1 == 1.0, but true != 1)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, _canonical(v)) for k, v in value.items()))
    return ("other", json.dumps(value, sort_keys=True, default=str))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if unique and validator.is_type(instance, "array"):
        seen = set()
        for item in instance:
            key = _canonical(item)
            if key in seen:
                yield js_exceptions.ValidationError("array has non-unique elements")
                return
            seen.add(key)


def _with_deadline(fn: Callable[..., Any]) -> Callable[..., Any]:
    def checked(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _check_deadline()
        return fn(validator, value, instance, schema)

    return checked


_REPLACED = {"pattern": _pattern, "patternProperties": _pattern_properties,
             "additionalProperties": _additional_properties, "uniqueItems": _unique_items}
_BOUNDED: dict[Any, Any] = {}
_BOUNDED_LOCK = threading.Lock()


def _validator_class(schema: dict[str, Any]) -> Any:
    """The schema's validator class (its $schema, default Draft 7), with bounded keywords."""
    base: Any = validators.validator_for(schema, default=jsonschema.Draft7Validator)
    with _BOUNDED_LOCK:
        bounded = _BOUNDED.get(base)
        if bounded is None:
            keywords = {name: _with_deadline(_REPLACED.get(name, fn))
                        for name, fn in base.VALIDATORS.items()}
            bounded = validators.extend(base, keywords)  # type: ignore[no-untyped-call]
            _BOUNDED[base] = bounded
    return bounded


def _check_patterns(schema: Any) -> None:
    """Refuse regexes that are too long or that the bounded engine cannot compile."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        found = []
        if isinstance(node.get("pattern"), str):
            found.append(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            found.extend(node["patternProperties"])
        for patrn in found:
            if len(patrn) > MAX_PATTERN_CHARS:
                raise Invalid(f"Invalid schema: a pattern is longer than {MAX_PATTERN_CHARS} "
                              "characters")
            _check_deadline()  # compiling a long pattern takes milliseconds; hundreds add up
            try:
                _compiled(patrn)
            except (regex.error, ValueError) as exc:
                raise Invalid(f"Invalid schema: pattern {_short(repr(patrn))} does not "
                              f"compile: {exc}") from None
        stack.extend(node.values())


def check_schema(schema: Any, budget: float = SCHEMA_BUDGET) -> None:
    """Raise Invalid unless `schema` is a valid JSON Schema (checked within `budget` s)."""
    if not isinstance(schema, dict):
        raise Invalid("Invalid schema: a schema must be a JSON object")
    if len(json.dumps(schema, separators=(",", ":"))) > MAX_SCHEMA_BYTES:
        raise Invalid(f"Invalid schema: larger than {MAX_SCHEMA_BYTES} bytes")
    _deadline.at = time.monotonic() + budget
    try:
        _check_patterns(schema)
        cls = _validator_class(schema)
        # The metaschema's "regex" format would compile every pattern again with `re`;
        # _check_patterns has already compiled them with the engine specs are checked with.
        cls.check_schema(schema, format_checker=_SCHEMA_FORMATS)
        # Compiling catches what the metaschema cannot, such as unresolvable local $refs.
        cls(schema, format_checker=cls.FORMAT_CHECKER)
    except _Overrun:
        raise Invalid(f"Invalid schema: checking it took longer than {budget:g}s; use "
                      "fewer or simpler patterns") from None
    except js_exceptions.SchemaError as exc:
        raise Invalid(f"Invalid schema: {_short(exc.message)}") from None
    except RecursionError:
        raise Invalid("Invalid schema: nested too deeply") from None
    except Exception as exc:  # referencing errors and the like
        raise Invalid(f"Invalid schema: {_short(str(exc))}") from None
    finally:
        _deadline.at = float("inf")


_SCHEMA_FORMATS = jsonschema.FormatChecker(
    [name for name in jsonschema.FormatChecker.checkers if name != "regex"])


def _path(error: js_exceptions.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class SpecValidators:
    """A small LRU of compiled validators keyed by (type id, updated_at)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[int, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, resource_type: ResourceType) -> Any:
        key = (resource_type.id, resource_type.updated_at)
        with self._lock:
            validator = self._cache.get(key)
            if validator is not None:
                self._cache.move_to_end(key)
                return validator
        schema = resource_type.schema
        cls = _validator_class(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        with self._lock:
            self._cache[key] = validator
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return validator

    @staticmethod
    def quick(resource_type: ResourceType, spec: Any) -> bool:
        """Whether `spec` is shown valid by the fast path (cheap enough for the event loop);
        False means the full validation must decide."""
        schema = resource_type.schema
        return fast_checkable(schema) and fast_valid(schema, spec)

    def validate(self, resource_type: ResourceType, spec: Any,
                 budget: float = VALIDATION_BUDGET) -> None:
        """Raise Invalid listing every violation ("path: message") if `spec` does not fit.
        May take up to `budget` seconds: run it off the event loop."""
        if self.quick(resource_type, spec):
            return
        validator = self._get(resource_type)
        _deadline.at = time.monotonic() + budget
        try:
            found = sorted(validator.iter_errors(spec), key=lambda e: list(map(str, e.path)))
        except RecursionError:
            raise Invalid("Spec validation failed: (root): nested too deeply") from None
        except _Overrun:
            raise Invalid(f"Spec validation failed: evaluating the resource type's schema "
                          f"took longer than {budget:g}s; simplify the schema "
                          "(patterns, $ref or anyOf nesting)") from None
        finally:
            _deadline.at = float("inf")
        if not found:
            return
        errors = [{"path": _path(e), "message": _short(e.message)} for e in found[:MAX_REPORTED]]
        text = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        if len(found) > MAX_REPORTED:
            text += f"; and {len(found) - MAX_REPORTED} more"
        raise Invalid(f"Spec validation failed: {text}", errors=errors)
