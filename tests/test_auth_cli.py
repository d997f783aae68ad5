"""The `no8sd` command and authentication: refusing open non-loopback listeners, the
first admin from the environment, and the `user` and `token` commands on a live daemon."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from conftest import TESTS, json_request, no8sd_command

PASSWORD = "cli-password-123"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("NO8SD_") and not k.startswith("INITIAL_ADMIN")}
    full_env.update({"PYTHONPATH": str(TESTS), **(env or {})})
    return subprocess.run([*no8sd_command(), *args], env=full_env, capture_output=True,
                          text=True, timeout=60, input=stdin)


def request(url: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    return json_request(url, "POST" if body is not None else "GET", body, token)


def login(url: str, username: str, password: str) -> str:
    status, body = request(url + "/api/v1/auth/login",
                           body={"username": username, "password": password})
    assert status == 200, body
    return body["access_token"]


@pytest.mark.parametrize("hosts", [["0.0.0.0"], ["127.0.0.1", "::"], ["example.com"]])
def test_non_loopback_without_auth_refuses_to_start_with_one_line(tmp_path, hosts):
    args = [a for host in hosts for a in ("--host", host)]
    result = run("--db", str(tmp_path / "x.db"), "--port", "0", "--no-entry-points", *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("no8sd: error: refusing to listen on ")
    assert "--auth token" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing was opened either


def test_environment_variable_turns_auth_on_and_loopback_stays_open(daemon_factory, tmp_path):
    for host in ("127.0.0.2", "localhost"):
        daemon = daemon_factory("--host", host, db=tmp_path / "a.db")
        assert request(daemon.url + "/api/v1/resources")[0] == 200
        assert daemon.stop() == 0
    secured = daemon_factory("--host", "0.0.0.0", db=tmp_path / "b.db",
                             env={"NO8SD_AUTH": "token"})
    url = secured.url.replace("0.0.0.0", "127.0.0.1")
    status, body = request(url + "/api/v1/resources")
    assert status == 401 and body == {"detail": "Missing or invalid Authorization header"}
    assert request(url + "/health")[0] == 200
    assert secured.stop() == 0


def test_initial_admin_from_the_environment(daemon_factory, tmp_path):
    daemon = daemon_factory("--auth", "token", env={"INITIAL_ADMIN_USERNAME": "boss",
                                                    "INITIAL_ADMIN_PASSWORD": PASSWORD})
    token = login(daemon.url, "boss", PASSWORD)
    status, me = request(daemon.url + "/api/v1/auth/me", token=token)
    assert status == 200 and me["is_admin"] is True
    assert PASSWORD not in daemon.output
    assert daemon.stop() == 0


def test_initial_admin_password_from_a_systemd_credential(daemon_factory, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "initial_admin_password").write_text(PASSWORD + "\n")
    daemon = daemon_factory("--auth", "token", env={"INITIAL_ADMIN_USERNAME": "boss",
                                                    "CREDENTIALS_DIRECTORY": str(creds)})
    login(daemon.url, "boss", PASSWORD)
    assert daemon.stop() == 0


def test_user_create_reads_the_password_from_stdin(daemon_factory, tmp_path):
    db = str(tmp_path / "daemon.db")
    # Before any daemon ever ran: the command creates and migrates the file itself.
    result = run("--db", db, "user", "create", "--admin", "alice", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "Created admin alice" in result.stdout and PASSWORD not in result.stdout
    daemon = daemon_factory("--auth", "token")
    admin = login(daemon.url, "alice", PASSWORD)
    # While the daemon runs: a new user can log in at once.
    result = run("--db", db, "user", "create", "bob", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    bob = login(daemon.url, "bob", PASSWORD)
    status, me = request(daemon.url + "/api/v1/auth/me", token=bob)
    assert status == 200 and me["is_admin"] is False
    status, users = request(daemon.url + "/api/v1/users", token=admin)
    assert [u["username"] for u in users] == ["alice", "bob"]
    for args, stdin, fragment in (
            (("bob",), PASSWORD, "User 'bob' already exists"),
            (("carol",), "short", "at least 8 characters"),
            (("Not_Valid",), PASSWORD, "username must consist of")):
        result = run("--db", db, "user", "create", *args, stdin=stdin + "\n")
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith("no8sd: error: ") and fragment in result.stderr
    assert daemon.stop() == 0


def test_token_commands_against_a_running_daemon(daemon_factory, tmp_path):
    db = str(tmp_path / "daemon.db")
    daemon = daemon_factory("--auth", "token", env={"INITIAL_ADMIN_USERNAME": "boss",
                                                    "INITIAL_ADMIN_PASSWORD": PASSWORD})
    result = run("--db", db, "token", "create", "--user", "boss", "--name", "ci")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert len(secret) >= 40 and "shown only once" in result.stderr
    status, me = request(daemon.url + "/api/v1/auth/me", token=secret)
    assert status == 200 and me["username"] == "boss"
    listing = run("--db", db, "token", "list")
    assert listing.returncode == 0
    assert "ci" in listing.stdout and "active" in listing.stdout
    assert secret not in listing.stdout
    token_id = listing.stdout.splitlines()[1].split("\t")[0]
    result = run("--db", db, "token", "revoke", token_id)
    assert result.returncode == 0, result.stderr
    status, body = request(daemon.url + "/api/v1/auth/me", token=secret)
    assert status == 401 and body == {"detail": "Token has been revoked"}
    assert "revoked" in run("--db", db, "token", "list", "--user", "boss").stdout
    for args, fragment in ((("create", "--user", "nobody", "--name", "x"), "no user named"),
                           (("create", "--user", "boss", "--name", "ci2",
                             "--expires-in-days", "0"), "--expires-in-days"),
                           (("revoke", "999"), "Token not found")):
        result = run("--db", db, "token", *args)
        assert result.returncode != 0 and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert daemon.stop() == 0


@pytest.mark.parametrize("username,password,fragment", [
    ("boss", "short", "INITIAL_ADMIN_PASSWORD must be at least 8 characters"),
    ("Big Boss", PASSWORD, "INITIAL_ADMIN_USERNAME must be"),
])
def test_an_unusable_initial_admin_is_refused_at_start(tmp_path, username, password, fragment):
    result = run("--db", str(tmp_path / "x.db"), "--port", "0", "--no-entry-points",
                 "--auth", "token",
                 env={"INITIAL_ADMIN_USERNAME": username, "INITIAL_ADMIN_PASSWORD": password})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "no8sd: error:" in line]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert password not in result.stderr and "Traceback" not in result.stderr
