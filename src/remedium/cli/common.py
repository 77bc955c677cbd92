"""What every command shares: the database it is pointed at, and JSON output."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from sqlalchemy import Engine

from remedium.db.migrate import upgrade_database
from remedium.db.session import get_engine

console = Console(stderr=True)


def ready_engine() -> Engine:
    """The configured database, with its schema created or upgraded when needed."""
    engine = get_engine()
    upgrade_database(engine)
    return engine


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on standard output (for ``--json``)."""
    print(json.dumps(payload, default=str, sort_keys=True))
