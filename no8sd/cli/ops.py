"""`no8sd backup DEST` and `no8sd restore SRC`: copies of the database file, online.

Both work on the file given by --db (or its default), whether or not a daemon runs:
a backup is taken while the daemon keeps writing; a restore refuses while a daemon
holds the file. Progress goes to stderr when it is a terminal. The work itself is in
no8sd.store.backup (only the store touches SQLite); this module is imported when the
command line starts, so it imports nothing heavy at the top.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from no8sd.cli import Invocation
from no8sd.cli.progress import progress_line


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 1 (as every no8sd command)."""
    click.echo(f"no8sd: error: {message}", err=True)
    sys.exit(1)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.pass_obj
def backup_command(invocation: Invocation, dest: Path, force: bool) -> None:
    """Copy the database to DEST while the daemon keeps running, and check the copy.

    DEST is a file, or a directory to put a time-stamped copy in. The daemon's writes are
    not held up: the copy is a snapshot of one moment, taken in steps. The file appears
    at DEST only once it has passed `PRAGMA integrity_check`.

    Example: no8sd --db /var/lib/no8sd/no8sd.db backup /srv/backups/
    """
    from no8sd.store.backup import OperationFailed, backup

    settings = invocation.settings
    if dest.is_dir():
        dest = dest / f"no8sd-{time.strftime('%Y%m%dT%H%M%S')}.db"
    elif dest.exists() and not force:
        _fail(f"{dest} exists; use --force to replace it")
    try:
        done = backup(settings.db_path, dest, progress=progress_line("Backing up", "pages"))
    except OperationFailed as exc:
        _fail(str(exc))
    click.echo(f"Backed up {settings.db_path} to {done.path}: {_mib(done.size)}, "
               f"{done.resources} resources, schema {done.schema}, integrity ok "
               f"({done.seconds:.1f}s)")


@click.command("restore")
@click.argument("src", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def restore_command(invocation: Invocation, src: Path) -> None:
    """Replace the database with the backup SRC (the daemon must be stopped).

    SRC is checked first; the database it replaces is kept beside it as
    NAME.pre-restore-TIMESTAMP. The switch is one rename: the database file is always
    either the old one or the restored one.

    Example: systemctl stop no8sd && no8sd --db /var/lib/no8sd/no8sd.db restore
    /srv/backups/no8sd-20250101T020000.db && systemctl start no8sd
    """
    from no8sd.store.backup import OperationFailed, restore

    settings = invocation.settings
    try:
        done = restore(src, settings.db_path, progress=progress_line("Restoring", "pages"))
    except OperationFailed as exc:
        _fail(str(exc))
    click.echo(f"Restored {settings.db_path} from {src}: {_mib(done.size)}, "
               f"{done.resources} resources, schema {done.schema}, integrity ok "
               f"({done.seconds:.1f}s)")
    if done.kept is not None:
        click.echo(f"The database it replaced is kept at {done.kept}")
