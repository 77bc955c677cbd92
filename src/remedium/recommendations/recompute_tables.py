"""The work tables of the recompute (``service.recompute``), declared once.

They are temporary tables: each lives in the recompute's own connection, is created by the step
that fills it and dropped at the start and the end of every recompute. They have their own
``MetaData``, apart from the application's tables, so that no migration ever creates them; the
statements that read and write them (``_sql.py``) name them through these objects, and
``tests/recommendations/test_recompute_tables.py`` creates every one on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.schema import CreateTable, DropTable

# The widths of the permanent columns these rows are copied from.
_RECOMMENDATION_ID = String(440)
_CONFIGURATION_ID = String(300)
_VULNERABILITY_ID = String(100)

work_metadata = MetaData()

target_devices = Table(
    "tmp_rm_devices",
    work_metadata,
    # autoincrement=False: a plain key, no sequence (PostgreSQL would make it BIGSERIAL).
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    prefixes=["TEMPORARY"],
)
"""The devices whose own rows are rebuilt (incremental recompute only)."""

device_recommendation_work = Table(
    "tmp_rm_dr",
    work_metadata,
    Column("device_id", BigInteger, nullable=False),
    Column("recommendation_id", _RECOMMENDATION_ID, nullable=False),
    Column("software_id", Integer),
    Column("configuration_id", _CONFIGURATION_ID),
    Column("weaknesses", Integer, nullable=False),
    # Raw points, before the device's multiplier.
    Column("points", Float, nullable=False),
    Column("config_weight", Float, nullable=False),
    # After exceptions: raw points removed by Mitigation-like/Hybrid exceptions, weaknesses of
    # CVEs under an exception, recommendation under an exception.
    Column("covered_points", Float, nullable=False, server_default=text("0.0")),
    Column("covered_weak", Integer, nullable=False, server_default=text("0")),
    Column("rec_covered", Integer, nullable=False, server_default=text("0")),
    prefixes=["TEMPORARY"],
)
"""Per (device, recommendation) of the target devices: weaknesses and points."""

# Built after the rows are in (see create_work_index), not with the table.
device_recommendation_work_by_device = Index(
    "ix_tmp_rm_dr_device", device_recommendation_work.c.device_id
)

touched_recommendations = Table(
    "tmp_rm_recs",
    work_metadata,
    Column("id", _RECOMMENDATION_ID, primary_key=True),
    prefixes=["TEMPORARY"],
)
"""Recommendations the target devices had, have, or count as installed on (incremental)."""

touched_groups = Table(
    "tmp_rm_groups",
    work_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    prefixes=["TEMPORARY"],
)
"""Groups whose figures are rebuilt (incremental)."""

touched_pairs = Table(
    "tmp_rm_pairs",
    work_metadata,
    Column("recommendation_id", _RECOMMENDATION_ID, primary_key=True),
    Column("device_group_id", Integer, primary_key=True, autoincrement=False),
    prefixes=["TEMPORARY"],
)
"""The (recommendation, group) pairs whose group rows are rebuilt (incremental)."""

exposed_by_group = Table(
    "tmp_rm_exp",
    work_metadata,
    Column("recommendation_id", _RECOMMENDATION_ID, nullable=False),
    Column("device_group_id", Integer, nullable=False),
    Column("exposed", Integer),
    Column("critical", Integer),
    Column("facing", Integer),
    Column("delta_weighted", Float),
    Column("delta_high", Float),
    Column("config_weight", Float),
    Column("exposed_after", Integer),
    Column("delta_weighted_after", Float),
    Column("delta_high_after", Float),
    Column("config_weight_after", Float),
    prefixes=["TEMPORARY"],
)
"""Per (recommendation, group): exposed devices and score deltas, as they are and after
exceptions."""

installed_by_group = Table(
    "tmp_rm_inst",
    work_metadata,
    Column("recommendation_id", _RECOMMENDATION_ID, nullable=False),
    Column("device_group_id", Integer, nullable=False),
    Column("installed", Integer),
    prefixes=["TEMPORARY"],
)
"""Per (recommendation, group): active devices with the product installed or the check assessed."""

coverage = Table(
    "tmp_rm_cov",
    work_metadata,
    Column("recommendation_id", _RECOMMENDATION_ID),
    Column("vulnerability_id", _VULNERABILITY_ID),
    Column("device_group_id", Integer, nullable=False),
    Column("mitigating", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
"""What the exceptions in effect cover, one row per (recommendation or CVE, group)."""

WORK_TABLES: tuple[Table, ...] = (
    target_devices,
    device_recommendation_work,
    touched_recommendations,
    touched_groups,
    touched_pairs,
    exposed_by_group,
    installed_by_group,
    coverage,
)


def create_work_table(connection: Connection, table: Table) -> None:
    """Create one work table, without its indexes (they are built once the rows are in)."""
    connection.execute(CreateTable(table))


def create_work_index(connection: Connection, index: Index) -> None:
    """Build an index of a work table after its rows are written: cheaper than keeping it."""
    index.create(connection)


def drop_work_tables(connection: Connection) -> None:
    """Drop every work table this connection may still have (``DROP TABLE IF EXISTS``)."""
    for table in WORK_TABLES:
        connection.execute(DropTable(table, if_exists=True))
