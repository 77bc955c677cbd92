"""Read-only queries behind the remediation pages and the dashboard card."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent
from remedium.audit.service import AuditFilter, list_events
from remedium.auth.principal import Principal, Scope
from remedium.connectors.models import ConnectorConfig
from remedium.remediation.models import OutboxMessage, RemediationActivity
from remedium.remediation.service import visible


def top_activities(session: Session, scope: Scope, limit: int = 5) -> Sequence[RemediationActivity]:
    """Active activities visible in ``scope``: soonest due first, then highest priority.

    Activities without a due date ("attention required") come after every dated one, since
    nothing about them can be late.
    """
    priority_rank = case(
        (RemediationActivity.priority == "High", 0),
        (RemediationActivity.priority == "Medium", 1),
        else_=2,
    )
    undated_last = case((RemediationActivity.due_on.is_(None), 1), else_=0)
    return session.scalars(
        select(RemediationActivity)
        .where(RemediationActivity.status == "Active", visible(scope))
        .order_by(
            undated_last,
            RemediationActivity.due_on,
            priority_rank,
            RemediationActivity.created_at.desc(),
            RemediationActivity.id,
        )
        .limit(limit)
    ).all()


def activity_history(
    session: Session, principal: Principal, scope: Scope, activity_id: str, limit: int = 100
) -> Sequence[AuditEvent]:
    """The audit events of one activity the principal may read, newest first."""
    rows, _total = list_events(
        session,
        principal=principal,
        scope=scope,
        filters=AuditFilter(object_type="remediation_activity", object_id=activity_id),
        limit=limit,
    )
    return rows


def ticket_errors(session: Session, activity_ids: Sequence[str]) -> dict[str, str]:
    """The last delivery error of each activity whose ticket is not delivered yet."""
    if not activity_ids:
        return {}
    rows = session.execute(
        select(OutboxMessage.activity_id, OutboxMessage.last_error).where(
            OutboxMessage.activity_id.in_(list(activity_ids)),
            OutboxMessage.state != "delivered",
        )
    ).all()
    return {str(activity_id): str(error) for activity_id, error in rows if error}


def ticket_next_attempts(session: Session, activity_ids: Sequence[str]) -> dict[str, datetime]:
    """When the worker next tries each pending ticket of ``activity_ids``."""
    if not activity_ids:
        return {}
    rows = session.execute(
        select(OutboxMessage.activity_id, OutboxMessage.next_attempt_at).where(
            OutboxMessage.activity_id.in_(list(activity_ids)),
            OutboxMessage.state == "pending",
        )
    ).all()
    return {str(activity_id): when for activity_id, when in rows}


def connector_names(session: Session, *, enabled_only: bool = False) -> list[str]:
    """The names of the configured ticketing connections (switched on ones only, if asked)."""
    query = select(ConnectorConfig.name).order_by(ConnectorConfig.name)
    if enabled_only:
        query = query.where(ConnectorConfig.enabled.is_(True))
    return list(session.scalars(query))
