"""Requesting, reading and completing remediation activities.

Services flush, never commit: the request, command or job around them owns the transaction, so
an activity, its target devices and its pending ticket (the outbox message) commit together or
not at all. Progress is measured in :mod:`remedium.remediation.progress`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, select, true
from sqlalchemy.orm import Session

from remedium.audit.service import record, register_scope
from remedium.auth.models import User
from remedium.auth.principal import Principal, Right, Scope
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.inventory.models import Device, DeviceGroup
from remedium.remediation.models import (
    MANUAL,
    ActivityDevice,
    ActivityGroup,
    ActivityWeakness,
    OutboxMessage,
    RemediationActivity,
)

SOFTWARE_TYPES = ("Update", "Upgrade", "Uninstall", "AttentionRequired")
CONFIGURATION_TYPES = ("ConfigurationChange", "AttentionRequired")
ATTENTION_REQUIRED = "AttentionRequired"
INSERT_CHUNK = 2000


class RemediationError(ValueError):
    """A request that cannot be honoured as given (answered 422, naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ActivityNotFoundError(LookupError):
    """No such activity or recommendation, or one outside the caller's device groups (404)."""


class ActivityConflictError(ValueError):
    """The activity is not in a state that allows the action (409), e.g. already completed."""


class RightMissingError(PermissionError):
    """The principal lacks the right the action needs (403)."""


# --- the audited view of an activity -----------------------------------------------------------


def requester(session: Session, principal: Principal) -> tuple[str, str]:
    """The name and e-mail a request or completion records for ``principal``."""
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        return principal.name, ""
    return user.name, user.email


def snapshot(activity: RemediationActivity) -> dict[str, Any]:
    """The audited view of an activity (no secrets; JSON-serialisable)."""
    return {
        "recommendation_id": activity.recommendation_id,
        "remediation_type": activity.remediation_type,
        "priority": activity.priority,
        "due_on": activity.due_on.date().isoformat() if activity.due_on else None,
        "status": activity.status,
        "completion_method": activity.completion_method,
        "completer": activity.completer_name,
        "target_devices": activity.target_devices,
        "fixed_devices": activity.fixed_devices,
        "connector": activity.connector_name,
        "ticket_delivery": activity.ticket_delivery,
        "ticket_state": activity.ticket_state,
    }


def audit_group(session: Session, activity_id: str) -> int | None:
    """The device group an activity's audit events carry: its only group, else none (org-wide)."""
    groups = list(
        session.scalars(
            select(ActivityGroup.device_group_id).where(ActivityGroup.activity_id == activity_id)
        )
    )
    return groups[0] if len(groups) == 1 else None


def activity_groups(session: Session, activity_id: str) -> list[int]:
    """Every device group of an activity: the scope its audit events carry."""
    return list(
        session.scalars(
            select(ActivityGroup.device_group_id).where(ActivityGroup.activity_id == activity_id)
        )
    )


# Every audit event of an activity carries all its groups (not only a single one).
register_scope("remediation_activity", activity_groups)


# --- reading ------------------------------------------------------------------------------------


def visible(scope: Scope) -> ColumnElement[bool]:
    """Activities the scope may see: those covering at least one visible device group."""
    if scope.device_group_ids is None:
        return true()
    return exists().where(
        ActivityGroup.activity_id == RemediationActivity.id,
        in_scope(ActivityGroup.device_group_id, scope),
    )


def start_of_day(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: due dates before it have passed."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def is_overdue(activity: RemediationActivity, now: datetime | None = None) -> bool:
    """True when the due date has passed while the activity is still active."""
    now = now or utcnow()
    return (
        activity.status == "Active"
        and activity.due_on is not None
        and activity.due_on < start_of_day(now)
    )


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """The Activities tab's and the list endpoint's filters (all optional)."""

    remediation_type: str | None = None
    status: str | None = None
    priority: str | None = None
    overdue: bool | None = None
    connector: str | None = None
    recommendation_id: str | None = None


def _filtered(query: Select[Any], filters: ActivityFilter, now: datetime) -> Select[Any]:
    activity = RemediationActivity
    if filters.remediation_type:
        query = query.where(activity.remediation_type == filters.remediation_type)
    if filters.status:
        query = query.where(activity.status == filters.status)
    if filters.priority:
        query = query.where(activity.priority == filters.priority)
    if filters.connector:
        query = query.where(activity.connector_name == filters.connector)
    if filters.recommendation_id:
        query = query.where(activity.recommendation_id == filters.recommendation_id)
    if filters.overdue is not None:
        overdue = (
            (activity.status == "Active")
            & activity.due_on.is_not(None)
            & (activity.due_on < start_of_day(now))
        )
        query = query.where(overdue if filters.overdue else ~overdue)
    return query


def list_activities(
    session: Session,
    scope: Scope,
    filters: ActivityFilter | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> tuple[Sequence[RemediationActivity], int]:
    """Activities visible in ``scope``, newest first, and how many match."""
    now = now or utcnow()
    base = _filtered(
        select(RemediationActivity).where(visible(scope)), filters or ActivityFilter(), now
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(
        base.order_by(RemediationActivity.created_at.desc(), RemediationActivity.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, int(total)


def get_activity(session: Session, scope: Scope, activity_id: str) -> RemediationActivity:
    """One activity visible in ``scope``; :class:`ActivityNotFoundError` otherwise."""
    found = session.scalars(
        select(RemediationActivity).where(RemediationActivity.id == activity_id, visible(scope))
    ).first()
    if found is None:
        raise ActivityNotFoundError(f"remediation activity {activity_id} not found")
    return found


def group_names(session: Session, activity_ids: Sequence[str]) -> dict[str, list[str]]:
    """The device group names of each activity (Defender's ``rbacGroupNames``), in one query."""
    names: dict[str, list[str]] = {a: [] for a in activity_ids}
    if not activity_ids:
        return names
    rows = session.execute(
        select(ActivityGroup.activity_id, DeviceGroup.name)
        .join(DeviceGroup, DeviceGroup.id == ActivityGroup.device_group_id)
        .where(ActivityGroup.activity_id.in_(list(activity_ids)))
        .order_by(DeviceGroup.name)
    ).all()
    for activity_id, name in rows:
        names[activity_id].append(name)
    return names


def activity_devices(
    session: Session,
    scope: Scope,
    activity_id: str,
    *,
    offset: int = 0,
    limit: int | None = 50,
) -> tuple[list[tuple[ActivityDevice, Device, str]], int]:
    """The activity's target devices in ``scope`` (most exposed first), with their group name."""
    base = (
        select(ActivityDevice, Device, DeviceGroup.name)
        .join(Device, Device.id == ActivityDevice.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(
            ActivityDevice.activity_id == activity_id,
            in_scope(Device.device_group_id, scope),
        )
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    query = base.order_by(ActivityDevice.exposure_rank, Device.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = [(ad, device, name) for ad, device, name in session.execute(query).all()]
    return rows, int(total)


# --- completion and retention -------------------------------------------------------------------


def complete_activity(
    session: Session, principal: Principal, activity_id: str, *, now: datetime | None = None
) -> RemediationActivity:
    """Mark an activity completed by hand; the completer and "Manual" are recorded."""
    if not principal.has(Right.REMEDIATION):
        raise RightMissingError("the 'remediation' right is required")
    now = now or utcnow()
    activity = get_activity(session, principal.scope, activity_id)
    if activity.status == "Completed":
        raise ActivityConflictError("the activity is already completed")
    before = snapshot(activity)
    name, email = requester(session, principal)
    activity.status = "Completed"
    activity.status_last_modified = now
    activity.completed_at = now
    activity.completion_method = MANUAL
    activity.completer_user_id = principal.user_id
    activity.completer_name = name
    activity.completer_email = email
    session.flush()
    record(
        session,
        actor=principal,
        action="remediation.complete",
        object_type="remediation_activity",
        object_id=activity.id,
        device_group_id=audit_group(session, activity.id),
        before=before,
        after=snapshot(activity),
    )
    return activity


def purge_completed(session: Session, *, as_of: datetime, retention_days: int) -> int:
    """Delete activities completed more than ``retention_days`` before ``as_of``; audited."""
    cutoff = as_of - timedelta(days=retention_days)
    expired = session.scalars(
        select(RemediationActivity).where(
            RemediationActivity.status == "Completed",
            RemediationActivity.completed_at < cutoff,
        )
    ).all()
    for activity in expired:
        record(
            session,
            actor=None,
            action="remediation.purge",
            object_type="remediation_activity",
            object_id=activity.id,
            device_group_id=audit_group(session, activity.id),
            before=snapshot(activity),
            reason=f"completed more than {retention_days} days ago",
        )
    ids = [a.id for a in expired]
    for start in range(0, len(ids), INSERT_CHUNK):
        chunk = ids[start : start + INSERT_CHUNK]
        # Children first: SQLite only cascades when its foreign_keys pragma is on.
        for model in (OutboxMessage, ActivityWeakness, ActivityDevice, ActivityGroup):
            session.execute(delete(model).where(model.activity_id.in_(chunk)))
        session.execute(delete(RemediationActivity).where(RemediationActivity.id.in_(chunk)))
    session.flush()
    return len(ids)
