"""Creating and upgrading the schema with Alembic (`remedium db upgrade`).

Every command checks the schema first, so the check is cheap: the newest revision is the
highest-numbered file in ``migrations/versions`` (files are named ``NNNN_slug.py`` and
revision ``NNNN``, one chain; a test checks this agrees with Alembic), and the database's
revision is read with one query. Alembic itself, slow to import, is loaded only to upgrade.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def alembic_config() -> Config:
    """An Alembic configuration pointing at remedium's migrations."""
    from alembic.config import Config  # noqa: PLC0415 — Alembic is slow to import: only to upgrade

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema revision this code knows."""
    numbers = [
        match.group(1)
        for path in (MIGRATIONS / "versions").iterdir()
        if (match := _REVISION_FILE.match(path.name))
    ]
    if not numbers:
        raise RuntimeError("no migrations found")
    return max(numbers)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        try:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:  # no alembic_version table: an empty database
            return None
    return str(rows[0][0]) if rows else None


def upgrade_database(engine: Engine) -> bool:
    """Bring the database up to the newest revision. Returns True when anything changed."""
    if current_revision(engine) == head_revision():
        return False
    from alembic import command  # noqa: PLC0415 — Alembic is slow to import: only to upgrade

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return True
