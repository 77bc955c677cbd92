"""Developer tool: write a new migration from the difference between models and schema.

    python -m remedium.db.autogen "add exceptions"

It upgrades a scratch SQLite database to head, compares it with the models and writes
the difference as a new revision in ``migrations/versions``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from remedium.db.migrate import alembic_config, upgrade_database
from remedium.db.session import make_engine


def main(message: str) -> None:
    """Autogenerate a revision named ``message``."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'scratch.db'}")
        versions = Path(__file__).parent / "migrations" / "versions"
        if any(versions.glob("*.py")):
            upgrade_database(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
