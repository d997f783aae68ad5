"""The admission chain: calls admission webhooks before a resource change is stored.

For one operation on one resource: every matching mutating webhook in `ordering`, then
every matching validating webhook. Each gets a POST with the operation, the resource
(with the spec as mutated so far) and, for UPDATE, the current record in its REST form
without plugin_config (which may hold credentials). A webhook answers
`{"allowed": bool, "message": str, "patches": [RFC 6902 operations]}`; patches from
mutating webhooks apply to the spec at once, so later webhooks see them. A denial stops
the chain with 403. A call that fails (timeout, connection error, status >= 500, a body
that is not a JSON object or is too large, or a patch that cannot be applied) follows
the webhook's failure policy: `Fail` denies, `Ignore` skips the webhook.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import jsonpatch

from no8sd.errors import Forbidden, Unprocessable
from no8sd.store import webhooks as store
from no8sd.store.db import Database
from no8sd.store.rows import Webhook
from no8sd.timeutil import SYSTEM_CLOCK, Clock

log = logging.getLogger("no8sd.admission")

MAX_RESPONSE_BYTES = 1024 * 1024
SPEC_PREFIX = "/spec"


class CallError(Exception):
    """A webhook could not give a usable answer; its failure policy decides what happens."""


class AdmissionFailed(Forbidden):
    """A webhook could not be asked (its policy is Fail). The caller is told only which
    webhook failed; why (which may name hosts and ports) is for the log and for callers
    who may see the webhooks (`reason`)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"Admission webhook {name} failed")
        self.reason = f"Admission webhook {name} failed: {reason}"


class AdmissionChain:
    """Runs the webhooks for one operation; one shared HTTP client session."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the shared client session (per-call timeouts come from each webhook)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), headers={"User-Agent": "no8sd-admission"})

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, operation: str, resource: dict[str, Any],
                       old_resource: dict[str, Any] | None) -> dict[str, Any]:
        """Run the chain; return the (possibly mutated) spec or raise Forbidden.

        `old_resource` is the stored record as the API shows it without plugin_config.
        """
        hooks = await store.chain_for(self.db, operation, resource["resource_type_name"],
                                      resource["resource_type_version"])
        spec: dict[str, Any] = resource["spec"]
        if not hooks:
            return spec
        old_view = old_resource
        for hook in hooks:
            body = {
                "operation": operation,
                "resource": {**resource, "spec": spec},
                "old_resource": old_view,
            }
            try:
                answer = await self._call(hook, body)
                allowed = answer.get("allowed") is True
                if allowed and hook.webhook_type == "mutating":
                    spec = apply_patches(spec, answer.get("patches"))
            except CallError as exc:
                if hook.failure_policy == "Ignore":
                    log.warning("Admission webhook %s failed, ignored by its policy: %s",
                                hook.name, exc)
                    continue
                log.warning("Admission webhook %s failed, the write is refused: %s",
                            hook.name, exc)
                raise AdmissionFailed(hook.name, str(exc)) from None
            if not allowed:
                message = answer.get("message")
                if not isinstance(message, str) or not message:
                    message = f"Denied by {hook.webhook_type} webhook {hook.name}"
                raise Forbidden(message[:2000])
        return spec

    async def _call(self, hook: Webhook, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise CallError("the admission client is not running")
        timeout = aiohttp.ClientTimeout(total=hook.timeout_seconds)
        try:
            async with self._session.post(hook.webhook_url, json=body, timeout=timeout,
                                          allow_redirects=False) as resp:
                if resp.status >= 500:
                    raise CallError(f"HTTP {resp.status}")
                raw = await _read_bounded(resp)
        except TimeoutError:
            raise CallError(f"timed out after {hook.timeout_seconds}s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL aiohttp rejects
            raise CallError(f"{type(exc).__name__}: {exc}") from None
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CallError(f"response (HTTP {resp.status}) is not JSON") from None
        if not isinstance(answer, dict):
            raise CallError("response is not a JSON object")
        return answer


async def _read_bounded(resp: aiohttp.ClientResponse) -> bytes:
    """Read the whole body, refusing one larger than MAX_RESPONSE_BYTES."""
    too_large = CallError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    if (resp.content_length or 0) > MAX_RESPONSE_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def apply_patches(spec: dict[str, Any], patches: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations to the spec; paths are relative to the spec, and a leading
    "/spec" (the form some webhooks send) is accepted and removed."""
    if patches is None or patches == []:
        return spec
    if not isinstance(patches, list) or not all(isinstance(p, dict) for p in patches):
        raise CallError("invalid patch: patches must be a list of JSON Patch operations")
    relative = []
    for op in patches:
        op = dict(op)
        for key in ("path", "from"):
            value = op.get(key)
            if isinstance(value, str) and (value == SPEC_PREFIX or
                                           value.startswith(SPEC_PREFIX + "/")):
                op[key] = value[len(SPEC_PREFIX):]
        relative.append(op)
    try:
        result = jsonpatch.JsonPatch(relative).apply(copy.deepcopy(spec))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, IndexError, ValueError) as exc:
        raise CallError(f"invalid patch: {exc}") from None
    if not isinstance(result, dict):
        raise CallError("invalid patch: the patched spec is not a JSON object")
    return result


# ---- managing the webhooks ------------------------------------------------------------

OPERATIONS: Final = ("CREATE", "UPDATE", "DELETE")
MIN_TIMEOUT, MAX_TIMEOUT = 1, 30
NULLABLE: Final = ("resource_type_name", "resource_type_version")


def check_fields(body: dict[str, Any]) -> None:
    """Apply the upstream field rules, each with its own message (422)."""
    if body.get("webhook_url") is not None:
        try:
            url = urlsplit(body["webhook_url"])
            url.port  # noqa: B018 - raises ValueError for a port out of range
            valid = url.scheme in ("http", "https") and bool(url.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise Unprocessable("webhook_url must be an http:// or https:// URL")
    if body.get("webhook_type") is not None and \
            body["webhook_type"] not in ("validating", "mutating"):
        raise Unprocessable("webhook_type must be 'validating' or 'mutating'")
    for op in body.get("operations") or ():
        if op not in OPERATIONS:
            raise Unprocessable(f"Invalid operation '{op}'. Must be one of: "
                                f"{', '.join(OPERATIONS)}")
    if body.get("failure_policy") is not None and body["failure_policy"] not in ("Fail", "Ignore"):
        raise Unprocessable("failure_policy must be 'Fail' or 'Ignore'")
    timeout = body.get("timeout_seconds")
    if timeout is not None and not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise Unprocessable(f"timeout_seconds must be between {MIN_TIMEOUT} and {MAX_TIMEOUT}")


class Webhooks:
    """Register, change, delete and list admission webhooks."""

    def __init__(self, db: Database, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock

    async def create(self, body: dict[str, Any]) -> Webhook:
        """Register a webhook; absent fields take their defaults."""
        check_fields(body)
        fields = {
            "name": body["name"], "webhook_url": body["webhook_url"],
            "webhook_type": body["webhook_type"],
            # Duplicates would only make the webhook match twice as often; keep one of each.
            "operations": list(dict.fromkeys(body["operations"])),
            "resource_type_name": body.get("resource_type_name"),
            "resource_type_version": body.get("resource_type_version"),
            "timeout_seconds": body.get("timeout_seconds", 10),
            "failure_policy": body.get("failure_policy", "Fail"),
            "ordering": body.get("ordering", 0),
        }
        return await self.db.write(store.insert, fields, self.clock.now())

    async def update(self, webhook_id: int, body: dict[str, Any]) -> Webhook:
        """Change fields; null leaves a field unchanged, except the two type filters, where
        null makes the webhook apply to every type (or version) again."""
        check_fields(body)
        changes = {k: v for k, v in body.items()
                   if k in store.FIELDS and (v is not None or k in NULLABLE)}
        if "operations" in changes:
            changes["operations"] = list(dict.fromkeys(changes["operations"]))
        return await self.db.write(store.update, webhook_id, changes, self.clock.now())

    async def delete(self, webhook_id: int) -> None:
        """Delete a webhook; it stops applying at once."""
        await self.db.write(store.delete, webhook_id)

    async def get(self, webhook_id: int) -> Webhook:
        """One webhook by id (404 if absent)."""
        return await store.get(self.db, webhook_id)

    async def matching(self, *, type_name: str | None = None, version: str | None = None,
                   webhook_type: str | None = None) -> list[Webhook]:
        """Webhooks in chain order, filtered exactly."""
        return await store.list_webhooks(self.db, type_name=type_name, version=version,
                                         webhook_type=webhook_type)
