"""Server-side apply: make the stored state match a list of manifests, object by object.

A manifest is the body POST already takes (a resource type: name, version, schema...;
a resource: name, resource_type_name, resource_type_version, spec...), with an optional
`kind` (`ResourceType` or `Resource`) when the fields do not tell. For each manifest the
caller's right is checked (admin for types; CREATE or UPDATE on the resource's type,
by whether it exists), then the object is created when missing, updated when a field the
manifest gives differs, and left alone otherwise: `created`, `configured`, `unchanged`,
or an error with its status and detail. Every write goes through core.types.Types and
core.resources.Resources, so validation, admission and events are exactly those of
POST/PUT; an unchanged object is not written at all (no event). One manifest failing
does not stop the others, and each object is one write, so a failure leaves nothing
half-written for it.

Fields a manifest leaves out (or sets to null) are left as they are, as with PUT; a
given field replaces the stored one wholesale. The read-only fields of a REST record
(id, status, generation, ...) are ignored, so a record fetched with GET can be edited
and applied again; any other unknown field is refused, so a typo is not silently lost.
Types are applied before resources, so one apply can bring a type and its resources;
results come back in manifest order. The resources are applied concurrently (a resource
named twice in one apply is applied in order), so the writes of one apply share commits.

A dry run is the real write of each object, run and rolled back (Database.preview), and
answers what would change with an RFC 6902 JSON Patch (`diff`) from the stored object to
the new one, each replaced or removed value preceded by a `test` holding the old one. A
resource whose type this same dry run would create cannot be previewed against the
store; it is checked against that type's schema and its reconciler instead.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import jsonpatch

from no8sd.core.accounts import check_name
from no8sd.core.principal import Principal
from no8sd.core.resources import Resources
from no8sd.core.types import NAME_PATTERN, VERSION_PATTERN, Types
from no8sd.errors import Conflict, Forbidden, Invalid, No8sdError, NotFound, Unprocessable
from no8sd.store.rows import Resource, ResourceType

RESOURCE_TYPE: Final = "ResourceType"
RESOURCE: Final = "Resource"
KINDS: Final = (RESOURCE_TYPE, RESOURCE)
CREATED, CONFIGURED, UNCHANGED, ERROR = "created", "configured", "unchanged", "error"
MAX_MANIFESTS: Final = 1000
# Resources of one apply in flight at once: enough to fill the writer's batches, few
# enough not to flood an admission webhook.
CONCURRENT: Final = 32

# What each kind's manifest may set, with the JSON type each field takes ("?" = or null).
_WRITABLE: Final = {
    RESOURCE_TYPE: {"name": "string", "version": "string", "schema": "object",
                    "resource_schema": "object", "description": "string?",
                    "metadata": "object?", "status": "string?"},
    RESOURCE: {"name": "string", "resource_type_name": "string",
               "resource_type_version": "string", "action_plugin": "string?",
               "spec": "object?", "plugin_config": "object?", "metadata": "object?"},
}
# Fields of the REST records that describe state rather than intent: ignored.
_READ_ONLY: Final = {
    RESOURCE_TYPE: frozenset({"id", "created_at", "updated_at"}),
    RESOURCE: frozenset({"id", "status", "status_message", "generation", "observed_generation",
                         "finalizers", "conditions", "created_at", "updated_at",
                         "last_reconcile_time", "outputs", "retry_count",
                         "next_reconcile_time", "deleted_at"}),
}
_REQUIRED: Final = {RESOURCE_TYPE: ("name", "version"),
                    RESOURCE: ("name", "resource_type_name", "resource_type_version")}
_PYTHON_TYPES: Final = {"string": str, "object": dict}
_TYPE_NAME = re.compile(NAME_PATTERN)
_TYPE_VERSION = re.compile(VERSION_PATTERN)
_DIFFED: Final = {RESOURCE_TYPE: ("schema", "description", "metadata", "status"),
                  RESOURCE: ("spec", "metadata", "plugin_config")}


@dataclass(frozen=True)
class Outcome:
    """What applying one manifest did (or, in a dry run, would do)."""

    index: int
    kind: str | None
    name: str | None
    type_name: str | None = None  # a resource's type; a type's own name is `name`
    version: str | None = None  # a resource's type version, or a type's version
    result: str = ERROR
    record: Resource | ResourceType | None = None
    diff: list[dict[str, Any]] | None = None
    status: int | None = None  # the HTTP status of an error
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
    note: str | None = None


class Applier:
    """Applies manifests through the resource and type services."""

    def __init__(self, resources: Resources, types: Types) -> None:
        self.resources = resources
        self.types = types

    async def apply(self, manifests: Sequence[Any], caller: Principal, *,
                    dry_run: bool = False) -> list[Outcome]:
        """Apply each manifest as `caller`; return one outcome per manifest, in order."""
        if len(manifests) > MAX_MANIFESTS:
            raise Unprocessable(f"at most {MAX_MANIFESTS} manifests per apply")
        parsed = [_parse(i, m) for i, m in enumerate(manifests)]
        outcomes: dict[int, Outcome] = {}
        previewed: dict[tuple[str, str], ResourceType] = {}
        # Types first, one at a time, so the resources of a type applied alongside find it.
        waves: list[list[_Manifest]] = []
        seen: dict[tuple[str, str], int] = {}
        for index, found in enumerate(parsed):
            if isinstance(found, Outcome):
                outcomes[index] = found
            elif found.kind == RESOURCE_TYPE:
                outcomes[index] = await self._one(found, caller, dry_run, previewed)
            else:
                # A resource named twice goes in a later wave: applied after the first.
                wave = seen.get((found.type_name, found.name), 0)
                seen[(found.type_name, found.name)] = wave + 1
                if wave == len(waves):
                    waves.append([])
                waves[wave].append(found)
        # Then the resources of a wave all at once: the single writer commits the writes
        # waiting together in one transaction, instead of one commit (one wait for the
        # disk) after another.
        gate = asyncio.Semaphore(CONCURRENT)

        async def one(m: _Manifest) -> Outcome:
            async with gate:
                return await self._one(m, caller, dry_run, previewed)

        for manifests_of_wave in waves:
            done = await asyncio.gather(*(one(m) for m in manifests_of_wave))
            outcomes.update((outcome.index, outcome) for outcome in done)
        return [outcomes[i] for i in range(len(parsed))]

    async def _one(self, m: _Manifest, caller: Principal, dry_run: bool,
                   previewed: dict[tuple[str, str], ResourceType]) -> Outcome:
        try:
            if m.kind == RESOURCE_TYPE:
                outcome = await self._apply_type(m, caller, dry_run)
                if dry_run and outcome.result == CREATED and outcome.record is not None:
                    assert isinstance(outcome.record, ResourceType)
                    previewed[(m.name, m.version)] = outcome.record
                return outcome
            return await self._apply_resource(m, caller, dry_run, previewed)
        except No8sdError as exc:
            return m.outcome(ERROR, status=exc.status, detail=exc.detail, errors=exc.errors)

    async def _apply_type(self, m: _Manifest, caller: Principal, dry_run: bool) -> Outcome:
        if not caller.is_admin:
            raise Forbidden("Admin role required")
        fields = m.fields
        schema = fields.get("schema", fields.get("resource_schema"))
        wanted = {key: value for key, value in (
            ("schema", schema), ("description", fields.get("description")),
            ("metadata", fields.get("metadata")), ("status", fields.get("status")))
            if value is not None}
        current = await self.types.get(m.name, m.version)
        if current is None:
            if schema is None:
                raise Unprocessable("schema is required")
            if wanted.get("status", "active") != "active":
                raise Unprocessable("a new resource type starts active")
            created = await self.types.create(m.name, m.version, schema,
                                              fields.get("description"),
                                              fields.get("metadata"), dry_run=dry_run)
            return m.outcome(CREATED, record=created, diff=_diff(RESOURCE_TYPE, None, created))
        changed = {k: v for k, v in wanted.items() if not _same(getattr(current, k), v)}
        if not changed:
            return m.outcome(UNCHANGED, record=current, diff=[])
        updated = await self.types.update(current.id, changed, dry_run=dry_run)
        return m.outcome(CONFIGURED, record=updated, diff=_diff(RESOURCE_TYPE, current, updated))

    async def _apply_resource(self, m: _Manifest, caller: Principal, dry_run: bool,
                              previewed: dict[tuple[str, str], ResourceType]) -> Outcome:
        fields = m.fields
        check_name(m.name)
        try:
            current: Resource | None = await self.resources.get_by_name(
                m.type_name, m.version, m.name)
        except NotFound:
            current = None
        if current is None:
            _require(caller, "CREATE", m)
            pending_type = previewed.get((m.type_name, m.version))
            if pending_type is not None:
                return await self._check_against(m, pending_type)
            created = await self.resources.create(
                name=m.name, type_name=m.type_name, version=m.version,
                spec=fields.get("spec"), plugin_config=fields.get("plugin_config"),
                metadata=fields.get("metadata"), action_plugin=fields.get("action_plugin") or "",
                dry_run=dry_run, actor=caller.username)
            return m.outcome(CREATED, record=created, diff=_diff(RESOURCE, None, created))
        _require(caller, "UPDATE", m)
        if current.deleted_at is not None:
            raise Conflict("Resource is being deleted; apply it again once it is gone")
        action_plugin = fields.get("action_plugin")
        if action_plugin is not None and action_plugin != current.action_plugin:
            raise Invalid("action_plugin cannot be changed; delete the resource and apply it "
                          "again")
        wanted = {k: fields[k] for k in ("spec", "plugin_config", "metadata")
                  if fields.get(k) is not None}
        if all(_same(getattr(current, k), v) for k, v in wanted.items()):
            return m.outcome(UNCHANGED, record=current, diff=[])
        updated = await self.resources.update(current.id, wanted, dry_run=dry_run,
                                              actor=caller.username)
        if all(_same(getattr(updated, k), getattr(current, k)) for k in wanted):
            # Admission turned the change back into the stored state: nothing was written.
            # (Compared by content: two writes within one tick of the clock share a time.)
            return m.outcome(UNCHANGED, record=current, diff=[])
        return m.outcome(CONFIGURED, record=updated, diff=_diff(RESOURCE, current, updated))

    async def _check_against(self, m: _Manifest, pending: ResourceType) -> Outcome:
        """Dry run of a resource whose type the same dry run creates: check what can be
        checked without the type in the store."""
        spec = m.fields.get("spec")
        if self.resources.owner_of(m.type_name) is None:
            raise Invalid(f"No reconciler plugin registered for resource type "
                          f"'{m.type_name}' and no action_plugin specified")
        if not spec:
            raise Invalid("spec is required")
        await self.types.validate(pending, spec)
        wanted = {k: m.fields.get(k) or {} for k in _DIFFED[RESOURCE]}
        return m.outcome(CREATED, diff=_patch({}, wanted),
                         note=f"its type {m.type_name}/{m.version} is created by this apply: "
                              "the spec was checked against that schema; admission runs "
                              "when it is applied")


# ---- manifests ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Manifest:
    index: int
    kind: str
    name: str
    version: str  # a type's version, or a resource's type version
    type_name: str  # a resource's type ("" for a type)
    fields: dict[str, Any]

    def outcome(self, result: str, **values: Any) -> Outcome:
        return Outcome(self.index, self.kind, self.name,
                       type_name=self.type_name or None, version=self.version,
                       result=result, **values)


def kind_of(manifest: dict[str, Any]) -> str | None:
    """The kind a manifest names, or the one its fields imply (None if neither)."""
    kind = manifest.get("kind")
    if kind is not None:
        return kind if isinstance(kind, str) else None
    if "resource_type_name" in manifest:
        return RESOURCE
    if "version" in manifest or "schema" in manifest or "resource_schema" in manifest:
        return RESOURCE_TYPE
    return None


def _parse(index: int, manifest: Any) -> _Manifest | Outcome:
    """Check one manifest's shape; a problem is its outcome (422), not an exception."""
    name = manifest.get("name") if isinstance(manifest, dict) else None
    name = name if isinstance(name, str) else None

    def refuse(detail: str, kind: str | None = None) -> Outcome:
        return Outcome(index, kind, name, status=422, detail=detail)

    if not isinstance(manifest, dict):
        return refuse("a manifest must be a JSON object")
    kind = kind_of(manifest)
    if kind not in KINDS:
        given = manifest.get("kind")
        return refuse(f"kind must be one of: {', '.join(KINDS)}" if given is not None else
                      "kind is missing and cannot be inferred (give kind: Resource or "
                      "kind: ResourceType)")
    writable = _WRITABLE[kind]
    fields: dict[str, Any] = {}
    for key, value in manifest.items():
        if key == "kind" or key in _READ_ONLY[kind]:
            continue
        expected = writable.get(key)
        if expected is None:
            return refuse(f"unknown field '{key}' in a {kind} manifest", kind)
        if not (value is None and expected.endswith("?")) and \
                not isinstance(value, _PYTHON_TYPES[expected.rstrip("?")]):
            return refuse(f"{key}: must be of type {expected.rstrip('?')}", kind)
        fields[key] = value
    for key in _REQUIRED[kind]:
        if key not in fields:
            return refuse(f"{key}: is a required field", kind)
    if kind == RESOURCE_TYPE:
        if not _TYPE_NAME.match(fields["name"]) or not _TYPE_VERSION.match(fields["version"]):
            return refuse("name and version must start with a letter or digit and contain only "
                          "letters, digits, '.', '_' or '-' (name up to 128 characters, "
                          "version up to 50)", kind)
        if fields.get("status") not in (None, "active", "deprecated"):
            return refuse("status: must be active or deprecated", kind)
        return _Manifest(index, kind, fields["name"], fields["version"], "", fields)
    return _Manifest(index, kind, fields["name"], fields["resource_type_version"],
                     fields["resource_type_name"], fields)


# ---- comparing and diffing ------------------------------------------------------------


def _require(caller: Principal, operation: str, m: _Manifest) -> None:
    if not caller.can(operation, m.type_name, m.version):
        raise Forbidden("Insufficient permissions")


def _same(a: Any, b: Any) -> bool:
    """JSON values compared by their canonical text (1 and 1.0, or True and 1, differ)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _document(kind: str, record: Resource | ResourceType | None) -> dict[str, Any]:
    """The part of a record a manifest sets, as one JSON document to diff."""
    if record is None:
        return {}
    return {key: getattr(record, key) for key in _DIFFED[kind]}


def _diff(kind: str, before: Resource | ResourceType | None,
          after: Resource | ResourceType) -> list[dict[str, Any]]:
    return _patch(_document(kind, before), _document(kind, after))


def _patch(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `before` into `after`. Each `replace` and `remove` is
    preceded by a `test` of the value it changes, so the patch shows the old values too
    (and applies only to the document it was made from)."""
    operations: list[dict[str, Any]] = []
    document = copy.deepcopy(before)
    for operation in jsonpatch.make_patch(before, after).patch:
        if operation["op"] in ("replace", "remove"):
            old = jsonpatch.JsonPointer(operation["path"]).resolve(document)
            operations.append({"op": "test", "path": operation["path"], "value": old})
        operations.append(operation)
        # A copy of the operation: its value is part of `after` (a stored record).
        document = jsonpatch.apply_patch(document, [copy.deepcopy(operation)], in_place=True)
    return operations
