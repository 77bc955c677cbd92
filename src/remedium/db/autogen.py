"""Developer tool: write a new migration from the difference between models and schema.

    python -m remedium.db.autogen 0002 "add exceptions"

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


def main(rev_id: str, message: str) -> None:
    """Autogenerate revision ``rev_id`` named ``message``."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'scratch.db'}")
        versions = Path(__file__).parent / "migrations" / "versions"
        if any(versions.glob("*.py")):
            upgrade_database(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit("usage: python -m remedium.db.autogen REV_ID MESSAGE")
    main(sys.argv[1], " ".join(sys.argv[2:]))
