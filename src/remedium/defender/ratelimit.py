"""The rate limit of the Defender-compatible API: requests per caller per minute.

Counters live in the database (``api_rate_window``), so every process serving the API counts
against the same limit. ``REMEDIUM_DEFENDER_RATE_LIMIT_PER_MINUTE`` sets it (0, the default,
turns it off); Microsoft documents 100 calls per minute and 1,500 per hour per endpoint.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from remedium.db.session import transaction
from remedium.defender.models import ApiRateWindow
from remedium.inventory.service import table_of

WINDOW_SECONDS = 60


def hit(engine: Engine, caller: str, limit: int, *, now: float | None = None) -> int | None:
    """Count one request of ``caller``; returns the seconds to wait when over ``limit``,
    else None."""
    moment = time.time() if now is None else now
    start = int(moment) // WINDOW_SECONDS * WINDOW_SECONDS
    table = table_of(ApiRateWindow)
    dialect = engine.dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(caller=caller, window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.caller, table.c.window_start],
            set_={"count": table.c.count + 1},
        )
        .returning(table.c.count)
    )
    with transaction(engine) as session:
        count = int(session.execute(statement).scalar_one())
        if count == 1:
            # A new window: the caller's older ones are of no use any more.
            session.execute(
                delete(ApiRateWindow).where(
                    ApiRateWindow.caller == caller, ApiRateWindow.window_start < start
                )
            )
    if count <= limit:
        return None
    return max(1, start + WINDOW_SECONDS - int(moment))
