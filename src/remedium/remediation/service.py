"""Requesting, reading and completing remediation activities.

Services flush, never commit: the request, command or job around them owns the transaction, so
an activity, its target devices and its pending ticket (the outbox message) commit together or
not at all. Progress is measured in :mod:`remedium.remediation.progress`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from remedium.audit.service import record, register_scope
from remedium.auth.models import User
from remedium.auth.principal import Principal, Right, Scope
from remedium.common.scoping import active_since, in_scope
from remedium.connectors.models import ConnectorConfig
from remedium.db.base import utcnow
from remedium.inventory.models import Device, DeviceGroup, Software, Weakness
from remedium.recommendations.models import DeviceRecommendation, Recommendation
from remedium.remediation.models import (
    MANUAL,
    TICKET_NONE,
    TICKET_PENDING,
    ActivityDevice,
    ActivityGroup,
    ActivityWeakness,
    OutboxMessage,
    RemediationActivity,
)
from remedium.settings import get_settings

SOFTWARE_TYPES = ("Update", "Upgrade", "Uninstall", "AttentionRequired")
CONFIGURATION_TYPES = ("ConfigurationChange", "AttentionRequired")
ATTENTION_REQUIRED = "AttentionRequired"
_INSERT_CHUNK = 2000


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


# --- scope of a request -------------------------------------------------------------------------


def _chosen_groups(
    session: Session, scope: Scope, device_group_ids: Sequence[int] | None
) -> list[int]:
    """The device groups a request covers: all visible ones, or the chosen ones if visible."""
    visible = select(DeviceGroup.id).where(in_scope(DeviceGroup.id, scope))
    if device_group_ids is None:
        return sorted(session.scalars(visible))
    wanted = sorted(set(device_group_ids))
    if not wanted:
        raise RemediationError("device_group_ids", "choose at least one device group, or all")
    found = set(session.scalars(visible.where(DeviceGroup.id.in_(wanted))))
    missing = [g for g in wanted if g not in found]
    if missing:
        # A group outside the caller's scope gets the same answer as one that does not exist.
        raise RemediationError(
            "device_group_ids", f"unknown device group {', '.join(map(str, missing))}"
        )
    return wanted


def _exposed_devices(
    recommendation_id: str, group_ids: Sequence[int], now: datetime
) -> Select[Any]:
    """Active exposed devices of the recommendation in the groups, most exposed first."""
    return (
        select(
            Device.id,
            Device.device_group_id,
            Device.name,
            Device.machine_id,
            Device.aad_device_id,
            Device.is_intune_managed,
            Device.is_aad_joined,
        )
        .join(DeviceRecommendation, DeviceRecommendation.device_id == Device.id)
        .where(
            DeviceRecommendation.recommendation_id == recommendation_id,
            Device.device_group_id.in_(list(group_ids) or [-1]),
            Device.last_seen >= active_since(now),
        )
        .order_by(DeviceRecommendation.points.desc(), Device.id)
    )


def _recommendation_in_scope(
    session: Session, scope: Scope, recommendation_id: str
) -> Recommendation:
    recommendation = session.get(Recommendation, recommendation_id)
    if recommendation is None:
        raise ActivityNotFoundError(f"recommendation {recommendation_id} not found")
    exposed_here = session.scalar(
        select(
            exists().where(
                DeviceRecommendation.recommendation_id == recommendation_id,
                DeviceRecommendation.device_id == Device.id,
                in_scope(Device.device_group_id, scope),
            )
        )
    )
    if not exposed_here:
        raise ActivityNotFoundError(f"recommendation {recommendation_id} not found")
    return recommendation


def allowed_types(recommendation: Recommendation) -> tuple[str, ...]:
    """The remediation options a recommendation offers (software or configuration)."""
    return SOFTWARE_TYPES if recommendation.kind == "software" else CONFIGURATION_TYPES


def over_cap_message(total: int, cap: int) -> str:
    """What the form and the API say when a request covers more devices than one ticket takes."""
    return (
        f"{total} devices are exposed in the chosen device groups, but one remediation request "
        f"and its ticket cover at most {cap}: the {cap} most exposed devices are included. "
        "To cover the rest, submit another request for each remaining device group."
    )


@dataclass(frozen=True, slots=True)
class RequestPreview:
    """What the request form shows before submitting: how many devices, and the cap."""

    recommendation_id: str
    title: str
    remediation_types: tuple[str, ...]
    device_group_ids: list[int]
    devices_in_scope: int
    intune_eligible_devices: int
    max_devices_per_ticket: int
    devices_over_cap: int
    message: str


def preview_request(
    session: Session,
    principal: Principal,
    *,
    recommendation_id: str,
    device_group_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> RequestPreview:
    """Devices a request would target in the caller's scope, Intune-eligible ones, the cap."""
    now = now or utcnow()
    scope = principal.scope
    recommendation = _recommendation_in_scope(session, scope, recommendation_id)
    groups = _chosen_groups(session, scope, device_group_ids)
    exposed = _exposed_devices(recommendation_id, groups, now).subquery()
    total, eligible = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(
                    case((or_(exposed.c.is_intune_managed, exposed.c.is_aad_joined), 1), else_=0)
                ),
                0,
            ),
        ).select_from(exposed)
    ).one()
    cap = get_settings().max_devices_per_ticket
    over = max(0, int(total) - cap)
    return RequestPreview(
        recommendation_id=recommendation_id,
        title=recommendation.name,
        remediation_types=allowed_types(recommendation),
        device_group_ids=groups,
        devices_in_scope=int(total),
        intune_eligible_devices=int(eligible),
        max_devices_per_ticket=cap,
        devices_over_cap=over,
        message=over_cap_message(int(total), cap) if over else "",
    )


# --- the request --------------------------------------------------------------------------------


def _title(recommendation: Recommendation, software: Software | None, kind: str) -> str:
    if kind == recommendation.remediation_type or software is None:
        base = recommendation.name
    else:
        product = " ".join(p for p in (software.display_vendor, software.display_name) if p)
        base = f"{kind} {product}"
    return f"Attention required: {recommendation.name}" if kind == ATTENTION_REQUIRED else base


def _requester(session: Session, principal: Principal) -> tuple[str, str]:
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


def _enabled_connector(session: Session, name: str) -> ConnectorConfig:
    config = session.get(ConnectorConfig, name)
    if config is None or not config.enabled:
        raise RemediationError(
            "connector", f"the ticketing connection {name!r} does not exist or is switched off"
        )
    return config


def request_remediation(
    session: Session,
    principal: Principal,
    *,
    recommendation_id: str,
    remediation_type: str,
    device_group_ids: Sequence[int] | None,
    priority: str,
    due_on: date | None,
    notes: str = "",
    connector: str | None = None,
    now: datetime | None = None,
) -> RemediationActivity:
    """Create a remediation activity, its target devices and weaknesses, and its pending ticket.

    Validates the right, the scope (the recommendation and every chosen group must be visible),
    the remediation option against the recommendation, the due date ("attention required" has
    none; others need one not in the past) and the connection (switched on). Above
    ``settings.max_devices_per_ticket`` exposed devices, the most exposed ones up to the cap are
    targeted and ``devices_over_cap`` tells how many are left. Flushes, never commits.
    """
    if not principal.has(Right.REMEDIATION):
        raise RightMissingError("the 'remediation' right is required")
    now = now or utcnow()
    scope = principal.scope
    recommendation = _recommendation_in_scope(session, scope, recommendation_id)
    if remediation_type not in allowed_types(recommendation):
        raise RemediationError(
            "remediation_type",
            f"{remediation_type!r} is not an option for this recommendation; "
            f"use one of: {', '.join(allowed_types(recommendation))}",
        )
    if priority not in ("High", "Medium", "Low"):
        raise RemediationError("priority", "priority is High, Medium or Low")
    if remediation_type == ATTENTION_REQUIRED:
        if due_on is not None:
            raise RemediationError("due_on", "'attention required' has no due date")
    elif due_on is None:
        raise RemediationError("due_on", "a due date is required")
    elif due_on < now.date():
        raise RemediationError("due_on", "the due date is in the past")
    connector_config = _enabled_connector(session, connector) if connector else None
    groups = _chosen_groups(session, scope, device_group_ids)
    devices = session.execute(_exposed_devices(recommendation_id, groups, now)).all()
    if not devices:
        raise RemediationError(
            "device_group_ids", "no active device in the chosen groups is exposed"
        )
    cap = get_settings().max_devices_per_ticket
    targeted = devices[:cap]
    software = (
        session.get(Software, recommendation.software_id)
        if recommendation.software_id is not None
        else None
    )
    requester_name, requester_email = _requester(session, principal)
    activity = RemediationActivity(
        id=str(uuid.uuid4()),
        recommendation_id=recommendation.id,
        kind=recommendation.kind,
        software_id=recommendation.software_id,
        configuration_id=recommendation.configuration_id,
        title=_title(recommendation, software, remediation_type),
        description=recommendation.description or recommendation.remediation_text,
        category="Software" if recommendation.kind == "software" else "Security configuration",
        remediation_type=remediation_type,
        priority=priority,
        due_on=datetime.combine(due_on, time(), tzinfo=UTC) if due_on else None,
        notes=notes,
        related_component=recommendation.related_component,
        product_id=software.product_key if software else "",
        vendor_id=software.vendor if software else "",
        name_id=software.product if software else "",
        recommended_version=recommendation.recommended_version,
        recommended_vendor=recommendation.recommended_vendor,
        recommended_program=recommendation.recommended_program,
        requester_user_id=principal.user_id,
        requester_name=requester_name,
        requester_email=requester_email,
        created_at=now,
        status="Active",
        status_last_modified=now,
        all_device_groups=device_group_ids is None,
        target_devices=len(targeted),
        fixed_devices=0,
        exposed_devices_in_scope=len(devices),
        devices_over_cap=len(devices) - len(targeted),
        connector_name=connector_config.name if connector_config else None,
        ticket_delivery=TICKET_PENDING if connector_config else TICKET_NONE,
    )
    session.add(activity)
    session.flush()
    target_groups = sorted({row.device_group_id for row in targeted})
    session.execute(
        insert(ActivityGroup),
        [{"activity_id": activity.id, "device_group_id": g} for g in target_groups],
    )
    rows = [
        {
            "activity_id": activity.id,
            "device_id": row.id,
            "device_group_id": row.device_group_id,
            "exposure_rank": rank,
        }
        for rank, row in enumerate(targeted, start=1)
    ]
    for start in range(0, len(rows), _INSERT_CHUNK):
        session.execute(insert(ActivityDevice), rows[start : start + _INSERT_CHUNK])
    _snapshot_weaknesses(session, activity)
    if connector_config is not None:
        from remedium.remediation.outbox import enqueue_ticket

        enqueue_ticket(session, activity, connector_config, targeted, software)
    record(
        session,
        actor=principal,
        action="remediation.request",
        object_type="remediation_activity",
        object_id=activity.id,
        device_group_id=target_groups[0] if len(target_groups) == 1 else None,
        after={**snapshot(activity), "device_group_ids": target_groups},
        reason=notes,
    )
    return activity


def _snapshot_weaknesses(session: Session, activity: RemediationActivity) -> None:
    """Copy what the activity targets on each device, set-based."""
    targets = select(ActivityDevice.device_id).where(ActivityDevice.activity_id == activity.id)
    if activity.kind == "software":
        source = select(literal(activity.id), Weakness.device_id, Weakness.vulnerability_id).where(
            Weakness.software_id == activity.software_id,
            Weakness.fixed_at.is_(None),
            Weakness.device_id.in_(targets),
        )
    else:
        source = select(
            literal(activity.id),
            ActivityDevice.device_id,
            literal(activity.configuration_id or "", String()),
        ).where(ActivityDevice.activity_id == activity.id)
    session.execute(
        insert(ActivityWeakness).from_select(["activity_id", "device_id", "target_key"], source)
    )


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
    name, email = _requester(session, principal)
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
    for start in range(0, len(ids), _INSERT_CHUNK):
        chunk = ids[start : start + _INSERT_CHUNK]
        # Children first: SQLite only cascades when its foreign_keys pragma is on.
        for model in (OutboxMessage, ActivityWeakness, ActivityDevice, ActivityGroup):
            session.execute(delete(model).where(model.activity_id.in_(chunk)))
        session.execute(delete(RemediationActivity).where(RemediationActivity.id.in_(chunk)))
    session.flush()
    return len(ids)
