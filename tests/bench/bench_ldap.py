"""Benchmark LDAP logins next to scrypt logins; prints one JSON line per figure.

Run by hand (not by CI):  python tests/bench/bench_ldap.py [--rounds N]

One `no8sd` subprocess with --auth token uses a real slapd (tests/ldapkit.py) on loopback.
Logins of a manual user (scrypt) and of a directory user (a bind, then a base search as the
service account on the same connection) alternate, one at a time, over HTTP; each figure
is the median of its rounds, and the ratio LDAP/scrypt is from the same run. Failures
(wrong password for each, and an unknown user) get a few rounds only: they count
against the per-address throttle of 20 per 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from bench_auth import free_port, wait_healthy  # this folder is on sys.path when run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ldapkit import start_slapd

ADMIN = ("bench", "bench-password-123")
LDAP_USER = ("alice", "alice-password-123")
FAILURES = 5  # per failure case: 3 cases stay under the 20 per address


def emit(name: str, **figures: Any) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


async def login(http: aiohttp.ClientSession, url: str, username: str, password: str,
                expect: int) -> float:
    started = time.perf_counter()
    async with http.post(url + "/api/v1/auth/login",
                         json={"username": username, "password": password}) as resp:
        await resp.read()
        assert resp.status == expect, (username, resp.status)
    return time.perf_counter() - started


def ms(values: list[float]) -> dict[str, float]:
    return {"ms_median": round(statistics.median(values) * 1000, 2),
            "ms_min": round(min(values) * 1000, 2), "n": len(values)}


async def run(rounds: int, folder: Path) -> None:
    directory = start_slapd(folder / "slapd")
    directory.add_user(*LDAP_USER)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NO8SD_", "LDAP_"))}
    env.update(directory.env(), INITIAL_ADMIN_USERNAME=ADMIN[0],
               INITIAL_ADMIN_PASSWORD=ADMIN[1])
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("no8sd")), "--db", str(folder / "bench.db"),
         "--port", str(port), "--no-entry-points", "--auth", "token", "--log-level", "WARNING"],
        env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, url)
            async with http.post(url + "/api/v1/auth/login", json=dict(
                    zip(("username", "password"), ADMIN, strict=True))) as resp:
                token = (await resp.json())["access_token"]
            async with http.post(url + "/api/v1/users/ldap-sync",
                                 headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200, await resp.text()
            for _ in range(3):  # warm-up: first connections, caches
                await login(http, url, *ADMIN, 200)
                await login(http, url, *LDAP_USER, 200)
            scrypt: list[float] = []
            ldap: list[float] = []
            for _ in range(rounds):  # alternated: the machine is shared and noisy
                scrypt.append(await login(http, url, *ADMIN, 200))
                ldap.append(await login(http, url, *LDAP_USER, 200))
            failures = {"scrypt_wrong_password": (ADMIN[0], "not-the-password"),
                        "ldap_wrong_password": (LDAP_USER[0], "not-the-password"),
                        "unknown_user": ("nobody-here", "not-the-password")}
            failed = {name: [await login(http, url, user, pw, 401) for _ in range(FAILURES)]
                      for name, (user, pw) in failures.items()}
    finally:
        proc.terminate()
        proc.wait(30)
        directory.stop()
    emit("login_scrypt", **ms(scrypt))
    emit("login_ldap", **ms(ldap))
    for name, values in failed.items():
        emit(f"login_{name}", **ms(values))
    emit("login_ldap_vs_scrypt",
         ratio=round(statistics.median(ldap) / statistics.median(scrypt), 3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rounds, Path(tmp)))


if __name__ == "__main__":
    main()
