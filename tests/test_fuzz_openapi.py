"""Schemathesis against the served OpenAPI document, with authentication off and on.

Every documented operation is fuzzed (examples, coverage and fuzzing phases, a bounded
number of cases each) against a real `no8sd` subprocess: no response may be a 5xx, and
every response must match the status, content type and schema the document declares.
The SSE routes get their own run without the response-schema check: the document
describes a stream as one string, while schemathesis checks each event against it. Set
NO8SD_TEST_FUZZ_EXAMPLES for a longer run by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import pytest
import schemathesis  # noqa: F401  (a test dependency: missing, this module fails)
from conftest import WIDGET_SCHEMA
from ldapkit import start_slapd

from no8sd.app import all_routes

EXAMPLES = os.environ.get("NO8SD_TEST_FUZZ_EXAMPLES", "8")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
ADMIN = ("fuzz-admin", "fuzz-password-123")
EXCLUDE = r"/events$"
SSE_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"
LOCKOUT = r"(/events|/auth/logout|/users/\{user_id\}|/tokens/\{token_id\})$"


DOCUMENT = ("GET", "/api/v1/openapi.json")


def _operations(pattern: str | None = None) -> set[tuple[str, str]]:
    """The documented operations (the route table the OpenAPI document is made from), or
    those whose path matches `pattern`; less the document's own route, which schemathesis
    loads the document from and never counts among the operations."""
    return {(route.method, route.path) for route in all_routes()
            if (route.method, route.path) != DOCUMENT
            and (pattern is None or re.search(pattern, route.path))}


def _selected(output: str) -> tuple[int, int]:
    """(operations fuzzed, operations in the document), as schemathesis reports them."""
    found = re.search(r"Selected: (\d+)/(\d+)", output)
    assert found is not None, _summary(output)
    return int(found.group(1)), int(found.group(2))


def _run(url: str, *extra: str, exclude: str = EXCLUDE, checks: str = CHECKS,
         examples: str = EXAMPLES, timeout: str = "10") -> tuple[int, str, int]:
    """Run schemathesis; return (exit code, output, test cases run)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/v1/openapi.json",
        "--checks", checks,
        "--max-examples", examples, "--phases", "examples,coverage,fuzzing",
        "--workers", "1", "--seed", "1", "--no-color", "--request-timeout", timeout,
        "--generation-database", "none", "--suppress-health-check", "all",
        *(("--exclude-path-regex", exclude) if exclude else ()), *extra]
    # Run from a scratch folder: schemathesis leaves a .schemathesis/ cache in its cwd.
    scratch = tempfile.mkdtemp(prefix="no8sd-fuzz-")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              cwd=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    output = proc.stdout + proc.stderr
    found = re.search(r"(\d+) generated", output)
    return proc.returncode, output, int(found.group(1)) if found else 0


async def _seed(url: str, headers: dict[str, str] | None = None) -> None:
    """Give the fuzzer something to find: a type and a few resources with low ids."""
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{url}/api/v1/resource-types", json={
                "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA}) as resp:
            assert resp.status == 201, await resp.text()
        for i in range(3):
            async with http.post(f"{url}/api/v1/resources", json={
                    "name": f"w{i}", "resource_type_name": "Widget",
                    "resource_type_version": "v1", "spec": {"size": i + 1}}) as resp:
                assert resp.status == 201, await resp.text()


@pytest.fixture
def directory(tmp_path: Path):
    """A real directory, so POST /api/v1/users/ldap-sync and LDAP logins are fuzzed too."""
    server = start_slapd(tmp_path / "slapd")
    server.add_user("alice", "alice-password")
    yield server
    server.stop()


def _summary(output: str) -> str:
    return "\n".join(output.strip().splitlines()[-60:])


@pytest.mark.timeout(900)
async def test_fuzz_every_route_with_auth_off(daemon_factory, directory):
    daemon = daemon_factory("--plugin", "no8sd_testplugins.widgets:WidgetReconciler",
                            "--sse-heartbeat", "1", env=directory.env())
    await _seed(daemon.url)
    code, output, cases = _run(daemon.url)
    assert code == 0, _summary(output)
    every, streaming = _operations(), _operations(EXCLUDE)
    assert _selected(output) == (len(every) - len(streaming), len(every))
    assert cases >= len(every) - len(streaming), _summary(output)  # each had its cases
    # A stream that is accepted never ends: the request timeout ends it (not a failure).
    code, output, streams = _run(daemon.url, "--include-path-regex", EXCLUDE, exclude="",
                                 checks=SSE_CHECKS, examples="3", timeout="1")
    assert code == 0, _summary(output)
    assert _selected(output) == (len(streaming), len(every))
    assert streams >= len(streaming), _summary(output)
    print(f"schemathesis, auth off: {cases} cases, {streams} on the SSE routes")
    assert "Traceback" not in daemon.output, daemon.output
    assert daemon.stop() == 0


@pytest.mark.timeout(900)
async def test_fuzz_every_route_with_auth_on(daemon_factory, directory):
    daemon = daemon_factory(
        "--plugin", "no8sd_testplugins.widgets:WidgetReconciler", "--auth", "token",
        env={"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1],
             **directory.env()})
    async with aiohttp.ClientSession() as http, http.post(
            f"{daemon.url}/api/v1/auth/login",
            json={"username": ADMIN[0], "password": ADMIN[1]}) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["access_token"]
    await _seed(daemon.url, {"Authorization": f"Bearer {token}"})
    # Operations that would lock the fuzzer itself out are left out: logging out,
    # suspending or editing a user (the admin is one) and revoking a token.
    code, output, cases = _run(daemon.url, "-H", f"Authorization: Bearer {token}",
                               exclude=LOCKOUT)
    assert code == 0, _summary(output)
    every, left_out = _operations(), _operations(LOCKOUT)  # the SSE and lock-out routes
    assert _selected(output) == (len(every) - len(left_out), len(every))
    assert cases >= len(every) - len(left_out), _summary(output)  # each had its cases
    print(f"schemathesis, auth on: {cases} cases")
    assert "Traceback" not in daemon.output, daemon.output
    assert daemon.stop() == 0
