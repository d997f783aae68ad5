"""The `no8sd` command as a user runs it: options, environment, start-up errors, signals."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request

import pytest
from conftest import TESTS, Daemon, no8sd_command

from no8sd import __version__


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NO8SD_")}
    full_env.update({"PYTHONPATH": str(TESTS), **(env or {})})
    return subprocess.run([*no8sd_command(), *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    err_lines = [line for line in result.stderr.splitlines() if "no8sd: error:" in line]
    assert len(err_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in err_lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_version_and_help():
    result = run("--version")
    assert result.returncode == 0 and __version__ in result.stdout
    module = subprocess.run([sys.executable, "-m", "no8sd", "--version"], capture_output=True,
                            text=True, timeout=30)
    assert module.returncode == 0 and __version__ in module.stdout
    helptext = run("--help").stdout
    for option in ("--db", "--host", "--port", "--log-level", "--version", "--plugin"):
        assert option in helptext


def test_environment_variables_configure_the_daemon(tmp_path):
    port = free_port()
    db = tmp_path / "env.db"
    daemon = Daemon([], env={"NO8SD_PORT": str(port), "NO8SD_DB": str(db),
                             "NO8SD_ENTRY_POINTS": "false", "NO8SD_LOG_LEVEL": "DEBUG"}).start()
    try:
        assert daemon.url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(daemon.url + "/health") as resp:
            assert resp.status == 200
        assert f"Using database {db}" in daemon.output
        assert " DEBUG " in daemon.output
    finally:
        assert daemon.stop() == 0
    assert db.exists()


def test_default_database_under_systemd_state_directory(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    daemon = Daemon(["--port", "0", "--no-entry-points"],
                    env={"STATE_DIRECTORY": str(state)}).start()
    try:
        assert f"Using database {state / 'no8sd.db'}" in daemon.output
    finally:
        assert daemon.stop() == 0
    assert (state / "no8sd.db").exists()


def test_default_database_in_user_data_dir(tmp_path):
    daemon = Daemon(["--port", "0", "--no-entry-points"],
                    env={"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}).start()
    try:
        assert f"Using database {tmp_path / 'data' / 'no8sd' / 'no8sd.db'}" in daemon.output
    finally:
        assert daemon.stop() == 0


def test_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("--db", str(tmp_path / "x.db"), "--port", str(port), "--no-entry-points")
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


def test_unusable_database_paths_are_one_clear_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run("--db", str(blocker / "x.db"), "--port", "0", "--no-entry-points")
    assert_one_line_error(result, "cannot open database")

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database, just some bytes" * 200)
    result = run("--db", str(corrupt), "--port", "0", "--no-entry-points")
    assert_one_line_error(result, "corrupt.db")
    assert corrupt.read_bytes() == b"this is not a database, just some bytes" * 200

    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 999")
    result = run("--db", str(newer), "--port", "0", "--no-entry-points")
    assert_one_line_error(result, "newer than this no8sd understands")


def test_second_daemon_on_the_same_database_is_refused(daemon_factory, tmp_path):
    db = tmp_path / "shared.db"
    first = daemon_factory(db=db)
    result = run("--db", str(db), "--port", "0", "--no-entry-points")
    assert_one_line_error(result, "in use by another running no8sd")
    with urllib.request.urlopen(first.url + "/health") as resp:
        assert resp.status == 200  # the first one is undisturbed
    assert first.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_with_exit_code_zero(daemon_factory, tmp_path, sig):
    daemon = daemon_factory("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")
    assert daemon.stop(sig) == 0
    output = daemon.output
    assert "Shutting down" in output and "Database closed" in output and "Stopped" in output
    assert "Traceback" not in output
    # The WAL was folded back into the database file on a clean stop.
    assert not (tmp_path / "daemon.db-wal").exists() or \
        (tmp_path / "daemon.db-wal").stat().st_size == 0


def test_plugins_command_lists_what_would_be_loaded():
    result = run("--no-entry-points", "--plugin", "no8sd_testplugins.widgets:WidgetReconciler",
                 "--plugin", "no8sd_testplugins.widgets:WidgetThief", "plugins", "--local")
    assert result.returncode == 0
    assert "widgets" in result.stdout and "Widget" in result.stdout
    assert "failed:" in result.stdout and "already claimed by reconciler 'widgets'" in \
        result.stdout
    empty = run("--no-entry-points", "plugins", "--local")
    assert "No reconciler plugins found." in empty.stdout
