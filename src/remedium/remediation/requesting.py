"""Requesting a remediation: the form's preview, and the activity with its devices and ticket.

``request_remediation`` writes the activity, its target devices and weaknesses and, with a
ticketing connection, its pending ticket (``outbox.enqueue_ticket``) in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, String, case, exists, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.principal import Principal, Right, Scope
from remedium.common.scoping import active_since, in_scope
from remedium.connectors.models import ConnectorConfig
from remedium.db.base import utcnow
from remedium.inventory.models import Device, DeviceGroup, Software, Weakness
from remedium.recommendations.models import DeviceRecommendation, Recommendation
from remedium.remediation.models import (
    TICKET_NONE,
    TICKET_PENDING,
    ActivityDevice,
    ActivityGroup,
    ActivityWeakness,
    RemediationActivity,
)
from remedium.remediation.outbox import enqueue_ticket
from remedium.remediation.service import (
    ATTENTION_REQUIRED,
    CONFIGURATION_TYPES,
    INSERT_CHUNK,
    SOFTWARE_TYPES,
    ActivityNotFoundError,
    RemediationError,
    RightMissingError,
    requester,
    snapshot,
)
from remedium.settings import get_settings


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


def _title(recommendation: Recommendation, software: Software | None, kind: str) -> str:
    if kind == recommendation.remediation_type or software is None:
        base = recommendation.name
    else:
        product = " ".join(p for p in (software.display_vendor, software.display_name) if p)
        base = f"{kind} {product}"
    return f"Attention required: {recommendation.name}" if kind == ATTENTION_REQUIRED else base


def _enabled_connector(session: Session, name: str) -> ConnectorConfig:
    config = session.get(ConnectorConfig, name)
    if config is None or not config.enabled:
        raise RemediationError(
            "connector", f"the ticketing connection {name!r} does not exist or is switched off"
        )
    return config


def _check_options(
    recommendation: Recommendation,
    remediation_type: str,
    priority: str,
    due_on: date | None,
    now: datetime,
) -> None:
    """Refuse a remediation option, priority or due date the request cannot have."""
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


def _add_targets(
    session: Session, activity: RemediationActivity, targeted: Sequence[Any]
) -> list[int]:
    """Write the activity's groups, target devices and weaknesses; return the groups."""
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
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(ActivityDevice), rows[start : start + INSERT_CHUNK])
    _snapshot_weaknesses(session, activity)
    return target_groups


def _described(
    recommendation: Recommendation, software: Software | None, remediation_type: str
) -> dict[str, Any]:
    """The activity's fields that come from its recommendation and product."""
    return {
        "recommendation_id": recommendation.id,
        "kind": recommendation.kind,
        "software_id": recommendation.software_id,
        "configuration_id": recommendation.configuration_id,
        "title": _title(recommendation, software, remediation_type),
        "description": recommendation.description or recommendation.remediation_text,
        "category": "Software" if recommendation.kind == "software" else "Security configuration",
        "related_component": recommendation.related_component,
        "product_id": software.product_key if software else "",
        "vendor_id": software.vendor if software else "",
        "name_id": software.product if software else "",
        "recommended_version": recommendation.recommended_version,
        "recommended_vendor": recommendation.recommended_vendor,
        "recommended_program": recommendation.recommended_program,
    }


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
    _check_options(recommendation, remediation_type, priority, due_on, now)
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
    requester_name, requester_email = requester(session, principal)
    activity = RemediationActivity(
        id=str(uuid.uuid4()),
        **_described(recommendation, software, remediation_type),
        remediation_type=remediation_type,
        priority=priority,
        due_on=datetime.combine(due_on, time(), tzinfo=UTC) if due_on else None,
        notes=notes,
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
    target_groups = _add_targets(session, activity, targeted)
    if connector_config is not None:
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
