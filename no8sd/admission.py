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
from typing import Any

import aiohttp
import jsonpatch

from no8sd.errors import Forbidden
from no8sd.records import resource_event_data
from no8sd.store import webhooks as store
from no8sd.store.db import Database

log = logging.getLogger("no8sd.admission")

MAX_RESPONSE_BYTES = 1024 * 1024
SPEC_PREFIX = "/spec"


class CallError(Exception):
    """A webhook could not give a usable answer; its failure policy decides what happens."""


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
        """Run the chain; return the (possibly mutated) spec or raise Forbidden."""
        hooks = await store.chain_for(self.db, operation, resource["resource_type_name"],
                                      resource["resource_type_version"])
        spec = resource["spec"]
        if not hooks:
            return spec
        old_view = resource_event_data(old_resource) if old_resource is not None else None
        for hook in hooks:
            body = {
                "operation": operation,
                "resource": {**resource, "spec": spec},
                "old_resource": old_view,
            }
            try:
                answer = await self._call(hook, body)
                allowed = answer.get("allowed") is True
                if allowed and hook["webhook_type"] == "mutating":
                    spec = apply_patches(spec, answer.get("patches"))
            except CallError as exc:
                if hook["failure_policy"] == "Ignore":
                    log.warning("Admission webhook %s failed, ignored by its policy: %s",
                                hook["name"], exc)
                    continue
                raise Forbidden(f"Admission webhook {hook['name']} failed: {exc}") from None
            if not allowed:
                message = answer.get("message")
                if not isinstance(message, str) or not message:
                    message = f"Denied by {hook['webhook_type']} webhook {hook['name']}"
                raise Forbidden(message[:2000])
        return spec

    async def _call(self, hook: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise CallError("the admission client is not running")
        timeout = aiohttp.ClientTimeout(total=hook["timeout_seconds"])
        try:
            async with self._session.post(hook["webhook_url"], json=body, timeout=timeout,
                                          allow_redirects=False) as resp:
                if resp.status >= 500:
                    raise CallError(f"HTTP {resp.status}")
                raw = await _read_bounded(resp)
        except TimeoutError:
            raise CallError(f"timed out after {hook['timeout_seconds']}s") from None
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
