"""The export format shared by `no8sd export` and `no8sd import`: JSON lines.

One JSON object a line, in this order: the resource types (`kind: ResourceType`), then
the resources (`kind: Resource`), each optionally followed by its reconciliation history
(`kind: History`, oldest first, with --history). A type or resource line is a manifest
`no8sd apply` takes (POST's body plus `kind`), with what a manifest does not set beside
it: a resource's `finalizers` and `outputs`. State that belongs to the server holding
the object (ids, status, conditions, generations, times) is left out: the importing
server makes its own. The lines are built from REST records, so an export read from a
database file and one fetched from a daemon are the same text.

Reading an export checks every line before anything is sent (a line that is not JSON, an
unknown kind or field, a field of the wrong type, the same object twice), naming the
file and line of each problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from no8sd import jsoncodec

RESOURCE_TYPE: Final = "ResourceType"
RESOURCE: Final = "Resource"
HISTORY: Final = "History"

TYPE_FIELDS: Final = ("name", "version", "schema", "description", "metadata", "status")
RESOURCE_FIELDS: Final = ("name", "resource_type_name", "resource_type_version",
                          "action_plugin", "spec", "plugin_config", "metadata")
CARRIED_FIELDS: Final = ("finalizers", "outputs")  # not a manifest's: set after the apply
HISTORY_FIELDS: Final = ("generation", "success", "phase", "message", "error_message",
                         "resources_created", "resources_updated", "resources_deleted",
                         "reconcile_time", "trigger_reason", "duration_seconds",
                         "drift_detected", "triggered_by")

# The JSON type of each field a line may hold ("?" = or null); the required ones first.
_SHAPES: Final = {
    RESOURCE_TYPE: {"name": "string", "version": "string", "schema": "object",
                    "description": "string?", "metadata": "object?", "status": "string?"},
    RESOURCE: {"name": "string", "resource_type_name": "string",
               "resource_type_version": "string", "action_plugin": "string?",
               "spec": "object?", "plugin_config": "object?", "metadata": "object?",
               "finalizers": "strings?", "outputs": "object?"},
    HISTORY: {"resource_type_name": "string", "resource_type_version": "string",
              "resource_name": "string", "generation": "integer", "success": "boolean",
              "phase": "string", **dict.fromkeys(
                  ("message", "error_message", "reconcile_time", "trigger_reason",
                   "triggered_by"), "string?"),
              **dict.fromkeys(("resources_created", "resources_updated",
                               "resources_deleted"), "integer?"),
              "duration_seconds": "number?", "drift_detected": "boolean?"},
}
_REQUIRED: Final = {RESOURCE_TYPE: ("name", "version", "schema"),
                    RESOURCE: ("name", "resource_type_name", "resource_type_version"),
                    HISTORY: ("resource_type_name", "resource_type_version", "resource_name",
                              "generation", "success", "phase")}
MAX_PROBLEMS: Final = 20  # problems listed before the check gives up


# ---- writing -------------------------------------------------------------------------


def type_line(rest: dict[str, Any]) -> dict[str, Any]:
    """The line of a resource type, from its REST record."""
    return {"kind": RESOURCE_TYPE, **{key: rest.get(key) for key in TYPE_FIELDS}}


def resource_line(rest: dict[str, Any]) -> dict[str, Any]:
    """The line of a resource, from its REST record."""
    return {"kind": RESOURCE, **{key: rest.get(key) for key in RESOURCE_FIELDS},
            "finalizers": rest.get("finalizers") or [], "outputs": rest.get("outputs") or {}}


def history_line(resource: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The line of one history entry of `resource` (a REST record), from its REST record."""
    return {"kind": HISTORY, "resource_type_name": resource["resource_type_name"],
            "resource_type_version": resource["resource_type_version"],
            "resource_name": resource["name"],
            **{key: entry.get(key) for key in HISTORY_FIELDS}}


def dumps(line: dict[str, Any]) -> str:
    """One line of the file (without its newline)."""
    return jsoncodec.dumps(line)


# ---- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One object of an export file and where it is (1-based line number)."""

    number: int
    kind: str
    body: dict[str, Any]

    def key(self) -> tuple[str, ...]:
        """What names the object on a server: a type's name and version, a resource's
        type, version and name."""
        b = self.body
        if self.kind == RESOURCE_TYPE:
            return (self.kind, b["name"], b["version"])
        if self.kind == RESOURCE:
            return (self.kind, b["resource_type_name"], b["resource_type_version"], b["name"])
        return (self.kind, b["resource_type_name"], b["resource_type_version"],
                b["resource_name"])

    def label(self) -> str:
        """`resourcetype/Widget/v1` or `widget/a` (as `no8sd apply` names objects)."""
        b = self.body
        if self.kind == RESOURCE_TYPE:
            return f"resourcetype/{b['name']}/{b['version']}"
        if self.kind == RESOURCE:
            return f"{b['resource_type_name'].lower()}/{b['name']}"
        return f"history of {b['resource_type_name'].lower()}/{b['resource_name']}"


@dataclass
class Census:
    """What checking a whole file found."""

    types: int = 0
    resources: int = 0
    history: int = 0

    @property
    def objects(self) -> int:
        """Types and resources: the objects an import writes."""
        return self.types + self.resources


def lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line that is not blank."""
    for number, text in enumerate(stream, start=1):
        if text.strip():
            yield number, text


def parse(number: int, text: str) -> Line | str:
    """One line as an object, or what is wrong with it."""
    try:
        body = jsoncodec.loads(text.strip())
    except ValueError as exc:
        return f"not valid JSON ({_reason(exc)})"
    if not isinstance(body, dict):
        return "not a JSON object"
    kind = body.get("kind")
    if kind not in _SHAPES:
        return (f"kind must be {RESOURCE_TYPE}, {RESOURCE} or {HISTORY}, not "
                f"{jsoncodec.dumps(kind)}" if kind is not None else "kind is missing")
    shape = _SHAPES[kind]
    for key, value in body.items():
        if key == "kind":
            continue
        expected = shape.get(key)
        if expected is None:
            return f"unknown field '{key}' in a {kind} line"
        if not _fits(value, expected):
            return f"{key}: must be {_article(expected.rstrip('?'))}" + \
                (" or null" if expected.endswith("?") else "")
    for key in _REQUIRED[kind]:
        if body.get(key) is None:
            return f"{key}: is required in a {kind} line"
    return Line(number, kind, {k: v for k, v in body.items() if k != "kind"})


def check(stream: IO[str]) -> tuple[Census, list[tuple[int, str]]]:
    """Check every line of an export; return what it holds and the problems found (line
    number, problem), at most MAX_PROBLEMS of them."""
    census = Census()
    problems: list[tuple[int, str]] = []
    seen: dict[tuple[str, ...], int] = {}
    for number, text in lines(stream):
        found = parse(number, text)
        if isinstance(found, str):
            problems.append((number, found))
        elif found.kind == HISTORY:
            census.history += 1
        else:
            key = found.key()
            first = seen.setdefault(key, number)
            if first != number:
                problems.append((number, f"{found.label()} is already on line {first}"))
            elif found.kind == RESOURCE_TYPE:
                census.types += 1
            else:
                census.resources += 1
        if len(problems) >= MAX_PROBLEMS:
            break
    return census, problems


def _fits(value: Any, expected: str) -> bool:
    if value is None:
        return expected.endswith("?")
    kind = expected.rstrip("?")
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)  # number


def _article(kind: str) -> str:
    return {"strings": "a list of strings", "object": "an object",
            "integer": "an integer"}.get(kind, f"a {kind}")


def _reason(exc: ValueError) -> str:
    """A JSON error without orjson's or json's line number (the line is named already)."""
    text = str(exc).splitlines()[0] if str(exc) else "syntax error"
    colno = getattr(exc, "colno", None)
    msg = getattr(exc, "msg", None)
    if msg is not None and colno is not None:
        return f"{msg} at column {colno}"
    return text.split(": line ")[0]
