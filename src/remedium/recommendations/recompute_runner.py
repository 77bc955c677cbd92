"""The one executor of the recompute's statements (``_sql.py``) and of its work tables
(``recompute_tables.py``), and what a recompute reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, TypedDict

from sqlalchemy import Boolean, CursorResult, Dialect, Index, Result, Table, bindparam, insert, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from remedium.db.types import UtcDateTime
from remedium.recommendations import recompute_tables as work
from remedium.scoring import engine as scoring
from remedium.settings import get_settings

CHUNK = 5000
# Points below this are float noise left by subtracting a device's only recommendation.
EPSILON = 1e-9


class FormulaParams(TypedDict):
    """The scoring formula's constants (``scoring.engine``) and the activity cutoff, bound
    wherever a statement names them (``:k``, ``:cutoff``...)."""

    k: float
    face: float
    cfactor: float
    low_weight: float
    normal_weight: float
    low_max: float
    high_min: float
    eps: float
    cutoff: datetime


def formula_params(cutoff: datetime) -> FormulaParams:
    """The constants of :mod:`remedium.scoring.engine`, and the cutoff of active devices."""
    return FormulaParams(
        k=scoring.SATURATION,
        face=scoring.INTERNET_FACING,
        cfactor=scoring.CONFIGURATION_FACTOR,
        low_weight=scoring.DEVICE_WEIGHTS["Low"],
        normal_weight=scoring.DEVICE_WEIGHTS["Normal"],
        low_max=scoring.LOW_BAND_MAX,
        high_min=scoring.HIGH_BAND_MIN,
        eps=EPSILON,
        cutoff=cutoff,
    )


_TIMES = ("cutoff", "as_of")  # the timestamp parameters a statement may name


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement: its text and its own bind parameters (typed by the function that made
    it); ``expanding`` names the list parameters of an ``IN``."""

    text: str
    params: Mapping[str, object] = field(default_factory=dict)
    expanding: tuple[str, ...] = ()


@dataclass
class RecomputeStats:
    """What one recompute did, and how long each step took (seconds)."""

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
    """Runs the recompute's statements, with the formula constants bound as parameters."""

    def __init__(self, session: Session, as_of: datetime, stats: RecomputeStats) -> None:
        self.session = session
        self.as_of = as_of
        self.cutoff = as_of - timedelta(days=get_settings().inactive_after_days)
        self.stats = stats
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.params: dict[str, object] = {**formula_params(self.cutoff), "as_of": as_of}

    def _execute(self, sql: Sql) -> Result[Any]:
        statement = text(sql.text)
        for name in _TIMES:
            if f":{name}" in sql.text:
                # Bound through the column type: SQLite stores timestamps in its own shape.
                statement = statement.bindparams(bindparam(name, type_=UtcDateTime()))
        for name in sql.expanding:
            statement = statement.bindparams(bindparam(name, expanding=True))
        params: dict[str, object] = {
            name: value for name, value in self.params.items() if f":{name}" in sql.text
        }
        params.update(sql.params)
        return self.session.execute(statement, params)

    def run(self, sql: Sql) -> int:
        """Execute one statement; returns the row count the database reports."""
        return int(getattr(self._execute(sql), "rowcount", 0) or 0)

    def rows(self, sql: Sql) -> list[tuple[Any, ...]]:
        """Execute one query and return its rows, as the driver's plain tuples: the statements
        are text, so SQLAlchemy has no type to process a value with, and making a ``Row`` of
        each was a third of reading the facts of 177,000 recommendations."""
        result = self._execute(sql)
        assert isinstance(result, CursorResult)
        rows = result.cursor.fetchall()
        result.close()
        return list(rows)

    def scalar(self, sql: Sql) -> Any:
        """Execute one query and return the one column of its one row."""
        return self._execute(sql).scalar_one()

    def create(self, table: Table) -> None:
        """Create one work table of :mod:`recompute_tables`."""
        work.create_work_table(self.session.connection(), table)

    def create_index(self, index: Index) -> None:
        """Build an index of a work table, once its rows are in."""
        work.create_work_index(self.session.connection(), index)

    def fill(self, table: Table, rows: Sequence[Mapping[str, object]]) -> None:
        """Insert ``rows`` into a work table (one executemany per ``CHUNK`` rows)."""
        for start in range(0, len(rows), CHUNK):
            self.session.execute(insert(table), list(rows[start : start + CHUNK]))

    def update_by_id(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Write new values to rows of ``table`` found by ``id``: each row of ``rows`` holds
        the id and the columns to set. One ``executemany`` of the driver per set of columns and
        ``CHUNK`` rows, the values converted by their column types' bind processors where the
        driver needs it (see :func:`_converter`): SQLAlchemy's per-row parameter processing was
        most of the cost (17,700 recommendations' fields: 0.45 -> 0.2 s)."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for values in rows:
            by_columns.setdefault(tuple(name for name in values if name != "id"), []).append(values)
        connection = self.session.connection()
        dialect = connection.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        for columns, same in by_columns.items():
            if not columns:
                continue  # nothing to set
            names = (*columns, "id")
            converters = [
                (index, convert)
                for index, name in enumerate(names)
                if (convert := _converter(table.c[name].type, dialect)) is not None
            ]
            statement = (
                f"UPDATE {table.name} SET "
                + ", ".join(f"{name} = {mark}" for name in columns)
                + f" WHERE id = {mark}"
            )
            pick = itemgetter(*names)
            tuples: list[tuple[Any, ...]] = []
            for values in same:
                row = list(pick(values))
                for index, convert in converters:
                    row[index] = convert(row[index])
                tuples.append(tuple(row))
            for start in range(0, len(tuples), CHUNK):
                connection.exec_driver_sql(statement, tuples[start : start + CHUNK])

    def drop_work_tables(self) -> None:
        """Drop the work tables a previous recompute in this connection may have left."""
        work.drop_work_tables(self.session.connection())

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step of the recompute."""
        started = time.perf_counter()
        yield
        self.stats.timings[name] = self.stats.timings.get(name, 0.0) + (
            time.perf_counter() - started
        )


def _converter(kind: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of column type ``kind`` reaches the driver: its bind processor, except
    for booleans (both drivers take Python's own: SQLite stores them as 1 and 0, as the
    processor would) and timestamps, converted once per distinct value (a recompute writes
    its one ``as_of`` on every row)."""
    if isinstance(kind, Boolean):
        return None
    process: Callable[[Any], Any] | None = kind._cached_bind_processor(dialect)
    if process is None or not isinstance(kind, UtcDateTime):
        return process
    converted: dict[Any, Any] = {}

    def once(value: Any) -> Any:
        if value not in converted:
            converted[value] = process(value)
        return converted[value]

    return once
