"""Reading ticket states back from the ticketing systems (``remedium jobs run``, the worker).

Each open ticket's state is asked of its system; every change is recorded and audited.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.connectors.base import TicketConnector, TicketRef
from remedium.connectors.errors import PermanentError, TransientError
from remedium.db.base import utcnow
from remedium.remediation.models import TICKET_DELIVERED, RemediationActivity
from remedium.remediation.outbox import FINAL_TICKET_STATES, ConnectorResolver
from remedium.remediation.service import audit_group


def sync_ticket_states(
    session: Session, resolve: ConnectorResolver, *, now: datetime | None = None
) -> dict[str, int]:
    """Read each open ticket's state from its system; record and audit every change.

    Tickets already completed or rejected are not asked again. Errors of one system leave its
    tickets as they were (the next run asks again). Flushes, never commits.
    """
    now = now or utcnow()
    activities = session.scalars(
        select(RemediationActivity).where(
            RemediationActivity.ticket_delivery == TICKET_DELIVERED,
            RemediationActivity.ticket_external_id.is_not(None),
            RemediationActivity.connector_name.is_not(None),
        )
    ).all()
    figures = {"checked": 0, "changed": 0, "errors": 0}
    connectors: dict[str, TicketConnector | None] = {}
    for activity in activities:
        if activity.ticket_status in FINAL_TICKET_STATES:
            continue
        name = activity.connector_name or ""
        if name not in connectors:
            connectors[name] = resolve(session, name)
        connector = connectors[name]
        if connector is None:
            continue
        ref = TicketRef(
            system=connector.name,
            external_id=activity.ticket_external_id or "",
            key=activity.ticket_key or "",
            url=activity.ticket_url or "",
        )
        figures["checked"] += 1
        try:
            state = connector.get_state(ref)
        except (TransientError, PermanentError):
            figures["errors"] += 1
            continue
        activity.ticket_synced_at = now
        if (activity.ticket_state, activity.ticket_status) == (
            state.system_state,
            state.state.value,
        ):
            continue
        before = {"ticket_state": activity.ticket_state, "ticket_status": activity.ticket_status}
        activity.ticket_state = state.system_state
        activity.ticket_status = state.state.value
        figures["changed"] += 1
        session.flush()
        record(
            session,
            actor=None,
            action="remediation.ticket_state",
            object_type="remediation_activity",
            object_id=activity.id,
            device_group_id=audit_group(session, activity.id),
            before=before,
            after={"ticket_state": state.system_state, "ticket_status": state.state.value},
        )
    session.flush()
    return figures
