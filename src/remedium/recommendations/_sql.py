"""What every step of the recompute shares (``service.recompute``): the runner of its SQL,
with the scoring formula's constants bound as parameters, the SQL fragments of a device's
multiplier, weight and activity, and the temporary tables it works in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, text
from sqlalchemy.orm import Session

from remedium.db.types import UtcDateTime
from remedium.scoring import engine as scoring
from remedium.settings import get_settings

TEMP_TABLES = (
    "tmp_rm_devices",
    "tmp_rm_dr",
    "tmp_rm_recs",
    "tmp_rm_groups",
    "tmp_rm_pairs",
    "tmp_rm_exp",
    "tmp_rm_inst",
    "tmp_rm_cov",
)
CHUNK = 5000
# Points below this are float noise left by subtracting a device's only recommendation.
EPSILON = 1e-9


@dataclass
class RecomputeStats:
    """What one :func:`recompute` did, and how long each step took (seconds)."""

    full: bool
    devices: int = 0
    device_recommendations: int = 0
    recommendations_touched: int = 0
    recommendations_created: int = 0
    recommendations_deleted: int = 0
    groups_touched: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Total time spent."""
        return sum(self.timings.values())


class Runner:
    """Runs the recompute's SQL with the formula constants bound as parameters."""

    def __init__(self, session: Session, as_of: datetime, stats: RecomputeStats) -> None:
        self.session = session
        self.as_of = as_of
        self.cutoff = as_of - timedelta(days=get_settings().inactive_after_days)
        self.stats = stats
        self.params: dict[str, Any] = {
            "k": scoring.SATURATION,
            "face": scoring.INTERNET_FACING,
            "cfactor": scoring.CONFIGURATION_FACTOR,
            "low_weight": scoring.DEVICE_WEIGHTS["Low"],
            "normal_weight": scoring.DEVICE_WEIGHTS["Normal"],
            "low_max": scoring.LOW_BAND_MAX,
            "high_min": scoring.HIGH_BAND_MIN,
            "eps": EPSILON,
            "cutoff": self.cutoff,
        }

    def run(self, sql: str, **extra: Any) -> int:
        """Execute one statement; returns the row count the database reports."""
        statement = text(sql)
        if ":cutoff" in sql:
            # Bound through the column type so SQLite compares timestamps in the stored shape.
            statement = statement.bindparams(bindparam("cutoff", type_=UtcDateTime()))
        params = {name: value for name, value in self.params.items() if f":{name}" in sql}
        params.update(extra)
        result = self.session.execute(statement, params)
        return int(getattr(result, "rowcount", 0) or 0)

    def rows(self, sql: str, **extra: Any) -> list[Any]:
        """Execute one query and return its rows."""
        statement = text(sql)
        if ":cutoff" in sql:
            statement = statement.bindparams(bindparam("cutoff", type_=UtcDateTime()))
        params = {name: value for name, value in self.params.items() if f":{name}" in sql}
        params.update(extra)
        return list(self.session.execute(statement, params))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step of the recompute."""
        started = time.perf_counter()
        yield
        self.stats.timings[name] = self.stats.timings.get(name, 0.0) + (
            time.perf_counter() - started
        )


# SQL fragments shared by the steps. A device's multiplier and weight, from its columns:
MULTIPLIER = "(CASE WHEN d.internet_facing THEN :face ELSE 1.0 END)"
WEIGHT = (
    "(CASE WHEN d.device_value = 'High' THEN 0.0 "
    "WHEN d.device_value = 'Low' THEN :low_weight ELSE :normal_weight END)"
)
IS_HIGH = "(CASE WHEN d.device_value = 'High' THEN 1 ELSE 0 END)"
ACTIVE = "d.last_seen >= :cutoff"


def in_stored_order(run: Runner) -> str:
    """SQLite: read the table itself, row by row in stored order, rather than through an
    index that sorts it by another column and jumps back to the table for every row."""
    return " NOT INDEXED" if run.session.get_bind().dialect.name == "sqlite" else ""


def table_of(model: Any) -> Table:
    table: Table = model.__table__
    return table


def drop_temp_tables(run: Runner) -> None:
    for name in TEMP_TABLES:
        run.run(f"DROP TABLE IF EXISTS {name}")
