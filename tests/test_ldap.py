"""Directory users against a real OpenLDAP server (tests/ldapkit.py): the sync, LDAP logins,
injection attempts, empty passwords, a directory that is down or hung, TLS, and the
`no8sd user ldap-sync` command."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from authkit import ADMIN, PASSWORD, admin_token, bearer, login, make_user, token_client
from conftest import REPO, TESTS, no8sd_command, wait_for
from ldapkit import BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd, make_ca, start_slapd

INVALID = {"detail": "Invalid credentials"}
SYNC = "/api/v1/users/ldap-sync"


@pytest.fixture
def slapd(tmp_path: Path) -> Any:
    server = start_slapd(tmp_path / "slapd")
    server.add_user("alice", "alice-password", mail="alice@example.org", cn="Alice Liddell")
    server.add_user("bob", "bob-password", mail="bob@example.org", cn="Bob Builder")
    yield server
    server.stop()


@pytest.fixture
def tls_slapd(tmp_path: Path) -> Any:
    server = start_slapd(tmp_path / "slapd", tls=True)
    server.add_user("alice", "alice-password", mail="alice@example.org")
    yield server
    server.stop()


async def ldap_client(make_client: Any, directory: Slapd, **overrides: Any) -> tuple[Any, str]:
    """A token-mode server using `directory`, and the bootstrap admin's token."""
    client = await token_client(make_client, **directory.settings(**overrides))
    return client, await admin_token(client)


async def sync(client: Any, admin: str, status: int = 200) -> dict[str, Any]:
    resp = await client.post(SYNC, headers=bearer(admin))
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def users_by_name(client: Any, admin: str) -> dict[str, dict[str, Any]]:
    resp = await client.get("/api/v1/users", headers=bearer(admin))
    assert resp.status == 200
    return {u["username"]: u for u in await resp.json()}


async def try_login(client: Any, username: str, password: str) -> tuple[int, Any]:
    resp = await client.post("/api/v1/auth/login", json={"username": username,
                                                          "password": password},
                             timeout=aiohttp.ClientTimeout(total=30))
    return resp.status, await resp.json()


# ---- sync ------------------------------------------------------------------------------


async def test_sync_creates_directory_users_as_plain_users(make_client, slapd):
    client, admin = await ldap_client(make_client, slapd)
    assert await sync(client, admin) == {"created": 2, "updated": 0, "total": 2,
                                         "suspended": 0, "skipped": 0}
    users = await users_by_name(client, admin)
    alice = users["alice"]
    assert (alice["source"], alice["email"], alice["display_name"]) == \
        ("ldap", "alice@example.org", "Alice Liddell")
    assert (alice["is_admin"], alice["custom_role_id"], alice["status"]) == \
        (False, None, "active")
    assert alice["last_synced_at"] is not None
    assert users[ADMIN[0]]["source"] == "manual"
    resp = await client.get("/api/v1/users?source=ldap", headers=bearer(admin))
    assert sorted(u["username"] for u in await resp.json()) == ["alice", "bob"]


async def test_resync_refreshes_attributes_and_counts_updates(make_client, slapd):
    client, admin = await ldap_client(make_client, slapd)
    await sync(client, admin)
    before = (await users_by_name(client, admin))["alice"]
    slapd.modify("alice", mail="alice@new.example.org", cn="Alice Pleasance")
    slapd.add_user("carol", "carol-password")
    assert await sync(client, admin) == {"created": 1, "updated": 2, "total": 3,
                                         "suspended": 0, "skipped": 0}
    after = (await users_by_name(client, admin))["alice"]
    assert (after["email"], after["display_name"]) == ("alice@new.example.org",
                                                       "Alice Pleasance")
    assert after["id"] == before["id"]
    assert after["last_synced_at"] >= before["last_synced_at"]


async def test_vanished_user_is_suspended_not_deleted_and_loses_every_token(make_client,
                                                                           slapd):
    client, admin = await ldap_client(make_client, slapd)
    await sync(client, admin)
    alice_id = (await users_by_name(client, admin))["alice"]["id"]
    session = await login(client, "alice", "alice-password")
    resp = await client.post(f"/api/v1/users/{alice_id}/tokens", headers=bearer(admin),
                             json={"name": "ci"})
    api_token = (await resp.json())["token"]
    assert (await client.get("/api/v1/auth/me", headers=bearer(api_token))).status == 200

    slapd.delete("alice")
    assert await sync(client, admin) == {"created": 0, "updated": 1, "total": 1,
                                         "suspended": 1, "skipped": 0}
    alice = (await users_by_name(client, admin))["alice"]
    assert alice["status"] == "suspended"  # still there, with its history
    for token in (session, api_token):
        resp = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert resp.status == 401
    tokens = await (await client.get(f"/api/v1/users/{alice_id}/tokens",
                                     headers=bearer(admin))).json()
    assert [t["revoked"] for t in tokens] == [True]

    # Back in the directory: active again, under the same id, but no token comes back.
    slapd.add_user("alice", "alice-password", mail="alice@example.org")
    assert (await sync(client, admin))["suspended"] == 0
    alice = (await users_by_name(client, admin))["alice"]
    assert (alice["id"], alice["status"]) == (alice_id, "active")
    for token in (session, api_token):
        assert (await client.get("/api/v1/auth/me", headers=bearer(token))).status == 401
    await login(client, "alice", "alice-password")


async def test_a_suspension_by_an_admin_outlasts_syncs(make_client, slapd):
    client, admin = await ldap_client(make_client, slapd)
    await sync(client, admin)
    bob_id = (await users_by_name(client, admin))["bob"]["id"]
    assert (await client.delete(f"/api/v1/users/{bob_id}", headers=bearer(admin))).status == 204
    await sync(client, admin)
    assert (await users_by_name(client, admin))["bob"]["status"] == "suspended"
    assert await try_login(client, "bob", "bob-password") == (401, INVALID)


async def test_sync_never_takes_over_a_manual_account(make_client, slapd):
    # A directory entry with the bootstrap admin's name must not become that admin.
    slapd.add_user(ADMIN[0], "directory-password", mail="intruder@example.org")
    client, admin = await ldap_client(make_client, slapd)
    assert await sync(client, admin) == {"created": 2, "updated": 0, "total": 3,
                                         "suspended": 0, "skipped": 1}
    root = (await users_by_name(client, admin))[ADMIN[0]]
    assert (root["source"], root["is_admin"], root["email"]) == ("manual", True, None)
    assert await try_login(client, ADMIN[0], "directory-password") == (401, INVALID)
    await login(client, *ADMIN)


async def test_sync_is_503_when_ldap_is_not_configured(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    assert await sync(client, admin, 503) == {"detail": "LDAP is not configured"}


async def test_two_syncs_never_overlap(make_client, slapd):
    for n in range(20):
        slapd.add_user(f"user{n}", "some-password")
    client, admin = await ldap_client(make_client, slapd)
    results = await asyncio.gather(*(sync(client, admin) for _ in range(3)))
    assert sorted(r["created"] for r in results) == [0, 0, 22]
    # In slapd's log, each service-account connection ends before the next one binds.
    lines = slapd.log.read_text().splitlines()
    service = {m.group(1) for line in lines
               if (m := re.search(rf'conn=(\d+) op=\d+ BIND dn="{SERVICE_DN}"', line))}
    events = [(m.group(1), "closed" in line) for line in lines
              if (m := re.search(r"conn=(\d+) (?:op=\d+ BIND|fd=\d+ closed)", line))
              and m.group(1) in service]
    assert len(service) == 3
    open_now: set[str] = set()
    for conn, closed in events:
        if closed:
            open_now.discard(conn)
        else:
            assert not open_now - {conn}, f"sync connections overlap: {events}"
            open_now.add(conn)


async def test_periodic_sync_follows_the_directory_and_outlives_its_failures(
        make_client, slapd, caplog):
    client, admin = await ldap_client(make_client, slapd, ldap_sync_interval=0.2,
                                      ldap_timeout=0.5)

    async def has(name: str, status: str = "active") -> bool:
        found = (await users_by_name(client, admin)).get(name)
        return found is not None and found["status"] == status

    await wait_for(lambda: has("alice"))
    slapd.add_user("carol", "carol-password")
    await wait_for(lambda: has("carol"))
    slapd.delete("bob")
    await wait_for(lambda: has("bob", "suspended"))
    slapd.freeze()
    try:
        async def failed() -> bool:
            return "LDAP sync failed: error receiving data: timed out" in caplog.text

        await wait_for(failed)
    finally:
        slapd.thaw()
    slapd.add_user("dave", "dave-password")
    await wait_for(lambda: has("dave"))


# ---- login -----------------------------------------------------------------------------


async def test_ldap_login_checks_the_password_with_the_directory(make_client, slapd, caplog):
    caplog.set_level(logging.INFO, logger="no8sd")
    client, admin = await ldap_client(make_client, slapd)
    await sync(client, admin)
    token = await login(client, "alice", "alice-password")
    me = await (await client.get("/api/v1/auth/me", headers=bearer(token))).json()
    assert (me["username"], me["source"]) == ("alice", "ldap")
    assert me["last_login_at"] is not None
    # The password lives in the directory: a change there is the next login's password.
    slapd.modify("alice", userPassword="changed-password")
    assert await try_login(client, "alice", "alice-password") == (401, INVALID)
    await login(client, "alice", "changed-password")
    assert await try_login(client, "nobody", "alice-password") == (401, INVALID)
    assert await try_login(client, "bob", "alice-password") == (401, INVALID)
    log = caplog.text
    assert "LDAP login of 'alice' failed: wrong password" in log
    assert "Login of 'nobody' failed: no such user" in log
    # Manual users keep their own passwords.
    await make_user(client, admin, "manual-user")
    await login(client, "manual-user", PASSWORD)


async def test_a_directory_user_gets_no_local_password(make_client, slapd):
    client, admin = await ldap_client(make_client, slapd)
    await sync(client, admin)
    alice_id = (await users_by_name(client, admin))["alice"]["id"]
    resp = await client.put(f"/api/v1/users/{alice_id}", headers=bearer(admin),
                            json={"password": "a-local-password"})
    assert (resp.status, await resp.json()) == (
        422, {"detail": "a directory user's password is kept in the directory"})
    assert await try_login(client, "alice", "a-local-password") == (401, INVALID)


async def test_a_user_leaving_the_directory_cannot_log_in_before_the_next_sync(make_client,
                                                                              slapd):
    client, admin = await ldap_client(
        make_client, slapd,
        ldap_user_filter="(&(objectClass=inetOrgPerson)(!(employeeType=former)))")
    await sync(client, admin)
    await login(client, "alice", "alice-password")
    slapd.modify("alice", employeeType="former")  # the password still binds
    assert await try_login(client, "alice", "alice-password") == (401, INVALID)
    slapd.delete("bob")
    assert await try_login(client, "bob", "bob-password") == (401, INVALID)


async def test_injected_usernames_neither_widen_a_search_nor_bind_as_someone_else(
        make_client, slapd):
    odd = "weird*(user)\\"
    odd_dn = slapd.add_user(odd, "odd-password")
    client, admin = await ldap_client(make_client, slapd)
    assert (await sync(client, admin))["created"] == 3
    binds = slapd.binds_as(slapd.dn("alice"))
    for attempt in ("*", "*)(uid=*", "alice)(|(uid=*", "alice*", "al*ce", "ALICE",
                    "alice\x00", f"uid=alice,ou=people,{BASE}", "alice,ou=people"):
        assert await try_login(client, attempt, "alice-password") == (401, INVALID), attempt
    assert slapd.binds_as(slapd.dn("alice")) == binds  # none of them reached alice's entry
    # A name full of filter metacharacters is escaped, so its owner logs in as itself...
    token = await login(client, odd, "odd-password")
    me = await (await client.get("/api/v1/auth/me", headers=bearer(token))).json()
    assert me["username"] == odd
    assert slapd.binds_as(odd_dn) == 1
    # ...and nobody else does with alice's password.
    assert await try_login(client, odd, "alice-password") == (401, INVALID)


async def test_an_empty_password_is_refused_before_any_bind(make_client, tmp_path):
    directory = start_slapd(tmp_path / "slapd", allow_empty_password_bind=True)
    try:
        dn = directory.add_user("alice", "alice-password")
        # This server takes a DN with an empty password as a successful (anonymous) bind.
        who = subprocess.run(["ldapwhoami", "-x", "-H", directory.url, "-D", dn, "-w", ""],
                             capture_output=True, text=True, check=False)
        assert (who.returncode, who.stdout.strip()) == (0, "anonymous"), who.stderr
        client, admin = await ldap_client(make_client, directory)
        await sync(client, admin)
        binds = directory.binds_as(dn)
        assert await try_login(client, "alice", "") == (401, INVALID)
        assert directory.binds_as(dn) == binds
    finally:
        directory.stop()


async def test_a_hung_directory_fails_ldap_logins_in_time_and_not_manual_ones(
        make_client, slapd, caplog):
    caplog.set_level(logging.INFO, logger="no8sd")
    client, admin = await ldap_client(make_client, slapd, ldap_timeout=0.5)
    await sync(client, admin)
    await make_user(client, admin, "manual-user")
    slapd.freeze()
    try:
        # More LDAP logins than the directory has slots, and a manual one among them.
        results = await asyncio.gather(
            *(try_login(client, name, "wrong-or-right")
              for name in ("alice", "bob") * 3),
            try_login(client, "manual-user", PASSWORD))
        assert results[:-1] == [(401, INVALID)] * 6
        assert results[-1][0] == 200
        assert "did not answer within 0.5 s" in caplog.text
    finally:
        slapd.thaw()
    slapd.stop()
    assert await try_login(client, "alice", "alice-password") == (401, INVALID)
    assert "LDAP login of 'alice' failed: the directory could not be reached" in caplog.text
    await login(client, "manual-user", PASSWORD)


@pytest.mark.parametrize("failure", ["stopped", "hung"])
async def test_a_sync_against_a_failing_directory_is_502_and_changes_nothing(
        make_client, slapd, failure):
    client, admin = await ldap_client(make_client, slapd, ldap_timeout=0.5)
    await sync(client, admin)
    before = await users_by_name(client, admin)
    if failure == "stopped":
        slapd.stop()
    else:
        slapd.freeze()
    try:
        body = await sync(client, admin, 502)
    finally:
        if failure == "hung":
            slapd.thaw()
    assert body["detail"].startswith("LDAP sync failed: ")
    assert ("Connection refused" if failure == "stopped" else "timed out") in body["detail"]
    assert await users_by_name(client, admin) == before  # nobody suspended


async def test_a_wrong_service_password_is_a_clear_502(make_client, slapd):
    client, admin = await ldap_client(make_client, slapd, ldap_bind_password="wrong")
    body = await sync(client, admin, 502)
    assert "invalidCredentials" in body["detail"]


# ---- TLS -------------------------------------------------------------------------------


async def test_starttls_with_the_test_ca(make_client, tls_slapd):
    client, admin = await ldap_client(make_client, tls_slapd, ldap_starttls=True,
                                      ldap_ca_file=tls_slapd.ca)
    assert (await sync(client, admin))["created"] == 1
    await login(client, "alice", "alice-password")


async def test_ldaps_with_the_test_ca(make_client, tls_slapd):
    client, admin = await ldap_client(make_client, tls_slapd, ldap_url=tls_slapd.ldaps_url,
                                      ldap_ca_file=tls_slapd.ca)
    assert (await sync(client, admin))["created"] == 1
    await login(client, "alice", "alice-password")


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
async def test_a_certificate_from_an_untrusted_ca_is_refused(make_client, tls_slapd, tmp_path,
                                                            mode):
    other_ca, _ = make_ca(tmp_path, "other-ca")
    options: dict[str, Any] = {"ldap_ca_file": other_ca}
    if mode == "starttls":
        options["ldap_starttls"] = True
    else:
        options["ldap_url"] = tls_slapd.ldaps_url
    client, admin = await ldap_client(make_client, tls_slapd, **options)
    body = await sync(client, admin, 502)
    assert "certificate verify failed" in body["detail"]


# ldap3 (ldap3.core.tls) checks the name after wrapping the socket and, when it does not
# match, raises without closing the TLS socket it made (it never hands it over): Python
# reports the orphan when it is collected. Nothing outside ldap3 can reach that socket.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning")
async def test_a_certificate_for_another_name_is_refused(make_client, tmp_path):
    directory = start_slapd(tmp_path / "slapd", tls=True, server_host="ldap.example.org")
    try:
        directory.add_user("alice", "alice-password")
        client, admin = await ldap_client(make_client, directory, ldap_starttls=True,
                                          ldap_ca_file=directory.ca)
        body = await sync(client, admin, 502)
        assert "doesn't match" in body["detail"]
    finally:
        directory.stop()


# ---- configuration and the command line ------------------------------------------------


def run_no8sd(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("NO8SD_", "LDAP_", "CREDENTIALS_DIRECTORY"))}
    return subprocess.run([*no8sd_command(), "--db", str(tmp_path / "cli.db"), *args],
                          env={**full, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


def test_cli_ldap_sync_with_upstream_variables(tmp_path, slapd):
    done = run_no8sd(tmp_path, "user", "ldap-sync", env=slapd.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "created 2, updated 0, total 2, suspended 0, skipped 0"
    slapd.delete("bob")
    done = run_no8sd(tmp_path, "user", "ldap-sync", env=slapd.env())
    assert done.stdout.strip() == "created 0, updated 1, total 1, suspended 1, skipped 0"


def test_cli_ldap_sync_over_starttls_configured_by_variables(tmp_path, tls_slapd):
    env = {**tls_slapd.env(), "LDAP_STARTTLS": "true", "LDAP_CA_FILE": str(tls_slapd.ca)}
    done = run_no8sd(tmp_path, "user", "ldap-sync", env=env)
    assert (done.returncode, done.stdout.split(",")[0]) == (0, "created 1"), done.stderr
    env["LDAP_CA_FILE"] = str(make_ca(tmp_path, "other-ca")[0])
    done = run_no8sd(tmp_path, "user", "ldap-sync", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("no8sd: error: LDAP sync failed: ")
    assert "certificate verify failed" in done.stderr


def test_the_bind_password_is_taken_out_of_the_environment(monkeypatch):
    from no8sd.builtins.secret_stores import EnvSecretStore
    from no8sd.cli import build_settings

    monkeypatch.setenv("LDAP_BIND_PASSWORD", "service-secret")
    settings = build_settings({"ldap_bind_password": "service-secret"})
    assert settings.ldap_bind_password == "service-secret"
    assert "service-secret" not in repr(settings)
    with pytest.raises(KeyError):
        asyncio.run(EnvSecretStore().get_secret("LDAP_BIND_PASSWORD"))


@pytest.mark.parametrize("source", ["credentials", "secret store"])
def test_the_bind_password_can_stay_out_of_the_environment(tmp_path, slapd, source):
    folder = tmp_path / "creds"
    folder.mkdir()
    (folder / "ldap_bind_password").write_text(SERVICE_PASSWORD + "\n")
    env = slapd.env()
    del env["LDAP_BIND_PASSWORD"]
    env.update({"CREDENTIALS_DIRECTORY": str(folder)} if source == "credentials" else
               {"NO8SD_SECRET_STORE": "file", "NO8SD_SECRET_DIR": str(folder)})
    done = run_no8sd(tmp_path, "user", "ldap-sync", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created 2,")


def test_a_missing_bind_password_is_one_line_at_start(tmp_path, slapd):
    env = slapd.env()
    del env["LDAP_BIND_PASSWORD"]
    done = run_no8sd(tmp_path, "--auth", "token", "--port", "0", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "no8sd: error: LDAP_BIND_DN is set but its password is not: set LDAP_BIND_PASSWORD, "
        "put it in the secret store as ldap_bind_password, or pass the systemd credential "
        "ldap_bind_password")


def test_cli_ldap_sync_without_ldap_url(tmp_path):
    done = run_no8sd(tmp_path, "user", "ldap-sync", env={})
    assert (done.returncode, done.stderr) == (
        1, "no8sd: error: LDAP is not configured (set LDAP_URL)\n")


WITHOUT_LDAP3 = """
import sys
sys.modules["ldap3"] = None  # as if the [ldap] extra were not installed
from no8sd.cli import main
main()
"""


def test_a_missing_ldap_extra_is_one_line_at_start(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LDAP3, "--db", str(tmp_path / "x.db"), "--port", "0",
         "--auth", "token"],
        env={"PATH": "/usr/bin:/bin", "LDAP_URL": "ldap://127.0.0.1:1", "LDAP_BASE_DN": BASE},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "no8sd: error: LDAP_URL is set, but the LDAP client is not installed: "
        "pip install 'no8sd[ldap]'")


PROBE = """
import asyncio, sys
from pathlib import Path
from aiohttp import web
from no8sd.app import create_app
from no8sd.config import Settings

async def main():
    settings = Settings(db_path=Path(sys.argv[1]), port=0, entry_points=False,
                        ldap_url=sys.argv[2] or None, ldap_base_dn="dc=example,dc=org")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "ldap3"
                    or m == "no8sd.core.directory")
    await runner.cleanup()
    print(len(loaded), " ".join(loaded[:2]))

asyncio.run(main())
"""


@pytest.mark.parametrize("url", ["", "ldap://127.0.0.1:1"])
def test_nothing_of_ldap_is_loaded_without_ldap_url(tmp_path, url):
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "p.db"), url],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(TESTS)})
    assert done.returncode == 0, done.stderr
    count = int(done.stdout.split()[0])
    if url:
        assert count > 1, done.stdout  # the probe sees LDAP when it is configured
    else:
        assert count == 0, done.stdout
