"""``remedium db``: the schema, backup and restore."""

from __future__ import annotations

import typer

from remedium.cli.backup import backup_command, restore_command
from remedium.cli.common import console, ready_engine
from remedium.db.migrate import current_revision, head_revision

db_app = typer.Typer(no_args_is_help=True, help="Database schema, backup and restore.")
db_app.command("backup")(backup_command)
db_app.command("restore")(restore_command)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or upgrade it to this version of remedium."""
    engine = ready_engine()
    console.print(f"schema at revision {current_revision(engine)} (head {head_revision()})")
