"""audit history is append-only in the database

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 19:50:00
"""

from collections.abc import Sequence

from alembic import op

from remedium.audit.models import APPEND_ONLY_DROP_DDL, append_only_ddl

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit events, so the
    # history cannot be rewritten even by a bug or a hand-written statement.
    for statement in append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in APPEND_ONLY_DROP_DDL[op.get_bind().dialect.name]:
        op.execute(statement)
