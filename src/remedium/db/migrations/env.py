"""Alembic environment: batch mode so every migration also runs on SQLite."""

from __future__ import annotations

from alembic import context

from remedium.db.registry import metadata

config = context.config


def run_migrations() -> None:
    """Run migrations on the connection handed over by remedium.db.migrate."""
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("remedium migrations run through `remedium db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
