"""Input plugins (issue 13, points 4, 5 and 7): supervised like reconcilers, acting as
`input:NAME`; the built-in manifests directory; the contrib example installed with pip."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import REPO, TESTS, WIDGET_SCHEMA, wait_for

WIDGETS = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")


async def _widget_type(http: Any, url: str) -> None:
    resp = await http.post(f"{url}/api/v1/resource-types",
                           json={"name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA})
    assert resp.status == 201, await resp.text()


async def _json(http: Any, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _input(http: Any, url: str, name: str) -> dict[str, Any] | None:
    listed = await _json(http, f"{url}/api/v1/plugins/inputs")
    return next((i for i in listed if i["name"] == name), None)


async def test_an_input_plugin_is_supervised_and_acts_as_its_own_principal(daemon_factory,
                                                                          tmp_path, http):
    # Two crashes first: the daemon restarts it with backoff and it then does its work.
    daemon = daemon_factory(*WIDGETS, "--input", "no8sd_testplugins.inputs:NotesInput",
                            "--input", "no8sd_testplugins.inputs:StubbornInput",
                            "--plugin-restart-base", "0.05", "--shutdown-grace", "2",
                            env={"NOTES_INPUT_CRASHES": "2", "NOTES_INPUT_NAME": "noted"})
    url = daemon.url
    await _widget_type(http, url)

    async def noted() -> Any:
        found = await _json(http, f"{url}/api/v1/resources?resource_type=Widget")
        return next((r for r in found if r["name"] == "noted"
                     and r["metadata"].get("noted_by")), None)

    widget = await wait_for(noted, timeout=20)
    assert widget["metadata"]["noted_by"] == "input:notes"
    notes = await wait_for(lambda: _healthy(http, url, "notes"), timeout=20)
    assert notes["restart_count"] == 2 and notes["state"] == "running"
    assert "RuntimeError: crash number 2" in notes["last_error"]
    assert notes["version"] == "2.1.0" and notes["health_message"] == "noted"
    stubborn = await _input(http, url, "stubborn")
    assert stubborn is not None and stubborn["healthy"] is False  # its check hangs
    assert "health_check failed" in stubborn["health_message"]
    # Its changes name it: in the event log and in the history of the reconcile it caused.
    history = await wait_for(lambda: _history(http, url, widget["id"]), timeout=20)
    assert history[-1]["triggered_by"] == "input:notes"
    assert "Input plugin 'notes' crashed: RuntimeError: crash number 1" in daemon.output
    # A plugin that never stops cannot hold the daemon's shutdown up.
    assert daemon.stop() == 0
    assert "did not stop within" in daemon.output


async def _healthy(http: Any, url: str, name: str) -> Any:
    found = await _input(http, url, name)
    return found if found is not None and found["healthy"] else None


async def _history(http: Any, url: str, rid: int) -> Any:
    entries = await _json(http, f"{url}/api/v1/resources/{rid}/history?limit=50")
    return entries or None


# ---- the manifests directory -----------------------------------------------------------

TYPE_YAML = """\
kind: ResourceType
name: Widget
version: v1
schema:
  type: object
  properties:
    size: {type: integer, minimum: 1}
    color: {type: string}
"""


def _widget_yaml(name: str, size: int, color: str = "red") -> str:
    return (f"name: {name}\nresource_type_name: Widget\nresource_type_version: v1\n"
            f"spec:\n  size: {size}\n  color: {color}\n")


async def test_a_manifests_directory_is_kept_applied(daemon_factory, tmp_path, http):
    manifests = tmp_path / "manifests"
    (manifests / "apps").mkdir(parents=True)
    (manifests / "00-types.yaml").write_text(TYPE_YAML)
    (manifests / "apps" / "web.yaml").write_text(_widget_yaml("web", 1) + "---\n"
                                                 + _widget_yaml("api", 2))
    db = tmp_path / "gitops.db"
    daemon = daemon_factory(*WIDGETS, "--manifests", str(manifests), db=db)
    url = daemon.url

    async def widgets() -> dict[str, Any]:
        found = await _json(http, f"{url}/api/v1/resources?resource_type_name=Widget")
        return {r["name"]: r for r in found}

    async def names(expected: set[str]) -> Any:
        found = await widgets()
        return found if set(found) == expected else None

    found = await wait_for(lambda: names({"web", "api"}), timeout=20)
    assert found["web"]["metadata"] == {"managed_by": "input:manifests",
                                        "manifest_source": "apps/web.yaml"}
    # One made through the API is never the directory's to prune.
    resp = await http.post(f"{url}/api/v1/resources", json={
        "name": "handmade", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 3}})
    assert resp.status == 201
    # Edit a file: applied. Remove a document: pruned.
    (manifests / "apps" / "web.yaml").write_text(_widget_yaml("web", 5, "blue"))

    async def edited() -> Any:
        found = await widgets()
        return found if (found.get("web", {}).get("spec", {}).get("size") == 5
                         and "api" not in found) else None

    found = await wait_for(edited, timeout=20)
    assert found["web"]["generation"] == 2 and "handmade" in found
    # An edit through the API to a managed resource is overwritten at the next apply.
    web = found["web"]["id"]
    resp = await http.put(f"{url}/api/v1/resources/{web}", json={"spec": {"size": 9}})
    assert resp.status == 200
    # A broken file is reported with file and line, and skipped: nothing else is touched.
    (manifests / "apps" / "broken.yaml").write_text("name: [unclosed\n  oops: 1\n")
    (manifests / "apps" / "new.yaml").write_text(_widget_yaml("late", 1))
    # One pass applies the files in order (apps/new.yaml before apps/web.yaml), one write
    # each: wait for its end, where web has the directory's word again.

    async def reapplied() -> Any:
        found = await names({"web", "handmade", "late"})
        return found if found and found["web"]["spec"]["size"] == 5 else None

    found = await wait_for(reapplied, timeout=20)
    assert found["web"]["generation"] == 4  # 5, then 9 through the API, then 5 again

    async def reported() -> Any:
        state = await _input(http, url, "manifests")
        return state if state is not None and state["healthy"] is False else None

    state = await wait_for(reported, timeout=20)
    assert "apps/broken.yaml:" in state["health_message"]
    assert "invalid YAML" in state["health_message"]
    assert "Skipped a manifest file:" in daemon.output and "broken.yaml:" in daemon.output
    # While the daemon is down a file goes: the next start prunes what it declared.
    assert daemon.stop() == 0
    (manifests / "apps" / "new.yaml").unlink()
    (manifests / "apps" / "broken.yaml").unlink()
    again = daemon_factory(*WIDGETS, "--manifests", str(manifests), db=db)
    url = again.url
    found = await wait_for(lambda: names({"web", "handmade"}), timeout=20)
    state = await wait_for(lambda: _healthy(http, url, "manifests"), timeout=20)
    assert "1 pruned" in state["health_message"]


# ---- the contrib example, installed with pip ---------------------------------------------


def _install(target: Path) -> None:
    source = target.parent / "file-input-src"
    shutil.copytree(REPO / "contrib" / "no8s-file-input", source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(source)], check=True, timeout=300)


async def test_the_contrib_file_input_turns_lines_into_changes(daemon_factory, tmp_path, http):
    site = tmp_path / "site"
    _install(site)
    commands = tmp_path / "commands"
    commands.write_text("")
    db = tmp_path / "file-input.db"
    env = {"PYTHONPATH": f"{site}:{TESTS}", "NO8S_FILE_INPUT_PATH": str(commands),
           "NO8S_FILE_INPUT_POLL": "0.05"}
    # Through its real entry point: the daemon discovers installed plugins (no
    # --no-entry-points), and only the example is installed in that site folder.
    daemon = daemon_factory(*WIDGETS, db=db, env=env, entry_points=True)
    url = daemon.url
    assert "Registered input plugin: line_file 0.1.0" in daemon.output
    await _widget_type(http, url)
    resp = await http.post(f"{url}/api/v1/resources", json={
        "name": "w1", "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": {"size": 1}})
    rid = (await resp.json())["id"]
    with commands.open("a") as out:
        out.write("label Widget w1 owner=ops tier=2\nnonsense here\nreconcile Widget w1\n")

    async def labelled() -> Any:
        body = await _json(http, f"{url}/api/v1/resources/{rid}")
        return body if body["metadata"].get("owner") == "ops" else None

    body = await wait_for(labelled, timeout=20)
    assert body["metadata"] == {"owner": "ops", "tier": "2"}

    async def triggered() -> Any:
        entries = await _json(http, f"{url}/api/v1/resources/{rid}/history?limit=50")
        return [e for e in entries if e["triggered_by"] == "input:line_file"] or None

    await wait_for(triggered, timeout=20)
    state = await wait_for(lambda: _handled(http, url), timeout=20)
    assert "2 line(s) handled" in state["health_message"]
    assert "nonsense here" in state["health_message"]


async def _handled(http: Any, url: str) -> Any:
    state = await _input(http, url, "line_file")
    return state if state is not None and "2 line(s)" in state["health_message"] else None
