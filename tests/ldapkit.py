"""A real OpenLDAP server for the tests: `slapd` from the distribution, on a loopback port,
with a throwaway slapd.conf and mdb database under a temporary directory.

The directory holds dc=example,dc=org with ou=people (inetOrgPerson users) and a service
account cn=no8sd,ou=services that may read everything; anonymous clients may only bind.
With `tls=True` a test CA is made with `openssl`, slapd serves StartTLS on its ldap://
port and TLS on a second, ldaps:// port, with a certificate for `localhost`. slapd runs
with `-d stats`, so every BIND it receives is in its log (`binds_as`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.utils.dn import escape_rdn

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{BASE}", "root-secret"
SERVICE_DN, SERVICE_PASSWORD = f"cn=no8sd,ou=services,{BASE}", "service-secret"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def slapd_binary() -> str | None:
    """The slapd executable (often in /usr/sbin, outside a user's PATH), or None."""
    return shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin")


def start_slapd(folder: Path, **options: Any) -> Slapd:
    """A running slapd with the base entries and the service account. Where slapd is not
    installed the calling test fails (not skips): .ci/run installs it, so this is a gate."""
    if slapd_binary() is None or shutil.which("ldapwhoami") is None:
        pytest.fail("slapd or ldap-utils is not installed (apt-get install slapd ldap-utils): "
                    "no directory to test against")
    return Slapd(folder, **options).start().seed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed test CA: (certificate, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_server_cert(folder: Path, ca: tuple[Path, Path], host: str = "localhost"
                     ) -> tuple[Path, Path]:
    """A server certificate for `host` (and 127.0.0.1) signed by `ca`: (certificate, key)."""
    cert, key, csr = folder / f"{host}.pem", folder / f"{host}.key", folder / f"{host}.csr"
    ext = folder / f"{host}.ext"
    ext.write_text(f"subjectAltName=DNS:{host},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={host}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext)
    return cert, key


def _plain(dn: str) -> str:
    """A DN with its escapes (`\\5C`, `\\,`) undone, in lower case."""
    return re.sub(r"\\([0-9A-Fa-f]{2}|.)", lambda m: chr(int(m.group(1), 16))
                  if len(m.group(1)) == 2 else m.group(1), dn).lower()


def _openssl(*args: Any) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class Slapd:
    """One slapd process and its directory; `add_user`, `modify`, `delete` change it."""

    def __init__(self, folder: Path, *, tls: bool = False, allow_empty_password_bind: bool = False,
                 server_host: str = "localhost") -> None:
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.url = f"ldap://localhost:{self.port}"
        self.ldaps_url = f"ldaps://localhost:{self.tls_port}" if tls else None
        self.ca: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "slapd.log"
        (folder / "db").mkdir(parents=True)
        lines = [f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS]
        lines += ["modulepath /usr/lib/ldap", "moduleload back_mdb",
                  f"pidfile {folder / 'slapd.pid'}"]
        if allow_empty_password_bind:
            # A DN with an empty password becomes an anonymous bind that "succeeds", as on
            # many servers: the hazard no8sd must never take for a login.
            lines.append("allow bind_anon_dn")
        if tls:
            self.ca, ca_key = make_ca(folder, "test-ca")
            cert, key = make_server_cert(folder, (self.ca, ca_key), server_host)
            lines += [f"TLSCACertificateFile {self.ca}", f"TLSCertificateFile {cert}",
                      f"TLSCertificateKeyFile {key}"]
        lines += [
            "database mdb", f'suffix "{BASE}"', f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PASSWORD}", f"directory {folder / 'db'}", "maxsize 16777216",
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by users read by * none",
        ]
        self.conf = folder / "slapd.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    # ---- the process -----------------------------------------------------------------

    def start(self) -> Slapd:
        binary = slapd_binary()
        assert binary is not None
        urls = f"ldap://127.0.0.1:{self.port}/"
        if self.tls_port:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, "-f", str(self.conf), "-h", urls,
                                          "-d", "stats"], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        else:
            raise AssertionError("slapd did not start:\n" + self.log.read_text())
        return self

    def stop(self) -> None:
        """Stop slapd (its port then refuses connections)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def freeze(self) -> None:
        """Stop slapd from answering while its port still accepts connections (a hung
        directory)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def binds_as(self, dn: str) -> int:
        """How many BINDs slapd has received for `dn` (from its stats log, where DNs are
        written with their own escaping: both sides are compared unescaped)."""
        found = re.findall(r'BIND dn="(.*)" method=128', self.log.read_text(errors="replace"))
        return sum(_plain(logged) == _plain(dn) for logged in found)

    # ---- the directory's content ---------------------------------------------------

    @contextlib.contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        """A connection bound as the root DN (plain, on the loopback port), unbound (its
        socket closed) after use: ldap3's own `with` leaves a bound connection open."""
        server = ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True,
                                raise_exceptions=True)
        try:
            yield conn
        finally:
            conn.unbind()

    def seed(self) -> Slapd:
        """The base entries and the service account."""
        with self.admin() as conn:
            conn.add(BASE, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
            for ou in ("people", "services"):
                conn.add(f"ou={ou},{BASE}", ["organizationalUnit"], {"ou": ou})
            conn.add(SERVICE_DN, ["organizationalRole", "simpleSecurityObject"],
                     {"cn": "no8sd", "userPassword": SERVICE_PASSWORD})
        return self

    def dn(self, uid: str, ou: str = "people") -> str:
        return f"uid={escape_rdn(uid)},ou={ou},{BASE}"

    def add_user(self, uid: str, password: str, *, mail: str | None = None,
                 cn: str | None = None, ou: str = "people") -> str:
        """Add an inetOrgPerson; return its DN."""
        dn = self.dn(uid, ou)
        attrs: dict[str, Any] = {"uid": uid, "cn": cn or uid.title(), "sn": uid,
                                 "userPassword": password}
        if mail:
            attrs["mail"] = mail
        with self.admin() as conn:
            conn.add(dn, ["inetOrgPerson"], attrs)
        return dn

    def modify(self, uid: str, ou: str = "people", **values: str) -> None:
        with self.admin() as conn:
            conn.modify(self.dn(uid, ou), {k: [(ldap3.MODIFY_REPLACE, [v])]
                                           for k, v in values.items()})

    def delete(self, uid: str, ou: str = "people") -> None:
        with self.admin() as conn:
            conn.delete(self.dn(uid, ou))

    def env(self) -> dict[str, str]:
        """The same, as the daemon's (upstream's) environment variables."""
        return {"LDAP_URL": self.url, "LDAP_BASE_DN": BASE, "LDAP_BIND_DN": SERVICE_DN,
                "LDAP_BIND_PASSWORD": SERVICE_PASSWORD}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The no8sd settings that point at this directory through the service account."""
        return {"ldap_url": self.url, "ldap_base_dn": BASE, "ldap_bind_dn": SERVICE_DN,
                "ldap_bind_password": SERVICE_PASSWORD, "ldap_timeout": 2.0, **overrides}
