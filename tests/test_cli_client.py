"""The client commands (`no8sd apply/get/describe/wait/delete/...`) against a real daemon
subprocess, as a user runs them: output, exit codes, the event log, and a terminal."""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TESTS, Daemon, no8sd_command, on_terminal

PLUGIN = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")
TYPE_YAML = """\
kind: ResourceType
name: Widget
version: v1
description: test widgets
schema:
  type: object
  properties:
    size: {type: integer, minimum: 1}
    fail: {type: string}
    keep: {type: boolean}
    sleep: {type: number}
"""


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
            "spec": {"size": 1, **spec}}


def client_env(home: Path, server: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    env.update({"PYTHONPATH": str(TESTS), "XDG_CONFIG_HOME": str(home / "config"),
                "HOME": str(home), **extra})
    if server is not None:
        env["NO8SD_SERVER"] = server
    return env


class Cli:
    """Runs `no8sd` client commands against one daemon, with its own config directory."""

    def __init__(self, home: Path, server: str | None) -> None:
        self.home = home
        self.server = server

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60,
                 **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*no8sd_command(), *args], capture_output=True, text=True,
                              env=client_env(self.home, self.server, **env), input=stdin,
                              timeout=timeout)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The command failed with `code` and said why in one line, without a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no8sd: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr
    return lines[0]


def last_event_id(db: Path) -> int:
    """The newest id in the daemon's event log, read from its database file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One daemon (Widget plugin, type registered) for the tests that only add resources
    with names of their own."""
    home = tmp_path_factory.mktemp("cli")
    # A short grace: a test leaves a reconcile sleeping, which shutdown then cuts off.
    daemon = Daemon(["--db", str(home / "daemon.db"), "--port", "0", "--no-entry-points",
                     "--shutdown-grace", "1", *PLUGIN]).start()
    cli = Cli(home, daemon.url)
    (home / "type.yaml").write_text(TYPE_YAML)
    cli.ok("apply", "-f", str(home / "type.yaml"))
    yield cli
    daemon.stop()


def apply_objects(cli: Cli, folder: Path, *objects: dict[str, Any]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"objects-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(list(objects)))
    return cli.ok("apply", "-f", str(path))


# ---- apply --------------------------------------------------------------------------


def test_apply_a_directory_twice_second_run_writes_nothing(daemon_factory, tmp_path):
    daemon = daemon_factory(*PLUGIN)
    cli = Cli(tmp_path, daemon.url)
    folder = tmp_path / "manifests"
    (folder / "widgets" / ".hidden").mkdir(parents=True)
    (folder / "00-type.yaml").write_text(TYPE_YAML)
    (folder / "widgets" / "a.yaml").write_text(yaml.safe_dump_all(
        [widget("alpha"), {**widget("beta", size=2), "metadata": {"team": "edge"}}]))
    (folder / "widgets" / "b.json").write_text(json.dumps(widget("gamma")))
    (folder / "widgets" / "notes.txt").write_text("not a manifest")
    (folder / "widgets" / ".hidden" / "x.yaml").write_text("{{{ not read")
    first = cli.ok("apply", "-f", str(folder))
    assert first.splitlines() == ["resourcetype/Widget/v1 created", "widget/alpha created",
                                  "widget/beta created", "widget/gamma created"]
    for name in ("alpha", "beta", "gamma"):
        cli.ok("wait", f"widget/{name}", "--for=ready", "--timeout", "30s")
    before = last_event_id(tmp_path / "daemon.db")

    second = cli.ok("apply", "-f", str(folder))
    assert second.splitlines() == ["resourcetype/Widget/v1 unchanged",
                                   "widget/alpha unchanged", "widget/beta unchanged",
                                   "widget/gamma unchanged"]
    assert last_event_id(tmp_path / "daemon.db") == before  # nothing was written

    # A change shows as a diff in a dry run, and is applied (only) without one.
    (folder / "widgets" / "b.json").write_text(json.dumps(widget("gamma", size=7)))
    dry = cli.ok("apply", "-f", str(folder), "--dry-run")
    assert "widget/gamma configured (dry run)" in dry
    assert "~ spec.size: 1 -> 7" in dry and "widget/alpha unchanged (dry run)" in dry
    assert cli.json("get", "Widget/v1", "gamma")["spec"] == {"size": 1}
    assert last_event_id(tmp_path / "daemon.db") == before
    assert "widget/gamma configured" in cli.ok("apply", "-f", str(folder))
    assert cli.json("get", "Widget/v1", "gamma")["generation"] == 2


def test_apply_with_a_schema_violation_applies_the_others(shared, tmp_path):
    (tmp_path / "set.yaml").write_text(yaml.safe_dump_all(
        [widget("sv-good"), widget("sv-bad", size=0), widget("sv-fine")]))
    result = shared("apply", "-f", str(tmp_path / "set.yaml"))
    assert result.stdout.splitlines() == ["widget/sv-good created", "widget/sv-fine created"]
    one_error_line(result, 1, "widget/sv-bad", f"{tmp_path / 'set.yaml'}:",
                   "Spec validation failed: size: 0 is less than the minimum of 1")
    names = [r["name"] for r in shared.json("get", "resources")]
    assert "sv-good" in names and "sv-fine" in names and "sv-bad" not in names


def test_apply_reads_stdin_and_names_the_line_of_a_syntax_error(shared, tmp_path):
    piped = shared("apply", "-f", "-", stdin=json.dumps(widget("from-stdin")))
    assert piped.returncode == 0 and piped.stdout == "widget/from-stdin created\n"
    (tmp_path / "broken.yaml").write_text("name: x\nspec:\n  size: [1,\n  other: 2\n")
    one_error_line(shared("apply", "-f", str(tmp_path / "broken.yaml")), 2,
                   f"{tmp_path / 'broken.yaml'}:", "invalid YAML")
    (tmp_path / "broken.json").write_text('{\n  "name": "x",\n  "spec": {,}\n}\n')
    one_error_line(shared("apply", "-f", str(tmp_path / "broken.json")), 2,
                   f"{tmp_path / 'broken.json'}:3:12: invalid JSON")
    one_error_line(shared("apply", "-f", str(tmp_path / "missing")), 2, "no such file")


# ---- get ----------------------------------------------------------------------------


def test_get_in_every_output_format(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("fmt-one"), widget("fmt-two", fail="nope"))
    shared.ok("wait", "widget/fmt-one", "--for=ready")
    table = shared.ok("get", "Widget").splitlines()
    assert table[0].split() == ["NAME", "TYPE", "STATUS", "GEN/OBSERVED", "READY", "AGE"]
    row = next(line.split() for line in table if line.startswith("fmt-one "))
    assert row[:6] == ["fmt-one", "Widget/v1", "ready", "1/1", "True", "ReconcileSuccess"]
    wide = shared.ok("get", "widget/v1", "-o", "wide").splitlines()
    assert wide[0].split()[6:] == ["ID", "RETRIES", "NEXT", "RECONCILE", "MESSAGE"]
    assert any(line.startswith("fmt-one ") and line.endswith(" done") for line in wide)
    names = shared.ok("get", "resources", "-o", "name").splitlines()
    assert "widget/fmt-one" in names and "widget/fmt-two" in names
    listed = shared.json("get", "resources")
    assert {"fmt-one", "fmt-two"} <= {r["name"] for r in listed}
    assert yaml.safe_load(shared.ok("get", "Widget/v1", "fmt-one", "-o", "yaml"))["spec"] == \
        {"size": 1}
    shared.ok("wait", "widget/fmt-two", "--for=condition=Degraded")
    failed = shared.json("get", "resources", "--status", "failed")
    assert "fmt-two" in {r["name"] for r in failed}
    assert all(r["status"] == "failed" for r in failed)
    types = shared.ok("get", "types").splitlines()
    assert types[0].split()[:3] == ["NAME", "VERSION", "STATUS"] and "Widget" in types[1]
    # Piped, there is no colour.
    assert "\033[" not in shared.ok("get", "resources")


def test_naming_things_that_do_not_exist(shared):
    one_error_line(shared("get", "Gizmo"), 3, "no resource type named 'Gizmo'")
    one_error_line(shared("get", "Widget/v1", "nobody"), 3, "Resource not found")
    one_error_line(shared("describe", "widget/nobody"), 3, "no Widget named 'nobody'")
    one_error_line(shared("describe", "999999"), 3, "Resource not found")
    assert shared("get").returncode == 2  # usage


# ---- describe -----------------------------------------------------------------------


def test_describe_a_failed_and_a_deleting_resource(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("d-failed", fail="quota exceeded"),
                  widget("d-held", keep=True))
    failed = shared("wait", "widget/d-failed", "--for=ready")
    one_error_line(failed, 1, "widget/d-failed failed: quota exceeded")
    text = shared.ok("describe", "widget/d-failed")
    assert "Status:" in text and "failed: quota exceeded" in text
    assert "Retry:" in text and "(attempt 2)" in text
    assert "retry 2, with exponential backoff" in text
    assert "Last error: quota exceeded" in text
    assert "Degraded     True    ReconcileFailed" in text
    assert "failed  initial" in text  # the history entry

    shared.ok("wait", "widget/d-held", "--for=ready")
    shared.ok("delete", "widget/d-held")
    shared.ok("wait", "widget/d-held", "--for=condition=Ready=False")
    text = shared.ok("describe", "Widget/v1", "d-held")
    assert "Status:" in text and "deleting" in text
    assert "held by widgets" in text
    assert "deletion: its reconciler is to clean up" in text
    assert "cannot delete yet" in text


# ---- wait, delete -------------------------------------------------------------------


def test_wait_for_ready_and_timing_out(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("w-slow", sleep=1.0))
    done = shared("wait", "Widget", "w-slow", "--for=ready", "--timeout", "30s")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "widget/w-slow is ready"
    assert all("\r" not in line for line in lines)  # plain lines when piped
    assert shared("wait", "widget/w-slow", "--for=generation-observed").returncode == 0

    apply_objects(shared, tmp_path, widget("w-stuck", sleep=30))
    # It gives up (long before the reconcile ends) and says why.
    late = shared("wait", "widget/w-stuck", "--for=ready", "--timeout", "1s")
    one_error_line(late, 5, "timed out after 1s waiting for widget/w-stuck to be ready",
                   "(now: pending, generation 1 (observed 0))")
    usage = shared("wait", "widget/w-slow", "--for=sideways")
    assert usage.returncode == 2 and "Invalid value for --for" in usage.stderr


def test_delete_wait(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("del-me", sleep=0.5))
    shared.ok("wait", "widget/del-me", "--for=ready")
    result = shared("delete", "widget/del-me", "--wait", "--timeout", "30s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "widget/del-me is deleted"
    one_error_line(shared("get", "Widget/v1", "del-me"), 3, "Resource not found")
    # Waiting for something already gone succeeds at once.
    assert shared("wait", "widget/del-me", "--for=deleted").returncode == 0


def test_reconcile_history_and_finalizers(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("ctl"))
    shared.ok("wait", "widget/ctl", "--for=ready")
    assert shared.ok("reconcile", "widget/ctl") == "widget/ctl reconcile triggered\n"
    shared.ok("finalizers", "add", "widget/ctl", "--name", "backup.example.com")
    assert "widgets, backup.example.com" in shared.ok("describe", "widget/ctl")
    shared.ok("finalizers", "remove", "widget/ctl", "--name", "backup.example.com")

    def manual_entry() -> bool:
        return any(h["trigger_reason"] == "manual"
                   for h in shared.json("history", "widget/ctl"))

    deadline = time.monotonic() + 20
    while not manual_entry():
        assert time.monotonic() < deadline
        shared.ok("wait", "widget/ctl", "--for=ready")
    history = shared.ok("history", "widget/ctl").splitlines()
    assert history[0].split()[:5] == ["TIME", "AGE", "GEN", "RESULT", "TRIGGER"]
    assert "manual" in "\n".join(history) and "initial" in "\n".join(history)


# ---- watch --------------------------------------------------------------------------


class Lines:
    """A subprocess's stdout lines, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self.queue.put(line.rstrip("\n"))
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, done: Any, timeout: float = 30) -> list[str]:
        """Read lines until `done(lines)` holds; return them."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while not done(lines):
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the watcher printed only {lines}") from None
            assert line is not None, f"the watcher ended after {lines}"
            lines.append(line)
        return lines


def test_watch_across_a_daemon_restart(daemon_factory, tmp_path):
    from test_cli import free_port

    port = free_port()
    daemon = daemon_factory(*PLUGIN, port=port)
    cli = Cli(tmp_path, daemon.url)
    (tmp_path / "type.yaml").write_text(TYPE_YAML)
    cli.ok("apply", "-f", str(tmp_path / "type.yaml"))
    apply_objects(cli, tmp_path, widget("before"))
    cli.ok("wait", "widget/before", "--for=ready")
    watcher = subprocess.Popen([*no8sd_command(), "get", "Widget", "-w", "-o", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=client_env(tmp_path, daemon.url))
    try:
        output = Lines(watcher)
        seen = output.until(lambda lines: len(lines) >= 1)
        assert json.loads(seen[0])["name"] == "before"  # the list first
        apply_objects(cli, tmp_path, widget("during"))
        seen += output.until(lambda lines: any(
            json.loads(x)["name"] == "during" and json.loads(x)["status"] == "ready"
            for x in lines))
        assert daemon.stop() == 0
        again = daemon_factory(*PLUGIN, port=port)
        # Changes right after the restart arrive whether or not the watcher is back yet.
        apply_objects(cli, tmp_path, widget("after"))
        cli.ok("delete", "widget/before", "--wait")
        seen += output.until(lambda lines: any(
            json.loads(x)["name"] == "before" and json.loads(x)["status"] == "removed"
            for x in lines) and any(json.loads(x)["name"] == "after"
                                    and json.loads(x)["status"] == "ready" for x in lines))
        states = [(json.loads(x)["name"], json.loads(x)["status"],
                   json.loads(x)["observed_generation"], tuple(json.loads(x)["finalizers"]))
                  for x in seen]
        assert len(states) == len(set(states)), f"a state was printed twice: {states}"
        assert ("after", "pending", 0, ("widgets",)) in states
        assert ("before", "deleting", 1, ("widgets",)) in states
        assert again.stop() == 0
    finally:
        watcher.kill()
        watcher.communicate()  # reaps it and closes its pipes


# ---- connection, login, terminals ---------------------------------------------------


def test_a_daemon_that_is_not_running_is_one_clear_line(tmp_path):
    from test_cli import free_port

    url = f"http://127.0.0.1:{free_port()}"
    cli = Cli(tmp_path, url)
    one_error_line(cli("get", "resources"), 1,
                   f"cannot reach no8sd at {url}: connection refused")
    one_error_line(cli("get", "resources", "--server", "ftp://x"), 2, "http:// or https://")


def test_login_logout_and_admin_commands_over_http(daemon_factory, tmp_path):
    password = "cli-password-123"
    daemon = daemon_factory("--auth", "token", *PLUGIN,
                            env={"INITIAL_ADMIN_USERNAME": "boss",
                                 "INITIAL_ADMIN_PASSWORD": password})
    cli = Cli(tmp_path, None)
    one_error_line(cli("get", "resources", "--server", daemon.url), 4,
                   "Missing or invalid Authorization header")
    logged = cli("login", "--server", daemon.url, "--username", "boss", stdin=password + "\n")
    assert logged.returncode == 0, logged.stderr
    assert f"Logged in to {daemon.url} as boss" in logged.stdout
    stored = tmp_path / "config" / "no8sd" / "login.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    token = json.loads(stored.read_text())["servers"][daemon.url]["token"]
    assert password not in stored.read_text()
    assert cli.ok("get", "resources") == ""  # no --server, no --token: the stored login

    # The user and token commands go to the daemon when logged in (no --db given).
    created = cli("user", "create", "bob", stdin="bob-password-123\n")
    assert created.returncode == 0 and "Created user bob" in created.stdout, created.stderr
    secret = cli.ok("token", "create", "--user", "bob", "--name", "ci").strip()
    listing = cli.ok("token", "list", "--user", "bob").splitlines()
    assert listing[0].startswith("ID\tUSER") and "\tbob\tci\t" in listing[1]
    assert listing[1].endswith("active") and secret not in "\n".join(listing)
    assert cli.json("get", "resources", "--token", secret) == []
    cli.ok("token", "revoke", listing[1].split("\t")[0])
    one_error_line(cli("get", "resources", "--token", secret), 4, "Token has been revoked")
    one_error_line(cli("token", "revoke", "9999"), 3, "Token not found")

    assert cli.ok("logout") == f"Logged out of {daemon.url}\n"
    assert daemon.url not in json.loads(stored.read_text())["servers"]
    one_error_line(cli("get", "resources", "--server", daemon.url, "--token", token), 4,
                   "revoked")
    one_error_line(cli("logout"), 1, "not logged in")
    bad = cli("login", "--server", daemon.url, "-u", "boss", stdin="wrong-password\n")
    one_error_line(bad, 4, "Invalid credentials")


def test_login_to_a_daemon_without_authentication(daemon_factory, tmp_path):
    daemon = daemon_factory()
    cli = Cli(tmp_path, None)
    result = cli("login", "--server", daemon.url)
    assert result.returncode == 0 and "authentication is off" in result.stdout, result.stderr
    assert cli.ok("get", "resources") == ""


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 30) -> str:
    """Run a command with its stdout and stderr on a pseudo-terminal; return what it wrote."""
    code, shown = on_terminal(args, env, timeout=timeout)
    assert code == 0, shown
    return shown


def test_terminal_output_through_a_pseudo_terminal(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("tty-one", sleep=0.5))
    env = client_env(shared.home, shared.server)
    waited = run_in_terminal([*no8sd_command(), "wait", "widget/tty-one", "--for=ready"], env)
    assert "\r\033[Kwaiting for widget/tty-one to be ready:" in waited  # a live line
    assert waited.rstrip().endswith("widget/tty-one is ready")
    listed = run_in_terminal([*no8sd_command(), "get", "Widget/v1", "tty-one"], env)
    assert "\033[32mready\033[0m" in listed  # status in colour on a terminal
    plain = run_in_terminal([*no8sd_command(), "get", "Widget/v1", "tty-one"],
                            {**env, "NO_COLOR": "1"})
    assert "\033[" not in plain and "ready" in plain


# ---- the command itself -------------------------------------------------------------


def test_client_commands_load_no_web_server_and_no_store(shared):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "no8sd", "get", "resources"],
        capture_output=True, text=True, env=client_env(shared.home, shared.server), timeout=60)
    assert proc.returncode == 0, proc.stderr
    modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:")}
    for heavy in ("aiohttp", "aiosqlite", "sqlite3", "jsonschema", "no8sd.store",
                  "no8sd.core", "no8sd.app", "yaml"):
        assert heavy not in modules, f"`no8sd get` imports {heavy}"


def test_every_command_has_help_with_an_example(tmp_path):
    from no8sd.cli import COMMANDS, main

    cli = Cli(tmp_path, None)
    for name in COMMANDS:
        command = main.get_command(None, name)  # type: ignore[arg-type]
        leaves = [[name]]
        if hasattr(command, "commands"):
            leaves += [[name, sub] for sub in command.commands]
        for path in leaves:
            text = cli.ok(*path, "--help")
            assert "Example" in text, f"no8sd {' '.join(path)} --help has no example"
    script = cli.ok("completion", "bash")
    assert "_NO8SD_COMPLETE" in script and "complete" in script


def test_plugins_from_the_daemon(shared):
    text = shared.ok("plugins")
    assert "widgets" in text and "running" in text and "Widget" in text
    reconcilers = json.loads(shared.ok("plugins", "-o", "json"))["reconcilers"]
    assert [(p["name"], p["state"], p["last_error"]) for p in reconcilers] == \
        [("widgets", "running", None)]


def test_shell_completion_asks_the_daemon(shared, tmp_path):
    apply_objects(shared, tmp_path, widget("completes-me"))
    words = shared(_NO8SD_COMPLETE="bash_complete", COMP_WORDS="no8sd describe widget/comp",
                   COMP_CWORD="2")
    assert words.stdout.split() == ["plain,widget/completes-me"], words.stderr
    targets = shared(_NO8SD_COMPLETE="bash_complete", COMP_WORDS="no8sd get ",
                     COMP_CWORD="2").stdout.split()
    assert targets == ["plain,resources", "plain,types", "plain,Widget"]
    # Without a daemon there is nothing to suggest, and nothing is printed but that.
    quiet = Cli(tmp_path, "http://127.0.0.1:9")(_NO8SD_COMPLETE="bash_complete",
                                                COMP_WORDS="no8sd describe w", COMP_CWORD="2")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "" and quiet.stderr == ""
