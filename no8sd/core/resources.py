"""Resource operations behind every door (HTTP, command line, input plugins).

Callers have already authorized the caller; this module decides whether a change is
allowed (the type exists and has an owner, the spec fits the schema, admission allows
it) and hands the write to the store as one unit (no8sd.core.changes). A dry run is the
real write, run and rolled back, so it answers exactly what would be stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from no8sd.core import changes
from no8sd.core.admission import AdmissionChain
from no8sd.core.types import Types
from no8sd.core.views import resource_public, resource_rest_json
from no8sd.errors import Conflict, Invalid, NotFound, Unprocessable
from no8sd.store import resources as store
from no8sd.store.db import Database
from no8sd.store.rows import History, Resource, ResourceType
from no8sd.timeutil import Clock

# Who owns a resource type: the name of its reconciler, or None (the plugin host knows).
OwnerLookup = Callable[[str], str | None]


class Resources:
    """Create, update, delete, trigger and finalizer edits of resources."""

    def __init__(self, db: Database, types: Types, admission: AdmissionChain, *,
                 owner_of: OwnerLookup, action_plugins: Callable[[], list[str]],
                 clock: Clock) -> None:
        self.db = db
        self.types = types
        self.admission = admission
        self.owner_of = owner_of
        self.action_plugins = action_plugins
        self.clock = clock

    # ---- reads -----------------------------------------------------------------------

    async def find(self, resource_id: int) -> Resource | None:
        """One resource by id, or None (served from memory when cached)."""
        return await store.find(self.db, resource_id)

    async def get(self, resource_id: int) -> Resource:
        """One resource by id (404 if absent)."""
        found = await store.find(self.db, resource_id)
        if found is None:
            raise NotFound("Resource not found")
        return found

    async def find_by_name(self, type_name: str, name: str,
                           version: str | None = None) -> Resource | None:
        """One resource by type, name and (optionally) version, or None."""
        return await store.find_by_name(self.db, type_name, version, name)

    async def get_by_name(self, type_name: str, version: str | None, name: str) -> Resource:
        """One resource by type, name and (optionally) version (404 if absent)."""
        found = await store.find_by_name(self.db, type_name, version, name)
        if found is None:
            raise NotFound("Resource not found")
        return found

    async def page(self, *, status: str | None = None, type_name: str | None = None,
                   version: str | None = None, limit: int = 100, offset: int = 0,
                   allowed: list[tuple[str, str]] | None = None) -> list[Resource]:
        """Resources in id order; `allowed` limits them to (type, version) scopes."""
        return await store.list_resources(self.db, status=status, type_name=type_name,
                                          version=version, limit=limit, offset=offset,
                                          allowed=allowed)

    async def page_json(self, *, status: str | None = None, type_name: str | None = None,
                        version: str | None = None, limit: int = 100, offset: int = 0,
                        after_id: int | None = None,
                        allowed: list[tuple[str, str]] | None = None
                        ) -> tuple[str, int | None]:
        """One page in id order as a JSON array (REST views), and the id to continue after
        when the page is full (None at the end)."""
        rows = await store.page_rows(self.db, status=status, type_name=type_name,
                                     version=version, limit=limit, offset=offset,
                                     after_id=after_id, allowed=allowed)
        body = "[" + ",".join(resource_rest_json(row) for row in rows) + "]"
        return body, (rows[-1][0] if rows and len(rows) == limit else None)  # [0]: the id

    async def search(self, *, status: str | None = None, type_name: str | None = None,
                     version: str | None = None, name_contains: str | None = None,
                     sort: str = "created", descending: bool = False, limit: int = 50,
                     offset: int = 0, allowed: list[tuple[str, str]] | None = None
                     ) -> tuple[int, list[Resource]]:
        """(how many match, one page of them in `sort` order): the filters of `page` plus
        a search in names; `allowed` limits them to (type, version) scopes."""
        return await store.search(self.db, status=status, type_name=type_name,
                                  version=version, name_contains=name_contains, sort=sort,
                                  descending=descending, limit=limit, offset=offset,
                                  allowed=allowed)

    async def counts(self, *, allowed: list[tuple[str, str]] | None = None
                     ) -> list[tuple[str, str, str, int]]:
        """(type, version, status, count) of the resources in `allowed` scopes."""
        rows = await store.count_by_state(self.db)
        if allowed is None:
            return rows
        return [row for row in rows
                if any(t in ("*", row[0]) and v in ("*", row[1]) for t, v in allowed)]

    async def history(self, resource_id: int, limit: int) -> list[History]:
        """A resource's newest history entries first."""
        return await store.history(self.db, resource_id, limit)

    # ---- writes ----------------------------------------------------------------------

    async def resolve_type(self, type_name: str, version: str, *,
                           action_plugin: str = "") -> tuple[ResourceType, str]:
        """Find the type and the reconciler that owns it, or explain why not (400)."""
        if action_plugin:
            available = self.action_plugins()
            if action_plugin not in available:
                raise Invalid(f"Unknown action plugin: {action_plugin}. Available plugins: "
                              f"{', '.join(available) or 'none'}")
        owner = self.owner_of(type_name)
        # An action plugin is a tool the type's reconciler uses (ctx.get_action_plugin), not
        # a replacement for it: every resource needs a reconciler that owns its type.
        if owner is None and not action_plugin:
            raise Invalid(f"No reconciler plugin registered for resource type '{type_name}' "
                          "and no action_plugin specified")
        if owner is None:
            raise Invalid(f"No reconciler plugin registered for resource type '{type_name}'; "
                          f"action plugin '{action_plugin}' runs only through the type's "
                          "reconciler")
        resource_type = await self.types.get(type_name, version)
        if resource_type is None:
            raise Invalid(f"Resource type {type_name}/{version} not found")
        return resource_type, owner

    async def create(self, *, name: str, type_name: str, version: str,
                     spec: dict[str, Any] | None, plugin_config: dict[str, Any] | None,
                     metadata: dict[str, Any] | None, action_plugin: str = "",
                     dry_run: bool = False, actor: str | None = None) -> Resource:
        """Validate and store a new resource, owned (finalized) by its reconciler; `actor`
        is who asks (shown in its events and in the history of the reconciles it causes)."""
        resource_type, owner = await self.resolve_type(type_name, version,
                                                       action_plugin=action_plugin)
        if not spec:
            raise Invalid("spec is required")
        if resource_type.status == "deprecated":
            raise Invalid(f"Resource type {type_name}/{version} is deprecated; "
                          "new resources cannot be created with it")
        await self.types.validate(resource_type, spec)
        view = {"name": name, "resource_type_name": type_name,
                "resource_type_version": version, "spec": spec}
        mutated = await self.admission("CREATE", view, None)
        if mutated is not spec:
            await self.types.validate(resource_type, mutated)
        return await self.db.write_as(
            actor, changes.create, preview=dry_run, resource_type=resource_type, name=name,
            spec=mutated, plugin_config=plugin_config or {}, metadata=metadata or {},
            action_plugin=action_plugin, finalizers=[owner], now=self.clock.now())

    async def update(self, resource_id: int, fields: dict[str, Any], *,
                     dry_run: bool = False, actor: str | None = None,
                     current: Resource | None = None) -> Resource:
        """Replace spec / plugin_config / metadata after validation and admission.

        Given `current` (the record the fields were computed from), the write is refused
        with Stale if the resource changed since, so a read-modify-write loses nothing.
        """
        expected = current.updated_at if current is not None else None
        if current is None:
            current = await store.find(self.db, resource_id)
        if current is None:
            raise NotFound("Resource not found")
        fields = dict(fields)
        if "spec" in fields:
            if not fields["spec"]:
                raise Invalid("spec is required")
            resource_type = await self.types.get(current.resource_type_name,
                                                 current.resource_type_version)
            if resource_type is None:
                raise Invalid("Resource type of this resource no longer exists")
            await self.types.validate(resource_type, fields["spec"])
            view = {"name": current.name, "resource_type_name": current.resource_type_name,
                    "resource_type_version": current.resource_type_version,
                    "spec": fields["spec"]}
            mutated = await self.admission("UPDATE", view, resource_public(current))
            if mutated is not fields["spec"]:
                await self.types.validate(resource_type, mutated)
            fields["spec"] = mutated
        return await self.db.write_as(actor, changes.update, resource_id, fields,
                                      self.clock.now(), preview=dry_run,
                                      expect_updated_at=expected)

    async def patch(self, resource_id: int, patch: dict[str, Any], *, dry_run: bool = False,
                    actor: str | None = None) -> Resource:
        """Apply a JSON merge patch (RFC 7396) to spec / metadata / plugin_config, then
        update as a PUT would (validation, admission; a new generation only when spec or
        plugin_config change). Computed from the stored record and written only if nobody
        changed it meanwhile (retried a few times otherwise)."""
        unknown = sorted(set(patch) - set(PATCHABLE))
        if unknown:
            raise Unprocessable(f"Only {', '.join(PATCHABLE)} can be patched, not "
                                f"{', '.join(unknown)}")
        for attempt in range(PATCH_ATTEMPTS):
            current = await store.find(self.db, resource_id)
            if current is None:
                raise NotFound("Resource not found")
            fields = {}
            for name, change in patch.items():
                merged = merge_patch(getattr(current, name), change)
                if not isinstance(merged, dict):
                    raise Unprocessable(f"{name} must stay a JSON object")
                fields[name] = merged
            try:
                return await self.update(resource_id, fields, dry_run=dry_run, actor=actor,
                                         current=current)
            except changes.Stale:
                if attempt == PATCH_ATTEMPTS - 1:
                    raise Conflict("Resource keeps changing; try the patch again") from None
        raise AssertionError("unreachable")

    async def merge_outputs(self, resource_id: int, outputs: dict[str, Any], *,
                            actor: str | None = None) -> Resource:
        """Merge the given keys into a resource's outputs (no new generation)."""
        return await self.db.write_as(actor, changes.merge_outputs, resource_id, outputs,
                                      self.clock.now())

    async def query(self, *, type_name: str | None = None, version: str | None = None,
                    status: str | None = None, where: dict[str, Any] | None = None,
                    limit: int = 100) -> list[Resource]:
        """Resources in id order, filtered on values inside spec, metadata or outputs
        (see store.resources.compile_where for the `where` format)."""
        return await store.query(self.db, type_name=type_name, version=version,
                                 status=status, where=where or {}, limit=limit)

    async def delete(self, resource_id: int, *,
                     actor: str | None = None) -> tuple[Resource, bool]:
        """Start deleting a resource; returns (resource, removed_at_once)."""
        current = await store.find(self.db, resource_id)
        if current is not None and current.deleted_at is None:
            view = {"name": current.name, "resource_type_name": current.resource_type_name,
                    "resource_type_version": current.resource_type_version,
                    "spec": current.spec}
            await self.admission("DELETE", view, None)
        return await self.db.write_as(actor, changes.delete, resource_id, self.clock.now())

    async def trigger(self, resource_id: int, *, actor: str | None = None) -> Resource:
        """Make a resource due now and wake its owner."""
        return await self.db.write_as(actor, changes.trigger, resource_id, self.clock.now())

    async def edit_finalizers(self, resource_id: int, add: list[str], remove: list[str], *,
                              actor: str | None = None) -> Resource | None:
        """Add then remove finalizers; None means the resource is gone as a result."""
        current = await store.find(self.db, resource_id)
        if current is None:
            raise NotFound("Resource not found")
        owner = self.owner_of(current.resource_type_name)
        return await self.db.write_as(actor, changes.edit_finalizers, resource_id, add,
                                      remove, owner, self.clock.now())


PATCHABLE = ("spec", "metadata", "plugin_config")
PATCH_ATTEMPTS = 5


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, null removes a key, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged

