"""``GET /api/v1/audit-events``: the history, filtered and paged, as far as the caller may read."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, status

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep
from remedium.audit.chain import decode_groups
from remedium.audit.models import AuditEvent
from remedium.audit.schemas import AuditEventOut, AuditEventPage
from remedium.audit.service import AuditFilter, get_event, list_events

router = APIRouter(prefix="/api/v1", tags=["audit"])


def event_out(event: AuditEvent) -> AuditEventOut:
    """The API shape of ``event``."""
    return AuditEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        actor_user_id=event.actor_user_id,
        actor_name=event.actor_name,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        device_group_id=event.device_group_id,
        device_group_ids=decode_groups(event.device_group_ids),
        before=event.before,
        after=event.after,
        reason=event.reason,
    )


@router.get("/audit-events", response_model=AuditEventPage)
def audit_events(
    *,
    session: SessionDep,
    principal: PrincipalDep,
    scope: ScopeDep,
    action: str | None = Query(None, description="an action, or its prefix: `exception`"),
    actor: str | None = Query(None, description="the actor's user name, or `system`"),
    object_type: str | None = None,
    object_id: str | None = None,
    device_group_id: int | None = None,
    since: datetime | None = Query(None, description="on or after this time"),
    until: datetime | None = Query(None, description="before this time"),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> AuditEventPage:
    """Events newest first. Users see their device groups' events and those of no group;
    sign-in, user and token events of others only when they are administrators."""
    filters = AuditFilter(
        action=action,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        device_group_id=device_group_id,
        since=since,
        until=until,
    )
    rows, total = list_events(
        session, principal=principal, scope=scope, filters=filters, offset=offset, limit=limit
    )
    return AuditEventPage(
        total=total, offset=offset, limit=limit, items=[event_out(row) for row in rows]
    )


@router.get("/audit-events/{event_id}", response_model=AuditEventOut)
def audit_event(
    event_id: int, session: SessionDep, principal: PrincipalDep, scope: ScopeDep
) -> AuditEventOut:
    """One event (404 when it is outside what the caller may read)."""
    event = get_event(session, event_id, principal=principal, scope=scope)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such audit event")
    return event_out(event)
