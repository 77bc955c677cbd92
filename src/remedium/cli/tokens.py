"""``remedium tokens``: create an API token (printed once)."""

from __future__ import annotations

import typer

from remedium.auth import service
from remedium.cli.common import console, print_json, ready_engine
from remedium.db.session import transaction

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens.")


@tokens_app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="The user the token acts as."),
    name: str = typer.Option("cli", "--name", help="What the token is for."),
    expires_days: int = typer.Option(
        None, "--expires-days", min=1, help="Days until it expires (default: never)."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"token": ...}.'),
) -> None:
    """Create a token for USER and print it once (only its hash is stored)."""
    engine = ready_engine()
    try:
        with transaction(engine) as session:
            account = service.get_user_by_name(session, user)
            if account is None or not account.active:
                raise service.AuthError(f"no active user called {user!r}")
            token, secret = service.create_token(
                session, account, actor=None, name=name, expires_days=expires_days
            )
            expires = token.expires_at.isoformat(timespec="seconds") if token.expires_at else None
            token_id, prefix = token.id, token.prefix
    except service.AuthError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    if as_json:
        print_json({"token": secret, "id": token_id, "user": user, "expires_at": expires})
        return
    console.print(
        f"token {prefix}… for [bold]{user}[/bold] (expires: {expires or 'never'}); "
        "copy it now, it is not shown again:"
    )
    print(secret)
