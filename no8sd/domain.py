"""Domain operations behind the HTTP API: the checks that come before a write.

Handlers parse and authorize; this module decides whether a change is allowed (type
exists and is claimed, spec fits the schema, admission allows it) and hands the write
to the store as one unit. It knows nothing about HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from no8sd.errors import Invalid, NotFound
from no8sd.plugins.host import PluginHost
from no8sd.records import spec_hash
from no8sd.schemas import SpecValidators, check_schema
from no8sd.store import resource_types as types_store
from no8sd.store import resources as resources_store
from no8sd.store.db import Database
from no8sd.timeutil import now

# An admission hook: (operation, resource view, old resource or None) -> possibly mutated spec.
Admission = Callable[[str, dict[str, Any], dict[str, Any] | None], Awaitable[dict[str, Any]]]


class Domain:
    """Resource-type and resource operations, shared by every API route."""

    def __init__(self, db: Database, host: PluginHost) -> None:
        self.db = db
        self.host = host
        self.validators = SpecValidators()
        self.admission: Admission | None = None
        self.action_plugins: Callable[[], list[str]] = list
        # Types change only through this object, so a plain dict stays exact; the version
        # stops a lookup that raced with a change from caching what it read before it.
        self._types: dict[tuple[str, str], dict[str, Any]] = {}
        self._types_version = 0

    # ---- resource types ---------------------------------------------------------------

    async def create_type(self, name: str, version: str, schema: Any, description: str | None,
                          metadata: dict[str, Any] | None) -> dict[str, Any]:
        """Register a resource type (its schema must be a valid JSON Schema)."""
        check_schema(schema)
        try:
            return await self.db.write(types_store.insert, name, version, schema, description,
                                       metadata or {}, now())
        finally:
            self._forget_types()

    async def update_type(self, type_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial update to a resource type."""
        if "schema" in changes:
            check_schema(changes["schema"])
        try:
            return await self.db.write(types_store.update, type_id, changes, now())
        finally:
            self._forget_types()

    async def delete_type(self, type_id: int) -> None:
        """Delete a resource type that no resource uses."""
        try:
            await self.db.write(types_store.delete, type_id)
        finally:
            self._forget_types()

    def _forget_types(self) -> None:
        self._types.clear()
        self._types_version += 1

    async def get_type(self, type_name: str, version: str) -> dict[str, Any] | None:
        """Look a resource type up by name and version (cached)."""
        key = (type_name, version)
        found = self._types.get(key)
        if found is None:
            seen = self._types_version
            found = await types_store.get_by_name(self.db, type_name, version)
            if found is not None and seen == self._types_version:
                self._types[key] = found
        return found

    # ---- resources --------------------------------------------------------------------

    async def resolve_type(self, type_name: str, version: str, *,
                           action_plugin: str = "") -> tuple[dict[str, Any], str]:
        """Find the type and the reconciler that owns it, or explain why not (400)."""
        if action_plugin:
            available = self.action_plugins()
            if action_plugin not in available:
                raise Invalid(f"Unknown action plugin: {action_plugin}. Available plugins: "
                              f"{', '.join(available) or 'none'}")
        owner = self.host.owner_of(type_name)
        # An action plugin is a tool the type's reconciler uses (ctx.get_action_plugin), not
        # a replacement for it: every resource needs a reconciler that owns its type.
        if owner is None and not action_plugin:
            raise Invalid(f"No reconciler plugin registered for resource type '{type_name}' "
                          "and no action_plugin specified")
        if owner is None:
            raise Invalid(f"No reconciler plugin registered for resource type '{type_name}'; "
                          f"action plugin '{action_plugin}' runs only through the type's "
                          "reconciler")
        resource_type = await self.get_type(type_name, version)
        if resource_type is None:
            raise Invalid(f"Resource type {type_name}/{version} not found")
        return resource_type, owner

    async def create_resource(self, *, name: str, type_name: str, version: str,
                              spec: dict[str, Any] | None, plugin_config: dict[str, Any] | None,
                              metadata: dict[str, Any] | None, action_plugin: str = "",
                              dry_run: bool = False) -> dict[str, Any]:
        """Validate and store a new resource, owned (finalized) by its reconciler."""
        resource_type, owner = await self.resolve_type(type_name, version,
                                                       action_plugin=action_plugin)
        if not spec:
            raise Invalid("spec is required")
        if resource_type["status"] == "deprecated":
            raise Invalid(f"Resource type {type_name}/{version} is deprecated; "
                          "new resources cannot be created with it")
        self.validators.validate(resource_type, spec)
        if self.admission is not None:
            view = {"name": name, "resource_type_name": type_name,
                    "resource_type_version": version, "spec": spec}
            spec = await self.admission("CREATE", view, None)
            self.validators.validate(resource_type, spec)
        fields = dict(resource_type=resource_type, name=name, spec=spec,
                      plugin_config=plugin_config or {}, metadata=metadata or {},
                      action_plugin=action_plugin, finalizers=[owner], now=now())
        if dry_run:
            return _dry_run_record(fields)
        return await self.db.write(_insert_unit, fields)

    async def update_resource(self, resource_id: int, changes: dict[str, Any], *,
                              dry_run: bool = False) -> dict[str, Any]:
        """Replace spec / plugin_config / metadata after validation and admission."""
        current = await resources_store.get(self.db, resource_id)
        if "spec" in changes:
            if not changes["spec"]:
                raise Invalid("spec is required")
            resource_type = await self.get_type(current["resource_type_name"],
                                                current["resource_type_version"])
            if resource_type is None:
                raise Invalid("Resource type of this resource no longer exists")
            self.validators.validate(resource_type, changes["spec"])
            if self.admission is not None:
                view = {"name": current["name"],
                        "resource_type_name": current["resource_type_name"],
                        "resource_type_version": current["resource_type_version"],
                        "spec": changes["spec"]}
                changes["spec"] = await self.admission("UPDATE", view, current)
                self.validators.validate(resource_type, changes["spec"])
        if dry_run:
            preview = dict(current)
            preview.update(changes)
            return preview
        return await self.db.write(resources_store.update, resource_id, changes, now())

    async def delete_resource(self, resource_id: int) -> tuple[dict[str, Any], bool]:
        """Start deleting a resource; returns (resource, removed_at_once)."""
        if self.admission is not None:
            current = await resources_store.get(self.db, resource_id)
            if current["deleted_at"] is None:
                view = {"name": current["name"],
                        "resource_type_name": current["resource_type_name"],
                        "resource_type_version": current["resource_type_version"],
                        "spec": current["spec"]}
                await self.admission("DELETE", view, None)
        return await self.db.write(resources_store.mark_deleted, resource_id, now())

    async def trigger(self, resource_id: int) -> dict[str, Any]:
        """Make a resource due now and wake its owner."""
        return await self.db.write(resources_store.trigger, resource_id, now())

    async def edit_finalizers(self, resource_id: int, add: list[str],
                              remove: list[str]) -> dict[str, Any] | None:
        """Add then remove finalizers; None means the resource is gone as a result."""
        current = await resources_store.find(self.db, resource_id)
        if current is None:
            raise NotFound("Resource not found")
        owner = self.host.owner_of(current["resource_type_name"])
        return await self.db.write(resources_store.edit_finalizers, resource_id, add, remove,
                                   owner, now())


def _insert_unit(tx: Any, fields: dict[str, Any]) -> dict[str, Any]:
    return resources_store.insert(tx, **fields)


def _dry_run_record(fields: dict[str, Any]) -> dict[str, Any]:
    """The record a create would store, without storing it (id 0 = not assigned)."""
    resource_type = fields["resource_type"]
    moment = fields["now"]
    return {
        "id": 0, "name": fields["name"], "resource_type_name": resource_type["name"],
        "resource_type_version": resource_type["version"],
        "action_plugin": fields["action_plugin"], "status": "pending", "status_message": None,
        "generation": 1, "observed_generation": 0, "finalizers": fields["finalizers"],
        "conditions": [], "created_at": moment, "updated_at": moment,
        "last_reconcile_time": None, "spec": fields["spec"],
        "plugin_config": fields["plugin_config"], "metadata": fields["metadata"], "outputs": {},
        "retry_count": 0, "next_reconcile_time": moment, "deleted_at": None,
        "spec_hash": spec_hash(fields["spec"]),
    }
