"""``remedium users``: add and list accounts."""

from __future__ import annotations

import secrets
import sys

import typer
from rich.table import Table

from remedium.auth import service
from remedium.cli.common import console, print_json, ready_engine
from remedium.db.session import transaction

users_app = typer.Typer(no_args_is_help=True, help="User accounts.")


@users_app.command("add")
def add(  # noqa: PLR0917 (Typer maps parameters to options)
    name: str = typer.Argument(..., help="The sign-in name."),
    role: list[str] = typer.Option(
        ...,
        "--role",
        help="admin, analyst, itadmin, auditor, or a right: view, remediation, exceptions "
        "(repeatable).",
    ),
    device_group: list[str] = typer.Option(
        [], "--device-group", help="A device group the user may see (repeatable; none = all)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    display_name: str = typer.Option("", help="The name shown in the UI."),
    email: str = typer.Option("", help="Email address."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an account; without --password-stdin a password is generated and printed once."""
    generated = not password_stdin
    password = secrets.token_urlsafe(15) if generated else sys.stdin.readline().rstrip("\r\n")
    engine = ready_engine()
    try:
        with transaction(engine) as session:
            rights = service.rights_for_roles(role)
            group_ids = service.groups_by_name(session, device_group)
            user = service.create_user(
                session,
                actor=None,
                name=name,
                password=password,
                rights=rights,
                device_group_ids=group_ids,
                all_device_groups=not device_group,
                display_name=display_name,
                email=email,
            )
            user_id = user.id
    except service.AuthError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    scope = ", ".join(device_group) if device_group else "all device groups"
    rights_text = ", ".join(sorted(r.value for r in rights))
    if as_json:
        payload: dict[str, object] = {
            "id": user_id,
            "name": name,
            "rights": sorted(r.value for r in rights),
            "device_groups": list(device_group) or None,
        }
        if generated:
            payload["password"] = password
        print_json(payload)
        return
    console.print(f"created user [bold]{name}[/bold] ({rights_text}; {scope})")
    if generated:
        # Standard output, so it can be piped; shown this once and stored only as a hash.
        console.print("password (shown once):")
        print(password)


@users_app.command("list")
def list_users() -> None:
    """Every account, its rights and device groups."""
    engine = ready_engine()
    with transaction(engine) as session:
        table = Table("name", "rights", "device groups", "active", "last sign-in")
        for user in service.list_users(session):
            groups = (
                "all"
                if user.all_device_groups
                else ", ".join(g.name for g in user.device_groups) or "none"
            )
            table.add_row(
                user.name,
                ", ".join(user.rights),
                groups,
                "yes" if user.active else "no",
                user.last_signin_at.isoformat(timespec="minutes") if user.last_signin_at else "",
            )
    console.print(table)
