"""Hostile and malformed input: every request a client can get wrong is a clean JSON 4xx.

Covers absurd nesting, huge numbers, invalid UTF-8, NUL bytes, very long names, header
and URLs, oversized bodies, bodies dripped slowly (slowloris), JSON Schemas that would
be expensive to evaluate, and path tricks in path parameters.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import create_widget, create_widget_type, wait_for
from no8sd_testplugins.widgets import WidgetReconciler

from no8sd.plugins import BaseReconciler, ReconcileResult

RESOURCES = "/api/v1/resources"


async def _json_error(resp: Any, status: int) -> str:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers["Content-Type"].startswith("application/json"), text
    body = json.loads(text)
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


def _widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {"name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": spec or {"size": 1}}


async def _post_raw(client: Any, path: str, raw: bytes) -> Any:
    return await client.post(path, data=raw, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [65, 1000, 200_000])
async def test_deeply_nested_json_is_400(make_client, depth):
    client = await make_client()
    await create_widget_type(client)
    nested = b"[" * depth + b"]" * depth
    body = b'{"name": "w", "resource_type_name": "Widget", "resource_type_version": "v1",' \
           b' "spec": {"size": 1, "x": ' + nested + b"}}"
    detail = await _json_error(await _post_raw(client, RESOURCES, body), 400)
    assert "nested deeper than 64" in detail
    # The same nesting inside a JSON Schema is refused as well.
    schema = b'{"name": "Deep", "version": "v1", "schema": {"default": ' + nested + b"}}"
    await _json_error(await _post_raw(client, "/api/v1/resource-types", schema), 400)


async def test_huge_numbers(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    for literal in (b"1e999", b"-1e999", b"9" * 5000, b"1" + b"0" * 100_000):
        body = b'{"name": "w", "resource_type_name": "Widget", "resource_type_version": "v1",' \
               b' "spec": {"size": ' + literal + b"}}"
        detail = await _json_error(await _post_raw(client, RESOURCES, body), 400)
        assert detail.startswith("Malformed JSON"), detail
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"name": "w", "resource_type_name": "Widget", "resource_type_version": "v1",' \
               b' "spec": {"size": ' + literal + b"}}"
        await _json_error(await _post_raw(client, RESOURCES, body), 400)
    # Big but finite numbers are data like any other: stored and returned exactly.
    big = 10**300
    created = await create_widget(client, "big", {"size": big})
    resp = await client.get(f"{RESOURCES}/{created['id']}")
    assert (await resp.json())["spec"]["size"] == big
    small = await create_widget(client, "tiny", {"size": 1, "sleep": 1e-300})
    assert small["spec"]["sleep"] == 1e-300


async def test_invalid_utf8_and_nul_bytes(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    for raw in (b'{"name": "\xff\xfe"}', b'{"name": "w\xc3"}', b"\xed\xa0\x80{}",
                b'{"name": "w", "spec": {}}\x00', b"\x00" * 64):
        detail = await _json_error(await _post_raw(client, RESOURCES, raw), 400)
        assert detail.startswith("Malformed JSON"), detail
    # An escaped NUL is valid JSON: refused in names, kept exactly in spec strings.
    detail = await _json_error(await client.post(RESOURCES, json=_widget("w\u0000x")), 422)
    assert "name" in detail
    created = await create_widget(client, "nul", {"size": 1, "fail": "a\u0000b"})
    resp = await client.get(f"{RESOURCES}/{created['id']}")
    assert (await resp.json())["spec"]["fail"] == "a\u0000b"
    # Lone surrogates escaped in JSON cannot be stored as UTF-8 text: a 4xx, never a 500.
    resp = await _post_raw(client, RESOURCES, json.dumps(_widget(), ensure_ascii=True)
                           .replace('"size": 1', '"size": 1, "fail": "\\ud800"').encode())
    assert "surrogate" in await _json_error(resp, 400)
    paired = await create_widget(client, "emoji", {"size": 1, "fail": "\U0001F600"})
    assert paired["spec"]["fail"] == "\U0001F600"
    # An id that is not an integer is a 422; a name nothing has is a 404.
    for path, status in (("/api/v1/resources/1%00", 422), ("/api/v1/resources/%00", 422),
                         ("/api/v1/resources/by-name/Widget/v1/a%00b", 404)):
        await _json_error(await client.get(path), status)


async def test_very_long_names_urls_and_headers(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    detail = await _json_error(await client.post(RESOURCES, json=_widget("a" * 64)), 422)
    assert "63 characters" in detail
    await _json_error(await client.post(RESOURCES, json=_widget("a" * 500_000)), 422)
    resp = await client.post("/api/v1/resource-types", json={
        "name": "T" * 100_000, "version": "v1", "schema": {"type": "object"}})
    assert "name" in await _json_error(resp, 422)
    resp = await client.get("/api/v1/resources/by-name/Widget/v1/" + "a" * 4000)
    await _json_error(resp, 404)
    resp = await client.get("/api/v1/resources/" + "9" * 4000)
    await _json_error(resp, 404)
    # Header lines beyond aiohttp's 8 KiB limit are refused before any handler runs.
    resp = await client.get("/health", headers={"X-Junk": "x" * 20_000})
    assert 400 <= resp.status < 500, resp.status
    # The daemon is unharmed.
    resp = await client.get("/health")
    assert resp.status == 200


async def test_absurdly_long_numbers_in_ids_headers_and_queries(make_client):
    client = await make_client()
    resp = await client.get("/api/v1/events", headers={"Last-Event-ID": "9" * 8000})
    await _json_error(resp, 422)
    resp = await client.get("/api/v1/events?last_event_id=" + "9" * 8000)
    await _json_error(resp, 422)
    await _json_error(await client.get("/api/v1/resources/" + "9" * 8000), 404)
    await _json_error(await client.get("/api/v1/resources?limit=" + "9" * 8000), 422)


async def test_oversized_body_is_413(make_client):
    client = await make_client(max_body_bytes=10_000)
    await create_widget_type(client)
    big = _widget("big", size=1, fail="x" * 20_000)
    detail = await _json_error(await client.post(RESOURCES, json=big), 413)
    assert "10000 bytes" in detail
    resp = await client.put(f"{RESOURCES}/1", json={"spec": {"fail": "x" * 20_000}})
    await _json_error(resp, 413)
    # Chunked upload with no Content-Length is cut off at the limit too.

    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 1000

    resp = await client.post(RESOURCES, data=chunks(),
                             headers={"Content-Type": "application/json"})
    await _json_error(resp, 413)


async def _raw_request(host: str, port: int, head: bytes, drip: bytes, every: float,
                       limit: float) -> bytes:
    """Send `head`, then `drip` one byte at a time; return what the server answered."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head)
    await writer.drain()

    async def dripper() -> None:
        for byte in drip:
            await asyncio.sleep(every)
            writer.write(bytes([byte]))
            await writer.drain()

    task = asyncio.create_task(dripper())
    try:
        answer = await asyncio.wait_for(reader.read(65536), limit)
    finally:
        task.cancel()
        writer.close()
    return answer


async def test_slow_drip_body_times_out_with_408(make_client):
    client = await make_client(WidgetReconciler(), body_timeout=1.0)
    await create_widget_type(client)
    body = json.dumps(_widget("slow")).encode()
    head = (b"POST /api/v1/resources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    # (How long the cut-off takes: tests/bench/bench_responsiveness.py.)
    answer = await _raw_request(client.server.host, client.server.port, head, body,
                                every=0.2, limit=10)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    assert b"Connection: close" in rest
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["detail"].startswith(
        "Request body not received within 1s")
    # Nothing was created, and the server still answers others at once.
    resp = await client.get(f"{RESOURCES}/by-name/Widget/v1/slow")
    assert resp.status == 404
    # A body that arrives in time, even in pieces, is fine.
    answer = await _raw_request(client.server.host, client.server.port, head + body[:-5],
                                body[-5:], every=0.05, limit=10)
    assert answer.startswith(b"HTTP/1.1 201"), answer


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/resources/..%2F..%2Fetc%2Fpasswd", 422),  # not an integer id
    ("/api/v1/resources/by-name/..%2F..%2F/v1/passwd", 404),
    ("/api/v1/resource-types/..%2Fetc/passwd", 404),
    ("/api/v1/resources/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/api/v1/../../../etc/passwd", 404),
    ("/static/../../etc/passwd", 404),
])
async def test_path_traversal_reaches_no_file(make_client, path, status):
    """A traversal attempt reaches no file: a 404, or the 422 of an id that is no integer."""
    client = await make_client()
    text = await _json_error(await client.get(path), status)
    assert "root:" not in text


async def _register(client: Any, name: str, schema: dict[str, Any]) -> Any:
    return await client.post("/api/v1/resource-types",
                             json={"name": name, "version": "v1", "schema": schema})


async def _create_spec(client: Any, type_name: str, name: str, spec: Any) -> Any:
    return await client.post(RESOURCES, json={
        "name": name, "resource_type_name": type_name, "resource_type_version": "v1",
        "spec": spec})


class SchemaTypes(BaseReconciler):
    """Owns the resource types of the schema tests."""

    name = "schema-types"
    resource_types = ["Backtrack", "BacktrackKeys", "BacktrackExtra", "RefExplosion", "Plain"]

    async def reconcile(self, resource: dict[str, Any], ctx: Any) -> ReconcileResult:
        return ReconcileResult(True, "ok")


def _chain(depth: int) -> dict[str, Any]:
    """d_k = anyOf[d_(k-1), d_(k-1)]: 2**depth evaluations for an instance that fails."""
    definitions: dict[str, Any] = {"d0": {"type": "string"}}
    for k in range(1, depth + 1):
        definitions[f"d{k}"] = {"anyOf": [{"$ref": f"#/definitions/d{k - 1}"}] * 2}
    return {"definitions": definitions, "type": "object",
            "properties": {"x": {"$ref": f"#/definitions/d{depth}"}}}


EXPENSIVE = {
    "Backtrack": ({"type": "object", "properties": {"s": {"pattern": "^(a|aa)+$"}}},
                  {"s": "a" * 60 + "!"}),
    "BacktrackKeys": ({"type": "object", "patternProperties": {"^(a|aa)+$": {}}},
                      {"a" * 60 + "!": 1}),
    "BacktrackExtra": ({"type": "object", "additionalProperties": False,
                        "patternProperties": {"^(a|aa)+$": {}}}, {"a" * 60 + "!": 1}),
    "RefExplosion": (_chain(40), {"x": 1}),
}


@pytest.mark.parametrize("type_name", sorted(EXPENSIVE))
async def test_expensive_schemas_are_cut_off_with_400(make_client, type_name):
    client = await make_client(SchemaTypes())
    schema, spec = EXPENSIVE[type_name]
    resp = await _register(client, type_name, schema)
    assert resp.status == 201, await resp.text()
    # Cut off at the validation budget (how soon: tests/bench/bench_responsiveness.py)...
    detail = await _json_error(await _create_spec(client, type_name, "x", spec), 400)
    assert "took longer than" in detail, detail
    # ... and the daemon is fine.
    assert (await client.get("/health")).status == 200


async def test_schema_limits_at_registration_and_cheap_checks_still_work(make_client):
    client = await make_client(SchemaTypes())
    resp = await _register(client, "Huge", {"type": "object", "description": "x" * 300_000})
    assert "larger than" in await _json_error(resp, 400)
    resp = await _register(client, "LongRe", {"properties": {"s": {"pattern": "a" * 1001}}})
    assert "longer than 1000" in await _json_error(resp, 400)
    resp = await _register(client, "BadRe", {"properties": {"s": {"pattern": "(unclosed"}}})
    await _json_error(resp, 400)
    # Ordinary patterns and uniqueItems keep working, and a large array is quick.
    schema = {"type": "object", "additionalProperties": False,
              "patternProperties": {"^x-[a-z]+$": {}},
              "properties": {"s": {"pattern": "^[a-z]+$"},
                             "items": {"type": "array", "uniqueItems": True}}}
    assert (await _register(client, "Plain", schema)).status == 201
    assert (await _create_spec(client, "Plain", "ok", {"s": "abc", "x-y": 1})).status == 201
    detail = await _json_error(await _create_spec(client, "Plain", "bad", {"s": "ABC"}), 400)
    assert "does not match" in detail
    detail = await _json_error(await _create_spec(client, "Plain", "bad", {"Q": 1}), 400)
    assert "'Q'" in detail
    many = [{"i": i} for i in range(20_000)]
    assert (await _create_spec(client, "Plain", "many", {"items": many})).status == 201
    detail = await _json_error(await _create_spec(client, "Plain", "dupe",
                                                  {"items": [*many, {"i": 7}]}), 400)
    assert "non-unique" in detail
    assert (await _create_spec(client, "Plain", "num", {"items": [1, 1.0]})).status == 400
    assert (await _create_spec(client, "Plain", "bools", {"items": [1, True]})).status == 201


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _open_stream(host: str, port: int) -> tuple[Any, Any, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    return reader, writer, head


async def test_thousands_of_idle_streams_are_bounded(daemon_factory):
    limit = 2000
    # Heartbeats are how the daemon notices idle clients that left.
    daemon = daemon_factory("--max-streams", str(limit), "--sse-heartbeat", "3")
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    before = _rss_kib(daemon.proc.pid)
    opened = []
    for start in range(0, limit, 250):
        opened += await asyncio.gather(*(_open_stream(host, int(port))
                                         for _ in range(start, min(start + 250, limit))))
    try:
        assert all(head.startswith(b"HTTP/1.1 200") for _, _, head in opened)
        reader, writer, head = await _open_stream(host, int(port))
        assert head.startswith(b"HTTP/1.1 503"), head
        body = await reader.read(4096)
        writer.close()
        assert "Too many event streams" in json.loads(body)["detail"]
        # The rest of the API is unaffected.
        for _ in range(5):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200")
        grown = _rss_kib(daemon.proc.pid) - before
        assert grown < 100 * 1024, f"{limit} idle streams cost {grown} KiB"
    finally:
        for _, writer, _ in opened:
            writer.close()

    # Once clients leave, their slots are free again (noticed by the next heartbeat).
    async def accepted() -> bool:
        _, writer, head = await _open_stream(host, int(port))
        writer.close()
        return head.startswith(b"HTTP/1.1 200")

    await wait_for(accepted, timeout=20, interval=0.2)
    assert daemon.stop() == 0
