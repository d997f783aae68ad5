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
from conftest import WIDGET_SCHEMA
from ldapkit import start_slapd

EXAMPLES = os.environ.get("NO8SD_TEST_FUZZ_EXAMPLES", "8")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
ADMIN = ("fuzz-admin", "fuzz-password-123")
EXCLUDE = r"/events$"
SSE_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"
LOCKOUT = r"(/events|/auth/logout|/users/\{user_id\}|/tokens/\{token_id\})$"


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    which = shutil.which("schemathesis")
    if which is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return which


def _run(url: str, *extra: str, exclude: str = EXCLUDE, checks: str = CHECKS,
         examples: str = EXAMPLES, timeout: str = "10") -> tuple[int, str, int]:
    """Run schemathesis; return (exit code, output, test cases run)."""
    command = [
        _schemathesis(), "run", f"{url}/api/v1/openapi.json", "--checks", checks,
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
    assert cases > 500, _summary(output)
    # A stream that is accepted never ends: the request timeout ends it (not a failure).
    code, output, streams = _run(daemon.url, "--include-path-regex", EXCLUDE, exclude="",
                                 checks=SSE_CHECKS, examples="3", timeout="1")
    assert code == 0, _summary(output)
    assert streams > 10, _summary(output)
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
    assert cases > 500, _summary(output)
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert selected is not None and int(selected.group(2)) - int(selected.group(1)) == 7, \
        _summary(output)  # 2 SSE routes and 5 lock-out routes are left out
    print(f"schemathesis, auth on: {cases} cases")
    assert "Traceback" not in daemon.output, daemon.output
    assert daemon.stop() == 0
