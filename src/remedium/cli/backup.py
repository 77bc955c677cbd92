"""``remedium db backup FILE`` and ``remedium db restore FILE``."""

from __future__ import annotations

from pathlib import Path

import typer

from remedium.cli.common import console, ready_engine
from remedium.db import backup as backups
from remedium.db.migrate import current_revision, head_revision
from remedium.settings import get_settings


def backup_command(
    file: Path = typer.Argument(..., dir_okay=False, help="Where to write the backup."),
) -> None:
    """Copy the whole database into FILE, online (servers, workers and imports keep running)."""
    url = get_settings().database_url
    try:
        info = backups.backup(url, file)
    except backups.BackupError as error:
        console.print(f"[red]backup failed:[/] {error}")
        raise typer.Exit(1) from None
    console.print(f"{info.kind} backup written to {info.path} ({info.size:,} bytes)")


def restore_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before replacing the database."),
) -> None:
    """Replace the configured database with the backup in FILE (stop servers and workers first)."""
    url = get_settings().database_url
    if not yes:
        typer.confirm("Replace everything in the configured database with this backup?", abort=True)
    try:
        info = backups.restore(url, file)
    except backups.BackupError as error:
        console.print(f"[red]restore failed:[/] {error}")
        raise typer.Exit(1) from None
    # A backup of an older version is brought up to this version's schema.
    engine = ready_engine()
    console.print(
        f"{info.kind} backup {info.path} restored; schema at {current_revision(engine)} "
        f"(head {head_revision()})"
    )
