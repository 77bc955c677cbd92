"""``remedium demo``: build the demo organisation into the configured database, then serve it."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import Engine, MetaData, inspect
from sqlalchemy.orm import Session

from remedium.cli.common import console, ready_engine
from remedium.db.migrate import upgrade_database
from remedium.db.session import FOREIGN_KEYS_OFF, session_factory, transaction
from remedium.settings import get_settings


def print_sign_in(engine: Engine, url: str) -> None:
    """Create the demo accounts when missing and say how to sign in with them."""
    # The accounts' service (argon2) loads when the command runs, not for `remedium demo --help`.
    from remedium.auth.service import ensure_demo_users  # noqa: PLC0415 — CLI start-up speed

    with transaction(engine) as session:
        users = ensure_demo_users(session)
    console.print(f"Sign in at {url}/signin with a demo account (public passwords, demo only):")
    table = Table()
    table.add_column("user")
    table.add_column("password")
    table.add_column("roles")
    for name, password, roles in users:
        table.add_row(name, password, ", ".join(roles))
    console.print(table)


def reset_database(engine: Engine) -> None:
    """Drop every table (and the schema version), then create the schema afresh."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.connection.info[FOREIGN_KEYS_OFF] = True  # on again at the next checkout
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        metadata.drop_all(bind=connection)
    upgrade_database(engine)


def demo_command(
    devices: int = typer.Option(2000, "--devices", min=10, help="About how many devices."),
    seed: int = typer.Option(20261120, "--seed", help="The seed everything follows from."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve it when built."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Replace what the database holds."),
) -> None:
    """Build the demo organisation (30 days of history), then serve it."""
    # The demo generator and the import pipeline load when the command runs, not for --help.
    from remedium.demo import build_demo, holds_demo  # noqa: PLC0415 — CLI start-up speed
    from remedium.inventory.service import count_devices  # noqa: PLC0415 — CLI start-up speed

    engine = ready_engine()
    with session_factory(engine)() as session:
        built, occupied = holds_demo(session), _has_devices(session, count_devices)
    if rebuild and "device" in inspect(engine).get_table_names():
        reset_database(engine)
        built = occupied = False
    if built:
        console.print("The database already holds the demo: reusing it (--rebuild replaces it).")
    elif occupied:
        console.print(
            "[red]The database already holds other data; --rebuild replaces it with the demo.[/red]"
        )
        raise typer.Exit(2)
    else:
        with console.status(f"building the demo organisation ({devices} devices, 30 days)..."):
            summary = build_demo(engine, devices=devices, seed=seed)
        console.print(
            f"demo built in {summary.seconds:.1f}s: {summary.devices} devices in "
            f"{summary.device_groups} groups, {summary.vulnerabilities} vulnerabilities, "
            f"{summary.imports} daily imports"
        )
    settings = get_settings()
    print_sign_in(engine, f"http://{settings.host}:{settings.port}")
    if serve_after:
        from remedium.cli.serve import serve_command  # noqa: PLC0415 — loads the web app

        serve_command(host=None, port=None, workers=1, no_worker=False)  # type: ignore[arg-type]


def _has_devices(session: Session, count: object) -> bool:
    return bool(count(session))  # type: ignore[operator]
