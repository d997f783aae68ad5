"""`no8sd export` and `no8sd import` as a user runs them: between two real daemons over
HTTP, from a database file, into a foreign server speaking only the upstream routes, with
tokens, with broken files, on a terminal."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import TESTS, Daemon, json_request, no8sd_command, on_terminal, wait_for
from fake_upstream import FakeUpstream

PLUGINS = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler",
           "--plugin", "no8sd_testplugins.widgets:GadgetReconciler")
WIDGET_SCHEMA = {"type": "object", "properties": {
    "size": {"type": "integer", "minimum": 1}, "outputs": {"type": "object"},
    "keep": {"type": "boolean"}}}
ADMIN = ("boss", "boss-password-123")


# ---- helpers -------------------------------------------------------------------------


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    env.update({"PYTHONPATH": str(TESTS), "XDG_CONFIG_HOME": str(home / "config"),
                "HOME": str(home), **extra})
    return env


def no8sd(home: Path, *args: str, stdin: str | None = None,
          **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*no8sd_command(), *args], capture_output=True, text=True,
                          env=env_for(home, **extra), timeout=120, input=stdin)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result


def call(url: str, method: str, path: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any]:
    return json_request(url + path, method, body, token)


def must(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    status, answer = call(url, method, path, body, token)
    assert status < 300, (method, path, status, answer)
    return answer


def state(url: str, token: str | None = None) -> dict[str, Any]:
    """What an export carries, as the server shows it: types and the resources not being
    deleted, by name, without ids, status or times."""
    types = {(t["name"], t["version"]): {k: t[k] for k in ("schema", "description",
                                                           "metadata", "status")}
             for t in must(url, "GET", "/api/v1/resource-types?limit=1000", token=token)}
    resources = {(r["resource_type_name"], r["resource_type_version"], r["name"]): {
        k: r[k] for k in ("action_plugin", "spec", "plugin_config", "metadata", "finalizers",
                          "outputs")}
        for r in must(url, "GET", "/api/v1/resources?limit=1000", token=token)
        if r["deleted_at"] is None}
    return {"types": types, "resources": resources}


def footprint(url: str) -> dict[tuple[str, str], tuple[int, str]]:
    """Each resource's generation and last change time: they move with any write."""
    return {(r["resource_type_name"], r["name"]): (r["generation"], r["updated_at"])
            for r in must(url, "GET", "/api/v1/resources?limit=1000") if r["deleted_at"] is None}


def last_event_id(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])


async def settled(url: str, token: str | None = None) -> None:
    """Wait until every resource not being deleted has been reconciled at its generation."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def check() -> bool:
        async with aiohttp.ClientSession(headers=headers) as session, \
                session.get(url + "/api/v1/resources?limit=1000") as resp:
            listed = await resp.json()
        return all(r["status"] == "ready" and r["observed_generation"] == r["generation"]
                   for r in listed if r["deleted_at"] is None)

    await wait_for(check, timeout=20)


def objects_in(path: Path) -> tuple[int, int]:
    """(types and resources, history entries) in an export file."""
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines() if line]
    return len([k for k in kinds if k != "History"]), kinds.count("History")


def counts(stdout: str) -> dict[str, int]:
    """The created/updated/unchanged/failed figures of an import's summary line."""
    summary = next(line for line in stdout.splitlines() if line.startswith("Imported "))
    found = {}
    for part in summary.split(": ", 1)[1].split(", "):
        number, word = part.split(" ")
        found[word] = int(number)
    return found


def line_of(path: Path, predicate: Any) -> int:
    """The 1-based number of the first line whose object satisfies `predicate`."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if predicate(json.loads(text)):
            return number
    raise AssertionError("no such line")


def rewrite(source: Path, dest: Path, number: int, text: str) -> Path:
    lines = source.read_text().splitlines()
    lines[number - 1] = text
    dest.write_text("\n".join(lines) + "\n")
    return dest


# ---- the source daemon ---------------------------------------------------------------


@dataclass
class Source:
    home: Path
    daemon: Daemon
    db: Path
    http_export: Path  # with --history, over HTTP
    file_export: Path  # with --history, from the database file
    export_stderr: str

    @property
    def url(self) -> str:
        return self.daemon.url


def populate(url: str, token: str | None = None) -> None:
    """Types (one deprecated after a resource was made in it) and resources with
    metadata, plugin_config, an external finalizer, outputs from the reconciler and from
    outside, and one being deleted."""
    for name, version, schema, extra in (
            ("Widget", "v1", WIDGET_SCHEMA, {"description": "widgets"}),
            ("Widget", "v0", WIDGET_SCHEMA, {}),
            ("Gadget", "v1", {"type": "object"}, {"metadata": {"owner": "ops"}})):
        must(url, "POST", "/api/v1/resource-types",
             {"name": name, "version": version, "schema": schema, **extra}, token)

    def make(name: str, spec: dict[str, Any], type_name: str = "Widget", version: str = "v1",
             **extra: Any) -> int:
        created = must(url, "POST", "/api/v1/resources",
                       {"name": name, "resource_type_name": type_name,
                        "resource_type_version": version, "spec": spec, **extra}, token)
        return int(created["id"])

    make("plain", {"size": 1})
    make("reports", {"size": 2, "outputs": {"endpoint": "10.0.0.2", "port": 8080}})
    tagged = make("tagged", {"size": 3}, metadata={"team": "blue"},
                  plugin_config={"region": "eu-1", "zones": ["a", "b"]})
    must(url, "PUT", f"/api/v1/resources/{tagged}/outputs",
         {"outputs": {"url": "https://tagged.example", "checked": True}}, token)
    must(url, "PUT", f"/api/v1/resources/{tagged}/finalizers",
         {"add": ["example.com/guard"]}, token)
    make("old", {"size": 4}, version="v0")
    make("gizmo", {"anything": ["goes", 1, 2.5, None]}, type_name="Gadget")
    leaving = make("leaving", {"size": 5, "keep": True})
    v0 = must(url, "GET", "/api/v1/resource-types/Widget/v0", token=token)
    must(url, "PUT", f"/api/v1/resource-types/{v0['id']}", {"status": "deprecated"}, token)
    asyncio.run(settled(url, token))
    must(url, "DELETE", f"/api/v1/resources/{leaving}", token=token)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("source")
    db = home / "a.db"
    daemon = Daemon(["--db", str(db), "--port", "0", "--no-entry-points",
                     "--shutdown-grace", "1", *PLUGINS]).start()
    try:
        populate(daemon.url)
        http_export, file_export = home / "http.jsonl", home / "file.jsonl"
        result = ok(no8sd(home, "export", "--history", "-o", str(http_export),
                          "--server", daemon.url))
        ok(no8sd(home, "export", "--history", "--db", str(db), "-o", str(file_export)))
        yield Source(home, daemon, db, http_export, file_export, result.stderr)
    finally:
        daemon.stop()


def target(daemon_factory: Any, tmp_path: Path, name: str = "b", *args: str,
           env: dict[str, str] | None = None) -> tuple[Daemon, Path]:
    db = tmp_path / f"{name}.db"
    return daemon_factory(*PLUGINS, *args, db=db, env=env), db


# ---- export --------------------------------------------------------------------------


def test_export_over_http_and_from_the_file_are_the_same_lines(source):
    text = source.http_export.read_text()
    assert text == source.file_export.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    kinds = [line["kind"] for line in lines]
    # Types first, then each resource followed by its history.
    assert kinds[:3] == ["ResourceType"] * 3 and "ResourceType" not in kinds[3:]
    assert kinds[3] == "Resource" and "History" in kinds
    resources = {line["name"]: line for line in lines if line["kind"] == "Resource"}
    assert set(resources) == {"plain", "reports", "tagged", "old", "gizmo"}  # not "leaving"
    leaving = must(source.url, "GET", "/api/v1/resources/by-name/Widget/v1/leaving")
    assert leaving["deleted_at"] is not None  # being deleted on the source: left out
    tagged = resources["tagged"]
    assert tagged["finalizers"] == ["widgets", "example.com/guard"]
    assert tagged["outputs"] == {"url": "https://tagged.example", "checked": True}
    assert tagged["plugin_config"] == {"region": "eu-1", "zones": ["a", "b"]}
    assert tagged["metadata"] == {"team": "blue"}
    # What belongs to the server holding the object is not exported.
    for line in lines:
        assert not {"id", "conditions", "created_at", "resource_id"} & set(line)
        assert line["kind"] == "History" or "generation" not in line
    for number, line in enumerate(lines):
        if line["kind"] == "History":
            owner = next(o for o in reversed(lines[:number]) if o["kind"] == "Resource")
            assert line["resource_name"] == owner["name"] and line["success"] is True
    v0 = next(line for line in lines if line.get("version") == "v0")
    assert v0["status"] == "deprecated"
    assert "1 being deleted left out" in source.export_stderr


def test_export_without_history_is_what_apply_takes(source, tmp_path):
    result = ok(no8sd(source.home, "export", "--db", str(source.db)))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["kind"] for line in lines} == {"ResourceType", "Resource"}
    # Each line is a manifest: applied back to its own daemon, nothing changes.
    manifests = tmp_path / "manifests.json"
    manifests.write_text(json.dumps(lines))
    before = footprint(source.url)
    applied = ok(no8sd(source.home, "apply", "-f", str(manifests), "--server", source.url))
    assert applied.stdout.count(" unchanged") == len(lines)
    assert footprint(source.url) == before


async def test_export_from_the_file_of_a_stopped_daemon_leaves_it_untouched(
        daemon_factory, tmp_path):
    daemon, db = target(daemon_factory, tmp_path, "stopped")
    must(daemon.url, "POST", "/api/v1/resource-types",
         {"name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA})
    must(daemon.url, "POST", "/api/v1/resources", {
        "name": "kept", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    await settled(daemon.url)
    daemon.stop()
    files = sorted(tmp_path.glob("stopped.db*"))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    result = ok(no8sd(tmp_path, "--db", str(db), "export"))  # the top-level --db works too
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == \
        ["Widget", "kept"]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before


# ---- import between two daemons -----------------------------------------------------


async def test_import_makes_the_second_daemon_hold_the_same_and_twice_changes_nothing(
        source, daemon_factory, tmp_path):
    b, b_db = target(daemon_factory, tmp_path)
    objects, history = objects_in(source.http_export)
    first = ok(no8sd(tmp_path, "import", str(source.http_export), "--server", b.url))
    assert counts(first.stdout) == {"created": objects, "updated": 0, "unchanged": 0,
                                    "failed": 0}
    assert f"{history} history entries were not imported" in first.stderr
    assert "Importing:" not in first.stderr  # no progress line when not on a terminal
    assert state(b.url) == state(source.url)
    assert state(b.url)["types"][("Widget", "v0")]["status"] == "deprecated"

    await settled(b.url)
    head, before = last_event_id(b_db), footprint(b.url)
    for via in ("auto", "rest"):
        again = ok(no8sd(tmp_path, "import", "--via", via, str(source.file_export),
                         "--server", b.url))
        assert counts(again.stdout) == {
            "created": 0, "updated": 0, "unchanged": objects, "failed": 0}, via
        assert last_event_id(b_db) == head and footprint(b.url) == before, via


async def test_import_over_the_plain_routes_into_a_daemon(source, daemon_factory, tmp_path):
    b, b_db = target(daemon_factory, tmp_path)
    objects, _ = objects_in(source.file_export)
    first = ok(no8sd(tmp_path, "import", "--via", "rest", "-", NO8SD_SERVER=b.url,
                     stdin=source.file_export.read_text()))
    assert first.stdout.startswith("Imported <stdin> into ")
    assert counts(first.stdout)["created"] == objects
    assert state(b.url) == state(source.url)
    await settled(b.url)
    head = last_event_id(b_db)
    again = ok(no8sd(tmp_path, "import", "--via", "rest", str(source.file_export),
                     NO8SD_SERVER=b.url))
    assert counts(again.stdout)["unchanged"] == objects
    assert last_event_id(b_db) == head


async def test_import_brings_changes_and_restores_what_is_missing(source, daemon_factory,
                                                                  tmp_path):
    b, _ = target(daemon_factory, tmp_path)
    ok(no8sd(tmp_path, "import", str(source.file_export), "--server", b.url))
    tagged = must(b.url, "GET", "/api/v1/resources/by-name/Widget/v1/tagged")
    must(b.url, "PUT", f"/api/v1/resources/{tagged['id']}", {"spec": {"size": 9}})
    must(b.url, "PUT", f"/api/v1/resources/{tagged['id']}/finalizers",
         {"remove": ["example.com/guard"]})
    must(b.url, "PUT", f"/api/v1/resources/{tagged['id']}/outputs",
         {"outputs": {"url": "https://elsewhere.example", "extra": 1}})
    plain = must(b.url, "GET", "/api/v1/resources/by-name/Widget/v1/plain")
    must(b.url, "DELETE", f"/api/v1/resources/{plain['id']}")

    async def gone() -> bool:
        return call(b.url, "GET", "/api/v1/resources/by-name/Widget/v1/plain")[0] == 404

    await wait_for(gone)
    result = ok(no8sd(tmp_path, "import", str(source.file_export), "--server", b.url))
    found = counts(result.stdout)
    assert (found["created"], found["updated"], found["failed"]) == (1, 1, 0)
    assert found["created"] + found["updated"] + found["unchanged"] == \
        objects_in(source.file_export)[0]
    shown = state(b.url)["resources"][("Widget", "v1", "tagged")]
    assert shown["spec"] == {"size": 3}
    assert shown["finalizers"] == ["widgets", "example.com/guard"]
    # Outputs are merged: the exported keys come back, a key only the target has stays.
    assert shown["outputs"] == {"url": "https://tagged.example", "checked": True, "extra": 1}


# ---- broken files and refused objects -----------------------------------------------


def test_a_malformed_line_stops_the_import_before_anything_is_written(
        source, daemon_factory, tmp_path):
    b, b_db = target(daemon_factory, tmp_path)
    number = line_of(source.file_export, lambda o: o.get("name") == "tagged")
    text = source.file_export.read_text().splitlines()[number - 1]
    broken = rewrite(source.file_export, tmp_path / "broken.jsonl", number, text[:-12])
    result = no8sd(tmp_path, "import", str(broken), "--server", b.url)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"no8sd: error: {broken}:{number}: not valid JSON")
    assert lines[0].endswith("nothing was imported")
    assert state(b.url) == {"types": {}, "resources": {}}
    assert last_event_id(b_db) == 0

    # The same from standard input.
    result = no8sd(tmp_path, "import", "-", "--server", b.url, stdin=broken.read_text())
    assert result.returncode == 2
    assert result.stderr.startswith(f"no8sd: error: <stdin>:{number}: not valid JSON")

    # Several problems: each named with its line, still nothing written.
    first = line_of(source.file_export, lambda o: o.get("name") == "plain")
    bad = rewrite(broken, tmp_path / "bad.jsonl", first, '[1, 2]')
    gizmo = line_of(source.file_export, lambda o: o.get("name") == "gizmo")
    bad = rewrite(bad, bad, gizmo, json.dumps({
        "kind": "Resource", "name": "gizmo", "resource_type_name": "Gadget",
        "resource_type_version": "v1", "spec": {}, "colour": "red"}))
    result = no8sd(tmp_path, "import", str(bad), "--server", b.url)
    assert result.returncode == 2
    assert f"{bad}:{first}: not a JSON object" in result.stderr
    assert f"{bad}:{number}: not valid JSON" in result.stderr
    assert f"{bad}:{gizmo}: unknown field 'colour'" in result.stderr
    assert "3 malformed lines; nothing was imported" in result.stderr
    assert state(b.url) == {"types": {}, "resources": {}}

    # The same object twice is a mistake too.
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text(source.file_export.read_text() + text + "\n")
    last = len(doubled.read_text().splitlines())
    result = no8sd(tmp_path, "import", str(doubled), "--server", b.url)
    assert result.returncode == 2
    assert f"{doubled}:{last}: widget/tagged is already on line {number}" in result.stderr
    assert last_event_id(b_db) == 0


def test_an_object_the_server_refuses_is_reported_with_its_line_and_the_rest_go_in(
        source, daemon_factory, tmp_path):
    b, _ = target(daemon_factory, tmp_path)
    number = line_of(source.file_export, lambda o: o.get("name") == "plain")
    line = json.loads(source.file_export.read_text().splitlines()[number - 1])
    line["spec"] = {"size": 0}
    refused = rewrite(source.file_export, tmp_path / "refused.jsonl", number, json.dumps(line))
    result = no8sd(tmp_path, "import", str(refused), "--server", b.url)
    assert result.returncode == 1
    objects, _ = objects_in(refused)
    assert counts(result.stdout) == {"created": objects - 1, "updated": 0, "unchanged": 0,
                                     "failed": 1}
    assert f"no8sd: error: {refused}:{number}: widget/plain: Spec validation failed" \
        in result.stderr
    held = state(b.url)["resources"]
    assert ("Widget", "v1", "plain") not in held
    expected = {k: v for k, v in state(source.url)["resources"].items() if k[2] != "plain"}
    assert held == expected


def test_connection_and_usage_errors_are_one_line(source, tmp_path):
    result = no8sd(tmp_path, "import", str(source.file_export), "--server",
                   "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.strip() == \
        "no8sd: error: cannot reach no8sd at http://127.0.0.1:9: connection refused"
    result = no8sd(tmp_path, "export", "--server", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cannot reach no8sd" in result.stderr
    result = no8sd(tmp_path, "import", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    result = no8sd(tmp_path, "export", "--db", str(tmp_path / "missing.db"))
    assert result.returncode == 1
    assert result.stderr.strip() == \
        f"no8sd: error: there is no database at {tmp_path / 'missing.db'}"
    result = no8sd(tmp_path, "export", "--db", str(source.db), "--server", source.url)
    assert result.returncode == 2 and "not both" in result.stderr
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


# ---- tokens ----------------------------------------------------------------------------


def test_with_tokens_both_ways(daemon_factory, tmp_path):
    admin_env = {"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1]}
    a, _ = target(daemon_factory, tmp_path, "a", "--auth", "token", env=admin_env)
    b, _ = target(daemon_factory, tmp_path, "b", "--auth", "token", env=admin_env)
    a_token = must(a.url, "POST", "/api/v1/auth/login",
                   {"username": ADMIN[0], "password": ADMIN[1]})["access_token"]
    b_token = must(b.url, "POST", "/api/v1/auth/login",
                   {"username": ADMIN[0], "password": ADMIN[1]})["access_token"]
    populate(a.url, a_token)
    refused = no8sd(tmp_path, "export", "--server", a.url)
    assert refused.returncode == 4 and refused.stderr.startswith("no8sd: error: ")
    exported = tmp_path / "a.jsonl"
    ok(no8sd(tmp_path, "export", "--server", a.url, "--token", a_token, "-o", str(exported)))
    assert (exported.stat().st_mode & 0o777) == 0o600  # plugin_config may hold secrets
    refused = no8sd(tmp_path, "import", str(exported), "--server", b.url)
    assert refused.returncode == 4 and state(b.url, b_token)["resources"] == {}
    result = ok(no8sd(tmp_path, "import", str(exported), "--server", b.url,
                      NO8SD_TOKEN=b_token))
    assert counts(result.stdout)["created"] == objects_in(exported)[0]
    assert state(b.url, b_token) == state(a.url, a_token)


# ---- a foreign server ----------------------------------------------------------------


async def run_async(home: Path, *args: str) -> tuple[int, str, str]:
    """The CLI as a subprocess without blocking the loop the fake server runs on."""
    proc = await asyncio.create_subprocess_exec(
        *no8sd_command(), *args, env=env_for(home), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_import_into_a_foreign_server_uses_its_routes_and_says_what_it_cannot_take(
        source, aiohttp_server, tmp_path):
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("")).rstrip("/")
    exported = source.file_export
    objects, _ = objects_in(exported)
    code, out, err = await run_async(tmp_path, "import", str(exported), "--server", url)
    assert code == 0, err
    assert counts(out) == {"created": objects, "updated": 0, "unchanged": 0, "failed": 0}
    with_outputs = sum(1 for line in exported.read_text().splitlines()
                       if json.loads(line).get("outputs"))
    assert f"the outputs of {with_outputs} resources were not carried" in err

    expected = state(source.url)
    held = {(r["resource_type_name"], r["resource_type_version"], r["name"]): r
            for r in fake.resources.values()}
    assert set(held) == set(expected["resources"])
    for key, wanted in expected["resources"].items():
        for field in ("spec", "plugin_config", "metadata", "finalizers"):
            assert held[key][field] == wanted[field], (key, field)
    types = {(t["name"], t["version"]): t for t in fake.types.values()}
    assert types[("Widget", "v0")]["status"] == "deprecated"
    assert types[("Widget", "v1")]["description"] == "widgets"

    writes = len(fake.writes)
    code, out, err = await run_async(tmp_path, "import", str(exported), "--server", url)
    assert code == 0, err
    assert counts(out)["unchanged"] == objects
    assert f"{len(expected['resources'])} resources that exist on {url} were left" in err
    assert len(fake.writes) == writes  # the second run wrote nothing


# ---- on a terminal -------------------------------------------------------------------


def on_stderr_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout piped away)."""
    return on_terminal(args, env, stdout=False)


def test_progress_is_shown_on_a_terminal(source, daemon_factory, tmp_path):
    b, _ = target(daemon_factory, tmp_path)
    objects, _ = objects_in(source.file_export)
    code, shown = on_stderr_terminal([*no8sd_command(), "import", str(source.file_export),
                               "--server", b.url], env_for(tmp_path))
    assert code == 0, shown
    assert f"Importing: 100% ({objects} of {objects} objects)" in shown
    code, shown = on_stderr_terminal([*no8sd_command(), "export", "--db", str(source.db),
                               "-o", str(tmp_path / "out.jsonl")], env_for(tmp_path))
    assert code == 0, shown
    resources = [json.loads(line)["kind"] for line in
                 source.file_export.read_text().splitlines()].count("Resource")
    assert f"Exporting: 100% ({resources} of {resources} resources)" in shown
