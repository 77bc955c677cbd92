"""The audit history table, and the triggers that make it append-only in the database itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime


class AuditEvent(Base):
    """One change of state: who (a user, or ``system``), when, what, before and after, and why.

    ``device_group_id`` says which device group the change belongs to, so that users see the
    history of their own groups; ``None`` marks an event that belongs to no group (sign-in, users,
    tokens, global exceptions). Rows are only ever inserted: the product has no update or delete
    path, and the triggers in :data:`APPEND_ONLY_DDL` refuse them in the database.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_occurred", "occurred_at"),
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_action_occurred", "action", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # No foreign key on the actor: the history outlives anything it mentions.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(60), default="")
    object_id: Mapped[str] = mapped_column(String(100), default="")
    device_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_group.id", ondelete="SET NULL"), nullable=True, index=True
    )
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    # The scope of the object: every device group it belongs to, as ",3,7," ("" for none). Unlike
    # ``device_group_id`` it has no foreign key, so it outlives deleted groups and never changes.
    device_group_ids: Mapped[str] = mapped_column(Text, default="")
    # The tamper-evidence chain (audit/chain.py): the hash of the event before this one, and the
    # SHA-256 of that hash and this event's content.
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    event_hash: Mapped[str] = mapped_column(String(64), default="")


# The append-only triggers of migration 0002; migration 0003 replaces them with the stricter
# ones of audit/chain.py (every column compared, INSERT OR REPLACE refused).
# The lead adds these to the migration that creates ``audit_event`` (op.execute each statement,
# for the dialect in use). Deleting a device group sets ``device_group_id`` to NULL through the
# foreign key, which is an UPDATE: the triggers let exactly that through.
APPEND_ONLY_DDL_SQLITE: tuple[str, ...] = (
    """
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    WHEN NOT (NEW.device_group_id IS NULL AND OLD.device_group_id IS NOT NULL
              AND NEW.id = OLD.id AND NEW.occurred_at = OLD.occurred_at
              AND NEW.action = OLD.action AND NEW.actor_name = OLD.actor_name
              AND NEW.object_type = OLD.object_type AND NEW.object_id = OLD.object_id
              AND NEW.reason = OLD.reason)
    BEGIN
        SELECT RAISE(ABORT, 'audit_event is append-only');
    END
    """,
    """
    CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
    BEGIN
        SELECT RAISE(ABORT, 'audit_event is append-only');
    END
    """,
)

APPEND_ONLY_DDL_POSTGRESQL: tuple[str, ...] = (
    """
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND NEW.device_group_id IS NULL AND OLD.device_group_id IS NOT NULL
           AND (to_jsonb(NEW) - 'device_group_id') = (to_jsonb(OLD) - 'device_group_id') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_event is append-only';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
    """,
    """
    CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()
    """,
)

APPEND_ONLY_DROP_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "DROP TRIGGER IF EXISTS audit_event_no_update",
        "DROP TRIGGER IF EXISTS audit_event_no_delete",
    ),
    "postgresql": (
        "DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        "DROP FUNCTION IF EXISTS audit_event_append_only()",
    ),
}


def append_only_ddl(dialect_name: str) -> tuple[str, ...]:
    """The statements that make ``audit_event`` append-only on ``dialect_name``."""
    if dialect_name == "postgresql":
        return APPEND_ONLY_DDL_POSTGRESQL
    return APPEND_ONLY_DDL_SQLITE
