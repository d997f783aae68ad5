"""Nothing secret or internal ever leaves in a response: no password hash, no token digest,
no stack trace, no 500, whatever a caller sends to any route."""

from __future__ import annotations

import re
import sqlite3

from authkit import bearer
from test_auth_matrix import CALLERS, MATRIX, UNAUTHENTICATED, build_world

from no8sd.app import all_routes

JUNK_BODIES = (b"{not json", b"[]", b'"text"', b"null", b'{"name": {"deep": [1, 2]}}',
               b'{"username": 5, "password": null, "operations": "ALL", "custom_role_id": "x"}',
               b"\xff\xfe", b"{" * 200)
# The one 5xx by design: like upstream, a sync without a directory is 503.
EXPECTED_5XX = {("/api/v1/users/ldap-sync", 503)}
JUNK_IDS = ("abc", "0", "-1", "99999999999999999999999", "1.5", "%00")


async def test_no_response_contains_a_secret_or_a_stack_trace(make_client, tmp_path, clock):
    w = await build_world(make_client, clock)
    seen: list[tuple[str, str, int, str]] = []

    async def record(method: str, path: str, resp) -> None:
        stream = resp.content_type == "text/event-stream"
        text = "" if stream else await resp.text()
        resp.close()
        seen.append((method, path, resp.status, text))

    routes = sorted(all_routes(), key=lambda r: r.path == "/api/v1/auth/logout")
    for route in routes:
        entry = MATRIX[(route.method, route.path)]
        for caller in CALLERS:
            path, body = await entry.prepare(w)
            await record(route.method, path,
                         await w.call(route.method, path, w.tokens[caller], body=body))
        path, body = await entry.prepare(w)
        for header in UNAUTHENTICATED.values():
            raw = header.format(token=w.tokens["READ"], **w.tokens) if header else None
            await record(route.method, path,
                         await w.call(route.method, path, body=body, raw_header=raw))
        if route.path == "/api/v1/auth/logout":
            continue
        for junk in JUNK_BODIES:
            resp = await w.client.request(route.method, path + "?limit=abc&offset=-5",
                                          data=junk, headers=bearer(w.admin))
            await record(route.method, path, resp)
        for bad in JUNK_IDS:
            odd = re.sub(r"\{[a-z_]+\}", bad, route.path)
            if odd != route.path:
                resp = await w.client.request(route.method, odd, headers=bearer(w.admin),
                                              json={})
                await record(route.method, odd, resp)

    with sqlite3.connect(tmp_path / "test.db") as conn:
        secrets = [row[0] for row in conn.execute(
            "SELECT password_hash FROM users UNION ALL SELECT token_hash FROM tokens")]
    assert len(secrets) > 20
    salts_and_keys = {part for s in secrets if s.startswith("scrypt$")
                      for part in s.split("$")[2:]}
    assert len(seen) > 1000
    for method, path, status, text in seen:
        assert status < 500 or (path, status) in EXPECTED_5XX, (method, path, status, text)
        assert "Traceback" not in text and 'File "' not in text, (method, path, text)
        assert "scrypt$" not in text and "password_hash" not in text, (method, path)
        assert "token_hash" not in text, (method, path)
        # Raw database errors (constraint names, SQL) never reach a client.
        assert "sqlite3" not in text and "constraint failed" not in text, (method, path, text)
        for secret in secrets:
            assert secret not in text, (method, path)
        for part in salts_and_keys:
            assert part not in text, (method, path)
