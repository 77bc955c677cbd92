"""Tables of exceptions: the exception, its device groups, its history, and inaccuracy reports.

Statuses are kept on two levels. Each :class:`ExceptionDeviceGroup` row has its own status, as a
group can be canceled, or suspended under a global exception, on its own; the exception's
``status`` summarises them (see ``service.summary_status``). A global exception has no group
rows: it covers every group, including groups created later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime

EXCEPTION_TYPES = ("recommendation", "cve")
JUSTIFICATIONS = (
    "CompensatingControl",
    "BusinessNeed",
    "AcceptRisk",
    "PlannedRemediation",
    "FalsePositive",
)
JUSTIFICATION_LABELS = {
    "CompensatingControl": "Compensating/alternate control",
    "BusinessNeed": "Productivity/business need",
    "AcceptRisk": "Accept risk",
    "PlannedRemediation": "Planned remediation (grace)",
    "FalsePositive": "Other \u2013 false positive",
}
JUSTIFICATION_HELP = {
    "CompensatingControl": "A third-party or internal control already mitigates this "
    "(for example a network firewall that blocks access, or another antivirus).",
    "BusinessNeed": "Remediating would hurt productivity or interrupt a business-critical "
    "workflow.",
    "AcceptRisk": "The risk is low, or a compensating control would cost too much.",
    "PlannedRemediation": "The fix is already planned and waits for execution or authorisation.",
    "FalsePositive": "The finding is wrong: the vulnerable software or code is not there.",
}
IMPACTS = ("NoImpact", "MitigationLike", "Hybrid")
IMPACT_LABELS = {"NoImpact": "No impact", "MitigationLike": "Mitigation-like", "Hybrid": "Hybrid"}
# Group-level statuses. "Active" ones still hold the group; the others are final.
GROUP_STATUSES = (
    "PendingApproval",
    "InEffect",
    "Suspended",
    "Expired",
    "Canceled",
    "Resurfaced",
    "Rejected",
)
ACTIVE_STATUSES = ("PendingApproval", "InEffect", "Suspended")
STATUS_LABELS = {
    "PendingApproval": "Pending approval",
    "InEffect": "In effect",
    "Suspended": "Suspended",
    "Expired": "Expired",
    "Canceled": "Canceled",
    "Resurfaced": "Resurfaced (void)",
    "Rejected": "Rejected",
}
INACCURACY_CATEGORIES = (
    "SoftwareNotInstalled",
    "WrongVersion",
    "FalsePositive",
    "WrongDevice",
    "Other",
)
INACCURACY_CATEGORY_LABELS = {
    "SoftwareNotInstalled": "Software not installed",
    "WrongVersion": "Wrong version",
    "FalsePositive": "False positive",
    "WrongDevice": "Wrong device",
    "Other": "Other",
}
INACCURACY_STATUSES = ("new", "confirmed", "dismissed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class RemediationException(Base):
    """An exception filed for a security recommendation or for one CVE.

    ``snapshot`` keeps the threat picture at filing (vulnerability ids, maximum severity, which
    had a public exploit or a KEV listing, the exposure impact), so that resurfacing can tell
    what got worse; ``resurfaced_rule``/``resurfaced_evidence`` say why it became void.
    """

    __tablename__ = "remediation_exception"
    __table_args__ = (
        CheckConstraint(_in("exception_type", EXCEPTION_TYPES), name="exception_type"),
        CheckConstraint(_in("justification", JUSTIFICATIONS), name="justification"),
        CheckConstraint(_in("impact", IMPACTS), name="impact"),
        CheckConstraint(_in("status", GROUP_STATUSES), name="status"),
        Index("ix_remediation_exception_target", "recommendation_id", "vulnerability_id"),
        Index("ix_remediation_exception_status_expires", "status", "expires_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exception_type: Mapped[str] = mapped_column(String(20))
    # No foreign key: recommendations are derived rows a recompute may drop and recreate, and
    # the exception (and its history) must outlive that.
    recommendation_id: Mapped[str | None] = mapped_column(String(440), nullable=True)
    vulnerability_id: Mapped[str | None] = mapped_column(
        ForeignKey("vulnerability.id"), nullable=True
    )
    justification: Mapped[str] = mapped_column(String(30))
    context: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[str] = mapped_column(String(20))
    is_global: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    requested_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UtcDateTime)
    # When it stopped being in effect (expired, canceled, resurfaced or rejected).
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decision_comment: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resurfaced_rule: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resurfaced_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Set once the "expires soon" warning went out, so the webhook announces it only once.
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    groups: Mapped[list[ExceptionDeviceGroup]] = relationship(
        back_populates="exception",
        cascade="all, delete-orphan",
        order_by="ExceptionDeviceGroup.device_group_id",
    )


class ExceptionDeviceGroup(Base):
    """One device group covered by a (non-global) exception, with its own status."""

    __tablename__ = "exception_device_group"
    __table_args__ = (
        CheckConstraint(_in("status", GROUP_STATUSES), name="status"),
        Index("ix_exception_device_group_status", "device_group_id", "status"),
    )

    exception_id: Mapped[int] = mapped_column(
        ForeignKey("remediation_exception.id", ondelete="CASCADE"), primary_key=True
    )
    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    exception: Mapped[RemediationException] = relationship(back_populates="groups")


class ExceptionEvent(Base):
    """One step in an exception's history (filed, approved, suspended, canceled, ...).

    Kept beside the audit history because jobs run ``--as-of`` a chosen time: ``occurred_at``
    is that time, so the history reads in the exception's own timeline.
    """

    __tablename__ = "exception_event"
    __table_args__ = (Index("ix_exception_event_exception", "exception_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exception_id: Mapped[int] = mapped_column(
        ForeignKey("remediation_exception.id", ondelete="CASCADE")
    )
    # None: the whole exception (every group, or a global one).
    device_group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InaccuracyReport(Base):
    """A user's report that a recommendation or vulnerability is wrong ("Report inaccuracy")."""

    __tablename__ = "inaccuracy_report"
    __table_args__ = (
        CheckConstraint(_in("object_type", ("recommendation", "vulnerability")), name="object"),
        CheckConstraint(_in("category", INACCURACY_CATEGORIES), name="category"),
        CheckConstraint(_in("status", INACCURACY_STATUSES), name="status"),
        Index("ix_inaccuracy_report_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(440))
    category: Mapped[str] = mapped_column(String(30))
    details: Mapped[str] = mapped_column(Text, default="")
    reporter_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reporter: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="new")
    resolver: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolution_comment: Mapped[str] = mapped_column(Text, default="")
    exception_id: Mapped[int | None] = mapped_column(
        ForeignKey("remediation_exception.id", ondelete="SET NULL"), nullable=True
    )
    # The report's scope: the device groups of its object that the reporter could see, as ",3,7,"
    # (audit/chain.py encode_groups). Its audit events carry the same groups.
    device_group_ids: Mapped[str] = mapped_column(Text, default="")


class ExceptionNotification(Base):
    """An ``exception.expiring`` webhook event to deliver (a minimal outbox row).

    Written in the exception job's transaction for each enabled webhook connection, delivered by
    the worker (``exceptions.notify.deliver_notifications``) with retries; the ticket outbox
    (``remediation.outbox``) belongs to remediation activities and cannot carry these.
    """

    __tablename__ = "exception_notification"
    __table_args__ = (
        CheckConstraint(_in("state", ("pending", "delivered", "failed")), name="state"),
        Index("ix_exception_notification_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exception_id: Mapped[int] = mapped_column(
        ForeignKey("remediation_exception.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(60))
    connector_name: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
