"""The LDAP client: the blocking ldap3 calls that no8sd.core.directory runs on its threads.

Imported only when LDAP_URL is set. Every connection is read-only, never follows a
referral (the credentials go to the configured server and nowhere else), has a connect
and a receive timeout, and with ldaps:// or StartTLS verifies the server's certificate
and name against the system's CAs or --ldap-ca-file. Usernames reach a filter only
escaped (RFC 4515). DNs are never built from input: a login binds as the DN the
directory itself returned at the last sync, so no username can name another entry.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars

from no8sd.core.directory import DirectoryError
from no8sd.store.rows import DirectoryUser

log = logging.getLogger("no8sd.ldap")

PAGE_SIZE: Final = 500  # entries per page of a sync's search (RFC 2696 paged results)
MAX_ENTRIES: Final = 100_000  # a sync refuses more: a filter that broad is a mistake
MAX_USERNAME: Final = 256  # what a login body may carry
ATTRIBUTE_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$")
INVALID_CREDENTIALS: Final = 49  # the LDAP result code of a refused bind


class Outcome(enum.Enum):
    """How a password check against the directory ended."""

    OK = "accepted"
    REJECTED = "wrong password (the directory refused the bind)"
    NOT_MATCHED = ("the entry no longer matches the user filter or the username "
                   "(the next sync suspends the user)")
    UNREACHABLE = "the directory could not be reached"
    ERROR = "the directory answered with an error"

    @property
    def accepted(self) -> bool:
        """The password is right and the user is still in the directory."""
        return self is Outcome.OK

    @property
    def expected(self) -> bool:
        """A plain wrong password: the directory is fine."""
        return self is Outcome.REJECTED


@dataclass(frozen=True)
class ClientConfig:
    """Where the directory is, how to reach it, and what a user entry looks like."""

    url: str
    base_dn: str
    bind_dn: str | None = None
    bind_password: str | None = None
    user_filter: str = "(objectClass=inetOrgPerson)"
    attr_username: str = "uid"
    attr_email: str = "mail"
    attr_display_name: str = "cn"
    starttls: bool = False
    ca_file: Path | None = None
    timeout: float = 5.0


def escape_filter_value(value: str) -> str:
    """Escape a value for an LDAP filter (RFC 4515: `*`, `(`, `)`, `\\` and NUL)."""
    return escape_filter_chars(value)


def _first(attributes: Any, name: str) -> str | None:
    """The first text value of an attribute, or None (absent, empty, or binary)."""
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def usable_username(name: str) -> bool:
    """A directory username no8sd can hold: printable, no outer spaces, not too long."""
    return 0 < len(name) <= MAX_USERNAME and name.isprintable() and name == name.strip()


class Client:
    """Connections to one directory; each call opens and closes its own connection."""

    def __init__(self, config: ClientConfig) -> None:
        """Check the configuration; a ValueError names what is wrong."""
        parts = urlsplit(config.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"LDAP_URL must be ldap://HOST[:PORT] or ldaps://HOST[:PORT], "
                             f"not {config.url!r}")
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError("LDAP_URL must name only the server (no DN, query or user); "
                             "use LDAP_BASE_DN and LDAP_BIND_DN")
        if config.starttls and parts.scheme == "ldaps":
            raise ValueError("StartTLS is for ldap:// URLs; an ldaps:// URL is TLS already")
        if not config.base_dn:
            raise ValueError("LDAP_BASE_DN must be set when LDAP_URL is")
        for name in (config.attr_username, config.attr_email, config.attr_display_name):
            if not ATTRIBUTE_RE.match(name):
                raise ValueError(f"{name!r} is not an LDAP attribute name")
        if config.ca_file is not None and not config.ca_file.is_file():
            raise ValueError(f"LDAP CA file {config.ca_file} does not exist")
        user_filter = config.user_filter.strip()
        if not user_filter.startswith("("):
            user_filter = f"({user_filter})"  # `objectClass=person` as well as the canonical form
        self.config = config
        self.user_filter = user_filter
        self._host, self._port, self._ssl = parts.hostname, parts.port, parts.scheme == "ldaps"

    def _server(self) -> ldap3.Server:
        # A new Server per connection: ldap3's would remember a failed address for a while
        # (and is shared state between threads); the name is resolved afresh each time.
        # Every address of the name is tried, IPv4 ones first, not only the first one.
        return ldap3.Server(
            self._host, port=self._port, use_ssl=self._ssl, get_info=ldap3.NONE,
            mode=ldap3.IP_V4_PREFERRED, connect_timeout=self.config.timeout,
            tls=ldap3.Tls(validate=ssl.CERT_REQUIRED, sni=self._host,
                          ca_certs_file=str(self.config.ca_file) if self.config.ca_file
                          else None))

    def _connection(self, user: str | None, password: str | None, *,
                    raise_exceptions: bool) -> ldap3.Connection:
        """Open a connection (StartTLS done when configured), not yet bound."""
        conn = ldap3.Connection(
            self._server(), user=user, password=password, read_only=True,
            auto_referrals=False, raise_exceptions=raise_exceptions,
            # ldap3 hands this to SO_RCVTIMEO as whole seconds; a login's own deadline
            # (no8sd.core.directory) keeps the configured fraction.
            receive_timeout=max(1, math.ceil(self.config.timeout)))
        try:
            conn.open()
            if self.config.starttls:
                conn.start_tls()
        except BaseException:
            _close(conn)  # an open or StartTLS that fails leaves its socket open otherwise
            raise
        return conn

    # ---- the sync's search -----------------------------------------------------------

    def search_users(self) -> tuple[list[DirectoryUser], int]:
        """Every user entry under the base DN: (the usable ones, how many were found).

        Raises DirectoryError when the search cannot be completed, so that a partial
        answer is never mistaken for users having vanished.
        """
        cfg = self.config
        attrs = [cfg.attr_username, cfg.attr_email, cfg.attr_display_name]
        search = f"(&{self.user_filter}({cfg.attr_username}=*))"
        by_name: dict[str, DirectoryUser | None] = {}
        total = 0
        try:
            conn = self._connection(cfg.bind_dn, cfg.bind_password, raise_exceptions=True)
            try:
                conn.bind()
                for entry in conn.extend.standard.paged_search(
                        cfg.base_dn, search, ldap3.SUBTREE, attributes=attrs,
                        paged_size=PAGE_SIZE, generator=True):
                    if entry.get("type") != "searchResEntry":
                        continue  # a referral: not followed
                    total += 1
                    if total > MAX_ENTRIES:
                        raise DirectoryError(f"the search found more than {MAX_ENTRIES} "
                                             "entries; narrow LDAP_USER_FILTER or LDAP_BASE_DN")
                    found = self._user(entry)
                    if found is not None:
                        # Two entries with one name: neither is synced, so neither can
                        # step into the other's account.
                        by_name[found.username] = None if found.username in by_name else found
            finally:
                _close(conn)
        except lx.LDAPException as exc:
            raise DirectoryError(_describe(exc)) from None
        for name, user in by_name.items():
            if user is None:
                log.warning("LDAP sync: several entries have the username %r; none is synced",
                            name)
        return [u for u in by_name.values() if u is not None], total

    def _user(self, entry: dict[str, Any]) -> DirectoryUser | None:
        cfg = self.config
        attributes = entry.get("attributes") or {}
        name = _first(attributes, cfg.attr_username)
        if name is None or not usable_username(name):
            log.warning("LDAP sync: entry %r skipped: its %s is missing or unusable as a "
                        "username", entry.get("dn"), cfg.attr_username)
            return None
        return DirectoryUser(username=name, dn=str(entry["dn"]),
                             email=_first(attributes, cfg.attr_email),
                             display_name=_first(attributes, cfg.attr_display_name))

    # ---- a login's password check ----------------------------------------------------

    def check_password(self, dn: str, username: str, password: str) -> tuple[Outcome, str]:
        """Bind as `dn` with `password`, then confirm the entry still is `username`'s and
        still matches the user filter (a user removed from the directory, or from the
        group the filter names, cannot log in even before the next sync).

        Returns the outcome and a detail for the log. An empty password is refused here
        too: a simple bind with a DN and no password is an "unauthenticated bind", which
        many servers answer with success.
        """
        if not password:
            return Outcome.REJECTED, "empty password"
        cfg = self.config
        try:
            conn = self._connection(dn, password, raise_exceptions=False)
        except lx.LDAPException as exc:
            return Outcome.UNREACHABLE, _describe(exc)
        try:
            if not conn.bind():
                if conn.result.get("result") == INVALID_CREDENTIALS:
                    return Outcome.REJECTED, ""
                return Outcome.ERROR, str(conn.result.get("description"))
            if cfg.bind_dn and not conn.rebind(cfg.bind_dn, cfg.bind_password):
                return Outcome.ERROR, "the service account's bind was refused"
            confirm = (f"(&{self.user_filter}"
                       f"({cfg.attr_username}={escape_filter_value(username)}))")
            conn.search(dn, confirm, ldap3.BASE, attributes=["1.1"])
            if any(r.get("type") == "searchResEntry" for r in conn.response or ()):
                return Outcome.OK, ""
            return Outcome.NOT_MATCHED, str(conn.result.get("description"))
        except lx.LDAPException as exc:
            return Outcome.UNREACHABLE, _describe(exc)
        finally:
            _close(conn)


def _close(conn: ldap3.Connection) -> None:
    """Unbind and close; a connection that broke is closed all the same."""
    with contextlib.suppress(lx.LDAPException, OSError):
        conn.unbind()
    # One whose StartTLS failed (a certificate for another name) is marked closed by
    # ldap3 with its TLS socket still open.
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _describe(exc: lx.LDAPException) -> str:
    """A one-line reason for the log and the sync's error (never a credential)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    # ldap3 prints the whole certificate before saying that it names another host.
    text = re.sub(r"certificate \{.*\} doesn't match", "the server's certificate doesn't match",
                  text)
    return text if len(text) <= 300 else text[:297] + "..."
