"""``remedium audit verify``: check the audit history's hash chain and its append-only triggers."""

from __future__ import annotations

import typer

from remedium.audit.chain import verify
from remedium.cli.common import console, print_json, ready_engine
from remedium.db.session import session_factory

audit_app = typer.Typer(no_args_is_help=True, help="The audit history.")


@audit_app.command("verify")
def verify_command(
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Walk the hash chain; name the first broken link and any missing trigger (exit 1)."""
    engine = ready_engine()
    with session_factory(engine)() as session:
        result = verify(session)
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "events": result.events,
                "first_broken_event_id": result.first_broken,
                "problem": result.problem,
                "missing_protection": result.missing_protection,
            }
        )
    else:
        for problem in result.missing_protection:
            console.print(f"[red]protection:[/red] {problem}")
        if result.first_broken is not None:
            console.print(f"[red]broken link:[/red] {result.problem}")
        if result.ok:
            console.print(f"audit history intact: {result.events} events, every link holds")
    if not result.ok:
        raise typer.Exit(1)
