"""audit chain and scope: hash chain, object scope, stricter append-only triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 01:38:04
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from remedium.audit.chain import POSTGRESQL_TRIGGERS, encode_groups, hash_of, sqlite_ddl
from remedium.audit.models import APPEND_ONLY_DDL_SQLITE
from remedium.db.types import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_events = sa.table(
    "audit_event",
    sa.column("id", sa.Integer),
    sa.column("occurred_at", UtcDateTime),
    sa.column("actor_user_id", sa.Integer),
    sa.column("actor_name", sa.String),
    sa.column("action", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("device_group_id", sa.Integer),
    sa.column("device_group_ids", sa.Text),
    sa.column("before", sa.JSON),
    sa.column("after", sa.JSON),
    sa.column("reason", sa.Text),
    sa.column("client_address", sa.String),
    sa.column("prev_hash", sa.String),
    sa.column("event_hash", sa.String),
)
_reports = sa.table(
    "inaccuracy_report",
    sa.column("id", sa.Integer),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("device_group_ids", sa.Text),
)


def _groups(connection: sa.Connection, sql: str, **params: Any) -> set[int]:
    return {int(row[0]) for row in connection.execute(sa.text(sql), params)}


def _backfill(connection: sa.Connection) -> None:
    report_groups: dict[str, str] = {}
    for report in connection.execute(sa.select(_reports)).mappings().all():
        if report["object_type"] == "recommendation":
            sql = (
                "SELECT device_group_id FROM recommendation_group_stat "
                "WHERE recommendation_id = :object_id"
            )
        else:
            sql = (
                "SELECT DISTINCT device_group_id FROM recommendation_vulnerability "
                "WHERE vulnerability_id = :object_id"
            )
        scope = encode_groups(_groups(connection, sql, object_id=report["object_id"]))
        report_groups[str(report["id"])] = scope
        connection.execute(
            sa.update(_reports).where(_reports.c.id == report["id"]).values(device_group_ids=scope)
        )
    prev = ""
    last_id = 0
    while True:
        rows = (
            connection.execute(
                sa.select(_events).where(_events.c.id > last_id).order_by(_events.c.id).limit(2000)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        for row in rows:
            values = dict(row)
            groups = {row["device_group_id"]} if row["device_group_id"] is not None else set()
            if row["object_type"] == "inaccuracy_report":
                scope = report_groups.get(row["object_id"], "")
            elif row["object_type"] == "remediation_activity" and not groups:
                scope = encode_groups(
                    _groups(
                        connection,
                        "SELECT device_group_id FROM activity_group WHERE activity_id = :id",
                        id=row["object_id"],
                    )
                )
            else:
                scope = encode_groups(groups)
            values["device_group_ids"] = scope
            event_hash = hash_of(prev, values)
            connection.execute(
                sa.update(_events)
                .where(_events.c.id == row["id"])
                .values(device_group_ids=scope, prev_hash=prev, event_hash=event_hash)
            )
            prev = event_hash
            last_id = row["id"]


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        for name in POSTGRESQL_TRIGGERS:
            op.execute(f"ALTER TABLE audit_event DISABLE TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("device_group_ids", sa.Text(), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("event_hash", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("inaccuracy_report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("device_group_ids", sa.Text(), nullable=False, server_default="")
        )
    _backfill(connection)
    if postgres:
        # Fire even under session_replication_role = replica.
        for name in POSTGRESQL_TRIGGERS:
            op.execute(f"ALTER TABLE audit_event ENABLE ALWAYS TRIGGER {name}")
    else:
        for statement in sqlite_ddl():
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for name in POSTGRESQL_TRIGGERS:
            op.execute(f"ALTER TABLE audit_event DISABLE TRIGGER {name}")
    else:
        for statement in sqlite_ddl()[:3]:
            op.execute(statement)
    with op.batch_alter_table("inaccuracy_report", schema=None) as batch_op:
        batch_op.drop_column("device_group_ids")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("event_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("device_group_ids")
    if postgres:
        for name in POSTGRESQL_TRIGGERS:
            op.execute(f"ALTER TABLE audit_event ENABLE TRIGGER {name}")
    else:
        for statement in APPEND_ONLY_DDL_SQLITE:
            op.execute(statement)
