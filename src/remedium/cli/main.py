"""``remedium``: every sub-command is registered here, and loaded only when it runs.

A command's module imports what the command needs (SQLAlchemy, the import pipeline, the web
application): importing all of them made ``remedium --help`` take seconds. So ``COMMANDS``
names each command's module and object with its one-line help; ``remedium --help`` lists them
from here, and a command's module is imported when the command runs or its own help is asked
for. ``tests/cli`` checks that every entry loads and that its help is the command's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # Typer 0.29 (pinned) vendors Click: its commands are these
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a command lives (``module:object``: a ``typer.Typer`` or a command function)."""

    target: str
    help: str


COMMANDS: dict[str, Entry] = {
    "serve": Entry(
        "remedium.cli.serve:serve_command",
        "Serve the web UI and the API on the configured database, with the background jobs.",
    ),
    "demo": Entry(
        "remedium.cli.demo:demo_command",
        "Build the demo organisation (30 days of history), then serve it.",
    ),
    "import": Entry(
        "remedium.cli.imports:import_command",
        "Import FILE... in one transaction: a bad file changes nothing.",
    ),
    "intel": Entry("remedium.cli.intel:intel_app", "Vulnerability intelligence feeds."),
    "jobs": Entry("remedium.cli.jobs:jobs_app", "Periodic jobs."),
    "worker": Entry(
        "remedium.cli.jobs:worker_command",
        "Run the periodic jobs on their schedule and deliver the ticket outbox (Ctrl-C stops).",
    ),
    "users": Entry("remedium.cli.users:users_app", "User accounts."),
    "tokens": Entry("remedium.cli.tokens:tokens_app", "API tokens."),
    "audit": Entry("remedium.cli.audit:audit_app", "The audit history."),
    "db": Entry("remedium.cli.db:db_app", "Database schema, backup and restore."),
}


def load(name: str) -> click.Command:
    """Import command ``name`` and build its Click command."""
    module, _, attribute = COMMANDS[name].target.partition(":")
    found: Any = getattr(importlib.import_module(module), attribute)
    command: click.Command
    if isinstance(found, typer.Typer):
        command = typer.main.get_group(found)
    else:
        single = typer.Typer()
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The ``remedium`` group: lists ``COMMANDS`` without importing them, loads one to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Asked for by the help listing: a stand-in that knows only the name and the help.
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in COMMANDS:
            return args[0], load(args[0]), args[1:]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="remedium: remediation and exception management.",
)


@app.callback()
def main() -> None:
    """remedium: remediation and exception management."""


if __name__ == "__main__":
    app()
