"""``/api/v1/remediation-activities``: request, list, read, complete and export activities."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, NoReturn, cast

from fastapi import APIRouter, HTTPException, Query, params, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep, require
from remedium.auth.principal import Right
from remedium.common.api import DEFAULT_PAGE, VIEW_RIGHT, LimitParam, OffsetParam
from remedium.db.base import utcnow
from remedium.remediation import outbox, requesting, service
from remedium.remediation.models import OutboxMessage, RemediationActivity
from remedium.remediation.schemas import (
    ActivityDeviceOut,
    ActivityDevicePage,
    ActivityOut,
    ActivityPage,
    ActivityRequest,
    PreviewOut,
    PreviewRequest,
    PriorityName,
    RemediationTypeName,
    TicketOut,
)

router = APIRouter(prefix="/api/v1", tags=["remediation"], dependencies=[VIEW_RIGHT])
REMEDIATION_RIGHT = cast(params.Depends, require(Right.REMEDIATION))
ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
_CSV_LIMIT = 100_000


def _unprocessable(error: service.RemediationError) -> NoReturn:
    raise HTTPException(
        422, detail=[{"loc": ["body", error.field], "msg": error.message, "type": "value_error"}]
    )


def _not_found(error: LookupError) -> NoReturn:
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error))


def activity_out(
    activity: RemediationActivity, groups: list[str], last_error: str | None = None
) -> ActivityOut:
    """The API shape of ``activity``."""
    attention = activity.remediation_type == service.ATTENTION_REQUIRED
    progress = (
        None
        if attention or not activity.target_devices
        else round(100.0 * activity.fixed_devices / activity.target_devices, 1)
    )
    completed_by = activity.completer_email or activity.completer_name
    return ActivityOut(
        id=activity.id,
        recommendation_id=activity.recommendation_id,
        title=activity.title,
        description=activity.description,
        category=activity.category,
        remediation_type=activity.remediation_type,
        priority=activity.priority,
        due_on=activity.due_on.date() if activity.due_on else None,
        overdue=service.is_overdue(activity),
        notes=activity.notes,
        requester=activity.requester_name,
        requester_email=activity.requester_email,
        created_at=activity.created_at,
        status=activity.status,
        status_last_modified=activity.status_last_modified,
        completion_method=activity.completion_method,
        completed_by=completed_by,
        completed_at=activity.completed_at,
        device_groups=groups,
        all_device_groups=activity.all_device_groups,
        target_devices=activity.target_devices,
        fixed_devices=activity.fixed_devices,
        progress_percent=progress,
        devices_over_cap=activity.devices_over_cap,
        cap_message=(
            requesting.over_cap_message(activity.exposed_devices_in_scope, activity.target_devices)
            if activity.devices_over_cap
            else ""
        ),
        ticket=TicketOut(
            connector=activity.connector_name,
            delivery=activity.ticket_delivery,
            external_id=activity.ticket_external_id,
            key=activity.ticket_key,
            url=activity.ticket_url,
            state=activity.ticket_state,
            status=activity.ticket_status,
            last_synced=activity.ticket_synced_at,
            last_error=last_error,
        ),
    )


def _outs(session: Session, activities: Sequence[RemediationActivity]) -> list[ActivityOut]:
    names = service.group_names(session, [a.id for a in activities])
    errors: dict[str, str] = {
        str(row[0]): str(row[1])
        for row in session.execute(
            select(OutboxMessage.activity_id, OutboxMessage.last_error).where(
                OutboxMessage.activity_id.in_([a.id for a in activities] or [""]),
                OutboxMessage.state != "delivered",
            )
        ).all()
    }
    return [activity_out(a, names[a.id], errors.get(a.id) or None) for a in activities]


def _filters(  # noqa: PLR0917 - one argument per query filter of the two list routes
    remediation_type: RemediationTypeName | None,
    status_: str | None,
    priority: PriorityName | None,
    overdue: bool | None,
    connector: str | None,
    recommendation_id: str | None,
) -> service.ActivityFilter:
    return service.ActivityFilter(
        remediation_type=remediation_type,
        status=status_,
        priority=priority,
        overdue=overdue,
        connector=connector,
        recommendation_id=recommendation_id,
    )


StatusParam = Annotated[str | None, Query(alias="status", pattern="^(Active|Completed)$")]


@router.post(
    "/remediation-activities",
    response_model=ActivityOut,
    status_code=201,
    dependencies=[REMEDIATION_RIGHT],
)
def create_activity(
    body: ActivityRequest, session: SessionDep, principal: PrincipalDep
) -> ActivityOut:
    """Request remediation of a recommendation on the exposed devices of chosen groups.

    Over ``max_devices_per_ticket`` exposed devices, the most exposed ones up to the cap are
    targeted; ``devices_over_cap`` and ``cap_message`` say how to cover the rest.
    """
    try:
        activity = requesting.request_remediation(
            session,
            principal,
            recommendation_id=body.recommendation_id,
            remediation_type=body.remediation_type,
            device_group_ids=body.device_group_ids,
            priority=body.priority,
            due_on=body.due_on,
            notes=body.notes,
            connector=body.connector,
        )
    except service.RemediationError as error:
        _unprocessable(error)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    return _outs(session, [activity])[0]


@router.post(
    "/remediation-activities/preview",
    response_model=PreviewOut,
    dependencies=[REMEDIATION_RIGHT],
)
def preview_activity(
    body: PreviewRequest, session: SessionDep, principal: PrincipalDep
) -> PreviewOut:
    """How many devices a request would cover, how many Intune can act on, and the cap."""
    try:
        preview = requesting.preview_request(
            session,
            principal,
            recommendation_id=body.recommendation_id,
            device_group_ids=body.device_group_ids,
        )
    except service.RemediationError as error:
        _unprocessable(error)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    return PreviewOut(
        recommendation_id=preview.recommendation_id,
        title=preview.title,
        remediation_types=list(preview.remediation_types),
        device_group_ids=preview.device_group_ids,
        devices_in_scope=preview.devices_in_scope,
        intune_eligible_devices=preview.intune_eligible_devices,
        max_devices_per_ticket=preview.max_devices_per_ticket,
        devices_over_cap=preview.devices_over_cap,
        message=preview.message,
    )


@router.get("/remediation-activities", response_model=ActivityPage)
def list_activities(
    *,
    session: SessionDep,
    scope: ScopeDep,
    remediation_type: RemediationTypeName | None = None,
    status_: StatusParam = None,
    priority: PriorityName | None = None,
    overdue: bool | None = None,
    connector: str | None = None,
    recommendation_id: str | None = None,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> ActivityPage:
    """Activities covering your device groups, newest first."""
    rows, total = service.list_activities(
        session,
        scope,
        _filters(remediation_type, status_, priority, overdue, connector, recommendation_id),
        offset=offset,
        limit=limit,
    )
    return ActivityPage(items=_outs(session, rows), total=total, offset=offset, limit=limit)


ACTIVITY_CSV_COLUMNS = (
    "id", "title", "remediation_type", "category", "priority", "status", "requester",
    "created_at", "due_on", "overdue", "target_devices", "fixed_devices", "completion_method",
    "completed_by", "completed_at", "device_groups", "connector", "ticket_state", "ticket_url",
)  # fmt: skip


def _csv(header: Sequence[str], rows: Iterator[Sequence[Any]], filename: str) -> StreamingResponse:
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/remediation-activities/export.csv", response_class=StreamingResponse)
def export_activities(
    *,
    session: SessionDep,
    scope: ScopeDep,
    remediation_type: RemediationTypeName | None = None,
    status_: StatusParam = None,
    priority: PriorityName | None = None,
    overdue: bool | None = None,
    connector: str | None = None,
) -> StreamingResponse:
    """Every activity matching the filters, as CSV ("Export all remediation activity data")."""
    rows, _ = service.list_activities(
        session,
        scope,
        _filters(remediation_type, status_, priority, overdue, connector, None),
        limit=_CSV_LIMIT,
    )
    outs = _outs(session, rows)

    def values() -> Iterator[list[Any]]:
        for a in outs:
            yield [
                a.id, a.title, a.remediation_type, a.category, a.priority, a.status,
                a.requester_email or a.requester, a.created_at.isoformat(),
                a.due_on.isoformat() if a.due_on else "", a.overdue, a.target_devices,
                a.fixed_devices, a.completion_method, a.completed_by,
                a.completed_at.isoformat() if a.completed_at else "",
                "; ".join(a.device_groups), a.ticket.connector, a.ticket.state, a.ticket.url,
            ]  # fmt: skip

    return _csv(ACTIVITY_CSV_COLUMNS, values(), "remediation-activities.csv")


@router.get("/remediation-activities/{activity_id}", response_model=ActivityOut)
def get_activity(session: SessionDep, scope: ScopeDep, activity_id: str) -> ActivityOut:
    """One activity with its progress and ticket."""
    try:
        activity = service.get_activity(session, scope, activity_id)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    return _outs(session, [activity])[0]


@router.get("/remediation-activities/{activity_id}/devices", response_model=ActivityDevicePage)
def activity_devices(
    session: SessionDep,
    scope: ScopeDep,
    activity_id: str,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> ActivityDevicePage:
    """The target devices in your scope, most exposed first, fixed or not."""
    try:
        service.get_activity(session, scope, activity_id)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    rows, total = service.activity_devices(session, scope, activity_id, offset=offset, limit=limit)
    return ActivityDevicePage(
        items=[_device_out(ad, d, g) for ad, d, g in rows], total=total, offset=offset, limit=limit
    )


def _device_out(ad: Any, device: Any, group: str) -> ActivityDeviceOut:
    return ActivityDeviceOut(
        device_id=device.id,
        machine_id=device.machine_id,
        name=device.name,
        device_group=group,
        os_platform=device.os_platform,
        status="Fixed" if ad.fixed_at is not None else "Not fixed",
        fixed_at=ad.fixed_at,
    )


@router.get("/remediation-activities/{activity_id}/devices.csv", response_class=StreamingResponse)
def export_activity_devices(
    session: SessionDep, scope: ScopeDep, activity_id: str
) -> StreamingResponse:
    """The activity's target devices and their status, as CSV."""
    try:
        service.get_activity(session, scope, activity_id)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    rows, _ = service.activity_devices(session, scope, activity_id, limit=None)
    values = (
        [d.machine_id, d.name, g, d.os_platform, "Fixed" if ad.fixed_at else "Not fixed",
         ad.fixed_at.isoformat() if ad.fixed_at else ""]
        for ad, d, g in rows
    )  # fmt: skip
    header = ("machine_id", "name", "device_group", "os_platform", "status", "fixed_at")
    return _csv(header, values, f"remediation-activity-{activity_id}-devices.csv")


@router.post(
    "/remediation-activities/{activity_id}/complete",
    response_model=ActivityOut,
    dependencies=[REMEDIATION_RIGHT],
)
def complete_activity(
    session: SessionDep, principal: PrincipalDep, activity_id: str
) -> ActivityOut:
    """Mark the activity completed by hand (you are recorded as the completer)."""
    try:
        activity = service.complete_activity(session, principal, activity_id)
    except service.ActivityNotFoundError as error:
        _not_found(error)
    except service.ActivityConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    return _outs(session, [activity])[0]


@router.post(
    "/remediation-activities/{activity_id}/retry-ticket",
    response_model=ActivityOut,
    dependencies=[ADMIN_RIGHT],
)
def retry_ticket(session: SessionDep, principal: PrincipalDep, activity_id: str) -> ActivityOut:
    """Queue a failed ticket again (administrators), e.g. after fixing the connection."""
    try:
        activity = service.get_activity(session, principal.scope, activity_id)
        outbox.retry_ticket(session, principal, activity, now=utcnow())
    except service.ActivityNotFoundError as error:
        _not_found(error)
    except service.ActivityConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    return _outs(session, [activity])[0]
