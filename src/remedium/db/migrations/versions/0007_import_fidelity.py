"""import fidelity: a finding's path; "Unknown" severity kept as the scanner wrote it

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_UNKNOWN = "severity IN ('Low','Medium','High','Critical','Unknown')"
_WITHOUT_UNKNOWN = "severity IN ('Low','Medium','High','Critical')"


def upgrade() -> None:
    with op.batch_alter_table("weakness", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", sa.String(length=500), nullable=True))
    with op.batch_alter_table("vulnerability", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_vulnerability_severity"), type_="check")
        batch_op.create_check_constraint(op.f("ck_vulnerability_severity"), _WITH_UNKNOWN)


def downgrade() -> None:
    op.execute("UPDATE vulnerability SET severity = 'Medium' WHERE severity = 'Unknown'")
    with op.batch_alter_table("vulnerability", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_vulnerability_severity"), type_="check")
        batch_op.create_check_constraint(op.f("ck_vulnerability_severity"), _WITHOUT_UNKNOWN)
    with op.batch_alter_table("weakness", schema=None) as batch_op:
        batch_op.drop_column("path")
