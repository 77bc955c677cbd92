"""``remedium``: every sub-command is registered here."""

from __future__ import annotations

import typer

from remedium.cli.audit import audit_app
from remedium.cli.backup import backup_command, restore_command
from remedium.cli.common import console, ready_engine
from remedium.cli.demo import demo_command
from remedium.cli.imports import import_command
from remedium.cli.intel import intel_app
from remedium.cli.jobs import jobs_app, worker_command
from remedium.cli.serve import serve_command
from remedium.cli.tokens import tokens_app
from remedium.cli.users import users_app
from remedium.db.migrate import current_revision, head_revision

app = typer.Typer(no_args_is_help=True, help="remedium: remediation and exception management.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema, backup and restore.")
app.add_typer(db_app, name="db")
db_app.command("backup")(backup_command)
db_app.command("restore")(restore_command)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(intel_app, name="intel")
app.add_typer(jobs_app, name="jobs")
app.add_typer(audit_app, name="audit")
app.command("worker")(worker_command)
app.command("import")(import_command)
app.command("demo")(demo_command)
app.command("serve")(serve_command)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or upgrade it to this version of remedium."""
    engine = ready_engine()
    console.print(f"schema at revision {current_revision(engine)} (head {head_revision()})")


if __name__ == "__main__":
    app()
