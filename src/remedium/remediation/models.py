"""Tables of remediation: activities, their target devices and weaknesses, and the ticket outbox.

An activity keeps a copy of what it targets (devices, and per device the vulnerabilities or the
configuration check) taken when it was requested, so its progress is measured against the
inventory of the day and not against a recommendation that later imports reshape or delete.
That is also why ``recommendation_id`` is not a foreign key: a recommendation disappears when
its last weakness is fixed, while the activity must stay to show that it was completed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime

ACTIVITY_TYPES = ("Update", "Upgrade", "Uninstall", "ConfigurationChange", "AttentionRequired")
PRIORITIES = ("High", "Medium", "Low")
STATUSES = ("Active", "Completed")
SYSTEM_CONFIRMATION = "System confirmation"
MANUAL = "Manual"
# Where the activity's ticket stands in remedium's outbox (not the ticket system's own state).
TICKET_NONE = "none"
TICKET_PENDING = "pending"
TICKET_DELIVERED = "delivered"
TICKET_FAILED = "failed"
OUTBOX_STATES = ("pending", "delivered", "failed")


class RemediationActivity(Base):
    """A request to fix one recommendation on the exposed devices of chosen device groups.

    Carries the fields of Defender's remediation activity entity (``remediationTasks``), the
    requester and completer, and the ticket as the ticketing system last reported it.
    """

    __tablename__ = "remediation_activity"
    __table_args__ = (
        CheckConstraint("status IN ('Active','Completed')", name="status"),
        CheckConstraint("priority IN ('High','Medium','Low')", name="priority"),
        Index("ix_remediation_activity_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a GUID, as in Defender
    recommendation_id: Mapped[str] = mapped_column(String(440), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # software | configuration
    software_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    configuration_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    title: Mapped[str] = mapped_column(String(700))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(30))  # Software | Security configuration
    remediation_type: Mapped[str] = mapped_column(String(30))
    priority: Mapped[str] = mapped_column(String(10))
    due_on: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Copied from the recommendation so the activity reads well after it is gone.
    related_component: Mapped[str] = mapped_column(String(300), default="")
    product_id: Mapped[str] = mapped_column(String(420), default="")
    vendor_id: Mapped[str] = mapped_column(String(200), default="")
    name_id: Mapped[str] = mapped_column(String(200), default="")
    recommended_version: Mapped[str] = mapped_column(String(100), default="")
    recommended_vendor: Mapped[str] = mapped_column(String(300), default="")
    recommended_program: Mapped[str] = mapped_column(String(300), default="")
    requester_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requester_name: Mapped[str] = mapped_column(String(200))
    requester_email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="Active")
    status_last_modified: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    completion_method: Mapped[str | None] = mapped_column(String(30), nullable=True)
    completer_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    completer_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # True when the requester chose "all device groups" (of their scope, at request time).
    all_device_groups: Mapped[bool] = mapped_column(Boolean, default=False)
    target_devices: Mapped[int] = mapped_column(Integer, default=0)
    fixed_devices: Mapped[int] = mapped_column(Integer, default=0)
    # Exposed devices in scope when requested; above the per-ticket cap only the first
    # ``target_devices`` (by exposure) are targeted, and ``devices_over_cap`` says how many not.
    exposed_devices_in_scope: Mapped[int] = mapped_column(Integer, default=0)
    devices_over_cap: Mapped[int] = mapped_column(Integer, default=0)
    connector_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_delivery: Mapped[str] = mapped_column(String(12), default=TICKET_NONE)
    ticket_external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ticket_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ticket_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # The ticket system's own word for the state, and remedium's normalised one
    # (pending, accepted, rejected, completed, unknown).
    ticket_state: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    ticket_synced_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ActivityGroup(Base):
    """A device group an activity covers (its ``rbacGroupNames``; decides who may see it)."""

    __tablename__ = "activity_group"
    __table_args__ = (Index("ix_activity_group_group", "device_group_id"),)

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("remediation_activity.id", ondelete="CASCADE"), primary_key=True
    )
    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )


class ActivityDevice(Base):
    """One target device of an activity; ``fixed_at`` is set while the inventory shows it fixed."""

    __tablename__ = "activity_device"
    __table_args__ = (Index("ix_activity_device_device", "device_id"),)

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("remediation_activity.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    device_group_id: Mapped[int] = mapped_column(Integer)
    # Rank by exposure at request time (1 = most exposed): the order devices go in the ticket.
    exposure_rank: Mapped[int] = mapped_column(Integer, default=0)
    fixed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ActivityWeakness(Base):
    """What the activity targets on one device: a vulnerability id, or the configuration id."""

    __tablename__ = "activity_weakness"

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("remediation_activity.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_key: Mapped[str] = mapped_column(String(300), primary_key=True)


class OutboxMessage(Base):
    """A ticket to deliver, written in the same transaction as its activity.

    The worker delivers it with the connector, looking the ticket up by ``idempotency_key``
    before creating it, so a crash between the external call and the commit never doubles it.
    ``last_error`` never holds secrets (connectors' messages are cut and kept short).
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("state IN ('pending','delivered','failed')", name="state"),
        Index("ix_outbox_message_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    activity_id: Mapped[str] = mapped_column(
        ForeignKey("remediation_activity.id", ondelete="CASCADE"), index=True
    )
    connector_name: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The claim of the worker delivering it now (outbox.claim): the message is its alone until
    # ``claimed_until`` (wall-clock time), so no two processes ever call the connector for it.
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
