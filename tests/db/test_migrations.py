"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from remedium.db.migrate import alembic_config, current_revision, head_revision, upgrade_database
from remedium.db.registry import metadata


def test_migrated_schema_matches_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert upgrade_database(engine) is False


def test_the_head_read_from_file_names_is_alembics_head() -> None:
    """Commands check the schema without loading Alembic: the newest file's number must be the
    head Alembic itself computes from the revisions' links (one chain, no branches)."""

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    revisions = [r.revision for r in script.walk_revisions()]
    assert revisions == sorted(revisions, reverse=True)  # numbered in the order they chain
