"""the recompute's derived rows without foreign keys (device_recommendation,
recommendation_group_stat, recommendation_vulnerability)

The recompute writes these rows by the million, each from a join with the rows it names, and
deletes a recommendation's and a group's rows itself: a key checked per row cost PostgreSQL a
third of a full recompute (docs/imports.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referenced table, on delete) of every key dropped.
_KEYS = (
    ("device_recommendation", "device_id", "device", "CASCADE"),
    ("device_recommendation", "recommendation_id", "recommendation", "CASCADE"),
    ("recommendation_group_stat", "device_group_id", "device_group", "CASCADE"),
    ("recommendation_group_stat", "recommendation_id", "recommendation", "CASCADE"),
    ("recommendation_vulnerability", "device_group_id", "device_group", "CASCADE"),
    ("recommendation_vulnerability", "recommendation_id", "recommendation", "CASCADE"),
    ("recommendation_vulnerability", "vulnerability_id", "vulnerability", None),
)
_TABLES = ("device_recommendation", "recommendation_group_stat", "recommendation_vulnerability")


def _name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for owner, column, referred, _ in _KEYS:
                if owner == table:
                    batch_op.drop_constraint(
                        op.f(_name(table, column, referred)), type_="foreignkey"
                    )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for owner, column, referred, on_delete in _KEYS:
                if owner == table:
                    batch_op.create_foreign_key(
                        op.f(_name(table, column, referred)),
                        referred,
                        [column],
                        ["id"],
                        ondelete=on_delete,
                    )
