"""Directory users: the LDAP sync, and the password check of `ldap` users at login.

Imported, with ldap3, only when LDAP_URL is set (`open_directory`). ldap3 is synchronous,
so its calls run on this service's own few threads: a hung directory can occupy those but
never the threads that hash passwords or commit to the store, so manual logins and the
API keep working. A login waits at most --ldap-timeout for the directory; a thread still
stuck after that keeps its slot until ldap3's own socket timeouts end it, so a dead
directory cannot pile up work. One sync runs at a time: a second request waits for the
running one, then runs its own, so the counts it gets describe the directory as it was
after the request was made.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Final

from no8sd.config import Settings
from no8sd.core.accounts import LOGIN_QUEUE, LoginsBusy
from no8sd.errors import BadGateway, StartupError
from no8sd.store import auth as store
from no8sd.store.db import Database
from no8sd.store.rows import DirectorySync, LoginCandidate
from no8sd.timeutil import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from no8sd.core.ldap import Client, Outcome

log = logging.getLogger("no8sd.ldap")

LOGIN_SLOTS: Final = 4  # password checks against the directory at once
PASSWORD_KEY: Final = "ldap_bind_password"  # secret-store key and systemd credential name
MISSING_EXTRA: Final = ("LDAP_URL is set, but the LDAP client is not installed: "
                        "pip install 'no8sd[ldap]'")

SecretLookup = Callable[[str], Awaitable[str]]


class DirectoryError(Exception):
    """The directory could not be reached, or refused a step; the message says which."""


class Directory:
    """Syncs users from one directory and checks `ldap` users' passwords against it."""

    def __init__(self, client: Client, db: Database, *, timeout: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.db = db
        self.timeout = timeout
        self.clock = clock
        # One thread more than login slots: a sync always has one, however logins fare.
        self._pool = ThreadPoolExecutor(LOGIN_SLOTS + 1, thread_name_prefix="no8sd-ldap")
        self._slots = asyncio.Semaphore(LOGIN_SLOTS)
        self._waiting = 0
        self._sync_lock = asyncio.Lock()

    def close(self) -> None:
        """Drop queued work; a thread inside ldap3 ends at its socket timeout."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- login -------------------------------------------------------------------------

    async def authenticate(self, user: LoginCandidate, password: str) -> bool:
        """Whether the directory accepts `password` for this `ldap` user; the log says why
        not. Only a LoginsBusy (503) escapes: too many checks are already waiting."""
        if not password:
            # Never sent: a bind with a DN and an empty password is an "unauthenticated
            # bind", which many servers report as a success.
            log.info("LDAP login of %r refused: empty password (no bind attempted)",
                     user.username)
            return False
        if not user.ldap_dn:
            log.warning("LDAP login of %r refused: no DN is stored for it (run a sync)",
                        user.username)
            return False
        if self._waiting >= LOGIN_QUEUE:
            raise LoginsBusy()
        try:
            # The deadline covers the wait for a slot as well as the directory's answer.
            outcome, detail = await asyncio.wait_for(
                self._check(user.ldap_dn, user.username, password), self.timeout)
        except TimeoutError:
            log.warning("LDAP login of %r failed: the directory did not answer within %g s",
                        user.username, self.timeout)
            return False
        except Exception:
            return False  # logged by _release
        if outcome.accepted:
            return True
        log.log(logging.INFO if outcome.expected else logging.WARNING,
                "LDAP login of %r failed: %s%s", user.username, outcome.value,
                f" ({detail})" if detail else "")
        return False

    async def _check(self, dn: str, username: str, password: str) -> tuple[Outcome, str]:
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        done = asyncio.wrap_future(self._pool.submit(
            self.client.check_password, dn, username, password))
        # The slot is held until the thread is done, not just until the login gives up.
        done.add_done_callback(self._release)
        return await asyncio.shield(done)

    def _release(self, done: asyncio.Future[tuple[Outcome, str]]) -> None:
        self._slots.release()
        if not done.cancelled() and done.exception() is not None:
            log.error("LDAP password check crashed: %r", done.exception())

    # ---- sync --------------------------------------------------------------------------

    async def sync(self) -> DirectorySync:
        """Read every user entry, then apply them in one write (see
        store.auth.sync_directory_users). A directory that cannot be read fully is a
        BadGateway (502) with the reason, and nothing is written."""
        async with self._sync_lock:
            loop = asyncio.get_running_loop()
            try:
                found, total = await loop.run_in_executor(self._pool, self.client.search_users)
            except DirectoryError as exc:
                raise BadGateway(f"LDAP sync failed: {exc}") from None
            result: DirectorySync = await self.db.write(
                store.sync_directory_users, found, total=total, now=self.clock.now())
        log.info("LDAP sync: %d entries, %d created, %d updated, %d suspended, %d skipped",
                 result.total, result.created, result.updated, result.suspended,
                 result.skipped)
        if result.suspended and not await store.has_active_admin(self.db):
            log.warning("The LDAP sync suspended the last active admin: create one with "
                        "`no8sd user create --admin NAME`")
        return result

    async def sync_every(self, interval: float) -> None:
        """Sync now and then every `interval` seconds; a failed sync is logged, and the
        next one comes on time."""
        while True:
            try:
                await self.sync()
            except BadGateway as exc:
                log.warning("%s", exc.detail)
            except Exception:
                log.exception("LDAP sync failed")
            await asyncio.sleep(interval)


async def bind_password(settings: Settings, secret: SecretLookup | None = None) -> str | None:
    """The service account's password: LDAP_BIND_PASSWORD, else the secret store's key
    `ldap_bind_password`, else $CREDENTIALS_DIRECTORY/ldap_bind_password (systemd's
    LoadCredential=). None when no service account is configured (anonymous search)."""
    if settings.ldap_bind_password:
        return settings.ldap_bind_password
    if not settings.ldap_bind_dn:
        return None
    if secret is not None:
        try:
            return await secret(PASSWORD_KEY)
        except KeyError:
            pass
        except Exception as exc:
            raise StartupError(f"cannot read {PASSWORD_KEY} from the secret store: {exc}"
                               ) from None
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        path = Path(creds.split(":")[0]) / PASSWORD_KEY
        if path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\r\n")
    raise StartupError("LDAP_BIND_DN is set but its password is not: set LDAP_BIND_PASSWORD, "
                       f"put it in the secret store as {PASSWORD_KEY}, or pass the systemd "
                       f"credential {PASSWORD_KEY}")


async def open_directory(settings: Settings, db: Database, *,
                         secret: SecretLookup | None = None) -> Directory:
    """The directory of these settings (LDAP_URL set); a problem is a StartupError."""
    try:
        from no8sd.core import ldap
    except ModuleNotFoundError as exc:
        if exc.name != "ldap3":
            raise
        raise StartupError(MISSING_EXTRA) from None
    assert settings.ldap_url is not None
    try:
        client = ldap.Client(ldap.ClientConfig(
            url=settings.ldap_url, base_dn=settings.ldap_base_dn or "",
            bind_dn=settings.ldap_bind_dn or None,
            bind_password=await bind_password(settings, secret),
            user_filter=settings.ldap_user_filter, attr_username=settings.ldap_attr_username,
            attr_email=settings.ldap_attr_email,
            attr_display_name=settings.ldap_attr_display_name,
            starttls=settings.ldap_starttls, ca_file=settings.ldap_ca_file,
            timeout=settings.ldap_timeout))
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    directory = Directory(client, db, timeout=settings.ldap_timeout, clock=settings.clock)
    tls = "StartTLS" if settings.ldap_starttls else (
        "TLS" if settings.ldap_url.startswith("ldaps:") else "no TLS")
    log.info("Directory users from %s (%s), base %s%s", settings.ldap_url, tls,
             settings.ldap_base_dn,
             f", synced every {settings.ldap_sync_interval:g} s"
             if settings.ldap_sync_interval else "")
    return directory
