"""JSON Schema handling for resource types: checking schemas and validating specs.

A type's schema is checked against its metaschema (Draft 7 unless it names another
with `$schema`). Specs are validated with the format checker on, and every violation
is reported with its path. Compiled validators are cached per type and revision.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import jsonschema
from jsonschema import exceptions as js_exceptions
from jsonschema import validators

from no8sd.errors import Invalid

MAX_REPORTED = 50
MAX_MESSAGE = 300
_CACHE_SIZE = 256


def _validator_class(schema: dict[str, Any]) -> type:
    return validators.validator_for(schema, default=jsonschema.Draft7Validator)


def check_schema(schema: Any) -> None:
    """Raise Invalid unless `schema` is a valid JSON Schema."""
    if not isinstance(schema, dict):
        raise Invalid("Invalid schema: a schema must be a JSON object")
    try:
        cls = _validator_class(schema)
        cls.check_schema(schema)
        # Compiling catches what the metaschema cannot, such as unresolvable local $refs.
        cls(schema, format_checker=cls.FORMAT_CHECKER)
    except js_exceptions.SchemaError as exc:
        raise Invalid(f"Invalid schema: {_short(exc.message)}") from None
    except RecursionError:
        raise Invalid("Invalid schema: nested too deeply") from None
    except Exception as exc:  # referencing errors and the like
        raise Invalid(f"Invalid schema: {_short(str(exc))}") from None


def _path(error: js_exceptions.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class SpecValidators:
    """A small LRU of compiled validators keyed by (type id, updated_at)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[int, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, resource_type: dict[str, Any]) -> Any:
        key = (resource_type["id"], resource_type["updated_at"])
        with self._lock:
            validator = self._cache.get(key)
            if validator is not None:
                self._cache.move_to_end(key)
                return validator
        schema = resource_type["schema"]
        cls = _validator_class(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        with self._lock:
            self._cache[key] = validator
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return validator

    def validate(self, resource_type: dict[str, Any], spec: Any) -> None:
        """Raise Invalid listing every violation ("path: message") if `spec` does not fit."""
        validator = self._get(resource_type)
        try:
            found = sorted(validator.iter_errors(spec), key=lambda e: list(map(str, e.path)))
        except RecursionError:
            raise Invalid("Spec validation failed: (root): nested too deeply") from None
        if not found:
            return
        errors = [{"path": _path(e), "message": _short(e.message)} for e in found[:MAX_REPORTED]]
        text = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        if len(found) > MAX_REPORTED:
            text += f"; and {len(found) - MAX_REPORTED} more"
        raise Invalid(f"Spec validation failed: {text}", errors=errors)
