"""systemd's notification protocol: readiness, status lines, watchdog pings, stopping.

A service started with `Type=notify` tells systemd how it is doing by sending one
datagram of newline-separated `KEY=VALUE` lines to the unix socket named in
$NOTIFY_SOCKET (an abstract socket when the name starts with `@`). That is the whole
protocol, so it is written here rather than taken from a package. Without the variable
(not started by systemd, or not as Type=notify) every call does nothing.

The variables are read once and removed from the environment, as sd_notify's
`unset_environment` does, so programs a plugin starts do not inherit them and speak
for the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping

log = logging.getLogger("no8sd")


class Notifier:
    """Sends notifications to the service manager, or nothing when there is none."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket (Linux)
        self._address = address or None
        self._sock: socket.socket | None = None
        self._failed = False
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Read (and remove) $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID."""
        env = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", None)
        usec_text = env.pop("WATCHDOG_USEC", "")
        pid_text = env.pop("WATCHDOG_PID", "")
        usec = int(usec_text) if usec_text.isdigit() else None
        # The watchdog is meant for one process; a forked child must not ping for it.
        if pid_text and pid_text.isdigit() and int(pid_text) != os.getpid():
            usec = None
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """Whether a service manager is listening."""
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half the manager's timeout), or None."""
        if self._address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def notify(self, *lines: str) -> bool:
        """Send one datagram of `KEY=VALUE` lines; answer whether it was sent."""
        if self._address is None:
            return False
        data = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(data, self._address)
            return True
        except OSError as exc:
            # Logged once: a service manager that went away must not flood the log.
            if not self._failed:
                log.warning("Cannot notify the service manager at %s: %s",
                            self._address.replace("\0", "@"), exc)
                self._failed = True
            return False

    def ready(self, status: str) -> None:
        """Start-up is complete: the daemon serves."""
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Replace the one-line status `systemctl status` shows."""
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        """Tell the watchdog the daemon is alive."""
        self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float, status: str) -> None:
        """Ask for `seconds` more before the current start (or stop) times out."""
        self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}", f"STATUS={status}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self.notify("STOPPING=1", "STATUS=Shutting down")

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
