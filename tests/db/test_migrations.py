"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.orm import Session

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


def test_derived_rows_survive_the_foreign_keys_going_and_coming_back(engine: Engine) -> None:
    """0008 drops the derived tables' foreign keys (SQLite rebuilds each table): their rows
    stay, down to 0007 (the keys back, checked again by SQLite's rebuild) and up again."""
    from alembic import command  # noqa: PLC0415 - the tests alone drive Alembic directly
    from sqlalchemy import inspect, text  # noqa: PLC0415

    from remedium.recommendations.service import recompute  # noqa: PLC0415
    from tests.support.orgs.builder import NOW  # noqa: PLC0415
    from tests.support.orgs.random_org import build_random_org  # noqa: PLC0415

    tables = ("device_recommendation", "recommendation_group_stat", "recommendation_vulnerability")
    with Session(engine) as session:
        build_random_org(session, seed=21, devices=12)
        recompute(session, as_of=NOW)
        session.commit()

    def rows() -> dict[str, list[tuple[object, ...]]]:
        with engine.connect() as connection:
            return {
                t: sorted(tuple(r) for r in connection.execute(text(f"SELECT * FROM {t}")))
                for t in tables
            }

    def keys() -> dict[str, int]:
        inspector = inspect(engine)
        return {t: len(inspector.get_foreign_keys(t)) for t in tables}

    before = rows()
    assert all(before.values())
    assert keys() == dict.fromkeys(tables, 0)
    config = alembic_config()
    for target, expected in (("0007", {tables[0]: 2, tables[1]: 2, tables[2]: 3}), ("head", None)):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if target == "0007" else command.upgrade)(config, target)
        assert keys() == (expected or dict.fromkeys(tables, 0))
        assert rows() == before
    test_migrated_schema_matches_models(engine)
