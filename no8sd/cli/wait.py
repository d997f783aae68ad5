"""`no8sd wait`: block until a resource is ready, deleted, has a condition, or has had
its latest generation observed.

Driven by the resource's event stream (GET /api/v1/resources/{id}/events), not by
polling: the state is read once each time the stream (re)connects, then every event
carries the resource as it now is. A dropped stream (a daemon restart) resumes with
`Last-Event-ID`. Exit codes: 0 the condition holds, 5 timed out, 1 the resource went
`failed` (for ready and generation-observed; its message is shown), 3 it does not
exist or was removed (unless waiting for `deleted`). On a terminal the state is one live
line; piped, one plain line per change.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

import click

from no8sd.cli import refs, session
from no8sd.cli.get import condition
from no8sd.cli.http import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_TIMEOUT, ApiError, ClientError
from no8sd.cli.output import echo, interactive, span

FOR_HELP: Final = "ready|deleted|condition=NAME[=STATUS]|generation-observed"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

# A check looks at the resource (None: it is gone) and answers (done, failure message).
Check = Callable[[dict[str, Any] | None], tuple[bool, str | None]]


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """A duration: 90, 90s, 5m, 1.5h, 500ms."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.match(str(value).strip())
        if not found:
            self.fail(f"{value!r} is not a duration such as 30s, 5m or 1h", param, ctx)
        return float(found.group(1)) * _UNITS[found.group(2)]


def check_for(text: str) -> tuple[str, Check]:
    """Parse --for into a description and a check."""
    if text == "ready":
        return "ready", _ready
    if text == "deleted":
        return "deleted", lambda r: (r is None, None)
    if text == "generation-observed":
        return "observed at its latest generation", _observed
    if text.startswith("condition="):
        name, _, wanted = text[len("condition="):].partition("=")
        wanted = wanted or "True"
        if not name:
            raise click.BadParameter(f"expected {FOR_HELP}", param_hint="--for")

        def has(r: dict[str, Any] | None) -> tuple[bool, str | None]:
            found = condition(r, name) if r is not None else None
            return (found is not None and found.get("status") == wanted), None

        return f"condition {name}={wanted}", has
    raise click.BadParameter(f"expected {FOR_HELP}, not {text!r}", param_hint="--for")


def _failed(r: dict[str, Any]) -> str | None:
    if r["status"] != "failed":
        return None
    return r.get("status_message") or "reconciliation failed"


def _ready(r: dict[str, Any] | None) -> tuple[bool, str | None]:
    if r is None:
        return False, None
    done = r["status"] == "ready" and r["observed_generation"] >= r["generation"]
    return done, _failed(r)


def _observed(r: dict[str, Any] | None) -> tuple[bool, str | None]:
    if r is None:
        return False, None
    return r["observed_generation"] >= r["generation"], _failed(r)


def state_of(r: dict[str, Any] | None) -> str:
    """A short state description for progress lines."""
    if r is None:
        return "gone"
    text = f"{r['status']}, generation {r['generation']} (observed {r['observed_generation']})"
    return text + (f": {r['status_message']}" if r.get("status_message") else "")


@click.command("wait")
@click.argument("resource", nargs=-1, required=True, metavar=refs.RESOURCE_HELP,
                shell_complete=refs.complete_resource)
@click.option("--for", "wanted", required=True, metavar=FOR_HELP,
              help="What to wait for (a condition's status defaults to True).")
@click.option("--timeout", type=Duration(), default="5m", show_default=True,
              help="Give up after this long (exit code 5).")
@session.connection_options
def wait_command(resource: tuple[str, ...], wanted: str, timeout: float) -> None:
    """Wait until a resource is ready, deleted, has a condition, or has been reconciled
    at its latest generation.

    \b
    Examples:
      no8sd wait DnsRecord/v1 api-record --for=ready --timeout 2m
      no8sd wait dnsrecord/api-record --for=condition=DnsRecordSynced
      no8sd wait 7 --for=deleted
    """
    what, check = check_for(wanted)
    conn = session.connect()
    try:
        found = refs.find_resource(conn, resource)
    except ClientError as exc:
        if exc.exit_code == EXIT_NOT_FOUND and wanted == "deleted":
            echo(f"{' '.join(resource)} is deleted")
            return
        raise
    wait_until(conn, found, what, check, timeout)


def wait_until(conn: Any, found: dict[str, Any], what: str, check: Check,
               timeout: float) -> None:
    """Follow one resource's events until `check` holds; raise on failure or timeout."""
    name = refs.label(found)
    started = time.monotonic()
    deadline = started + timeout
    progress = _Progress(name, what)
    current: dict[str, Any] | None = found
    events = conn.events(f"/api/v1/resources/{found['id']}/events", deadline=deadline,
                         on_reconnect=lambda reason: progress.note(f"{reason}; reconnecting"))
    try:
        for event in events:
            if event.type == "":  # (re)connected: read the state as it is now
                current = _read(conn, found["id"])
            elif event.type == "REMOVED":
                current = None
            elif isinstance((event.data or {}).get("resource_data"), dict):
                current = event.data["resource_data"]
            else:
                continue
            done, failure = check(current)
            progress.show(current)
            if done:
                progress.finish(f"{name} is {what}" if current is not None or what == "deleted"
                                else f"{name} is gone")
                return
            if failure is not None:
                progress.finish(None)
                raise ClientError(f"{name} failed: {failure}", EXIT_ERROR)
            if current is None:
                progress.finish(None)
                raise ClientError(f"{name} was removed before it was {what}", EXIT_NOT_FOUND)
    except ApiError as exc:
        if exc.status != 404:
            raise
        done, _ = check(None)
        progress.finish(f"{name} is {what}" if done else None)
        if not done:
            raise ClientError(f"{name} was removed before it was {what}",
                              EXIT_NOT_FOUND) from None
    except ClientError as exc:
        if exc.exit_code != EXIT_TIMEOUT:
            raise
        progress.finish(None)
        raise ClientError(f"timed out after {span(timeout)} waiting for {name} to be {what} "
                          f"(now: {state_of(current)})", EXIT_TIMEOUT) from None


def _read(conn: Any, resource_id: int) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = conn.request("GET", f"/api/v1/resources/{resource_id}")
        return found
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


class _Progress:
    """A live line on a terminal; a plain line per change when piped."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.what = what
        self.live = interactive()
        self.last = ""
        self.started = time.monotonic()

    def show(self, r: dict[str, Any] | None) -> None:
        state = state_of(r)
        if state == self.last:
            return
        self.last = state
        if self.live:
            elapsed = span(time.monotonic() - self.started)
            click.echo(f"\r\033[Kwaiting for {self.name} to be {self.what}: {state} "
                       f"[{elapsed}]", nl=False)
        else:
            echo(f"{self.name}: {state}")

    def note(self, text: str) -> None:
        if self.live:
            click.echo(f"\r\033[K{self.name}: {text}", nl=False)
        else:
            echo(f"{self.name}: {text}")

    def finish(self, text: str | None) -> None:
        if self.live:
            click.echo("\r\033[K", nl=False)
        if text is not None:
            echo(text)
