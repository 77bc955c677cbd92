"""Announcing exceptions about to expire through the webhook connector (``exception.expiring``).

:func:`enqueue_expiring` runs inside the exception job's transaction: for each exception newly
flagged as expiring soon and each *enabled* webhook connection it writes one
:class:`ExceptionNotification`, so the announcement is never lost nor sent twice for one flag.
:func:`deliver_notifications` (the worker, after the ticket outbox) posts each due row with
``WebhookConnector.send_event``, in its own transaction, with the same back-off as tickets.
Nothing is queued when no webhook connection is switched on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from remedium.connectors.errors import PermanentError, RateLimitedError, TransientError
from remedium.connectors.models import ConnectorConfig
from remedium.connectors.webhook import EVENT_EXCEPTION_EXPIRING, EXCEPTION_SCHEMA
from remedium.db.base import utcnow
from remedium.db.session import is_postgres, session_factory
from remedium.exceptions.models import (
    IMPACT_LABELS,
    JUSTIFICATION_LABELS,
    ExceptionNotification,
    RemediationException,
)
from remedium.remediation.outbox import BACKOFF_CAP_SECONDS, ConnectorResolver, backoff_delay

_ERROR_LENGTH = 500


@dataclass(slots=True)
class NotificationStats:
    """What one delivery run did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Figures for the job record."""
        return {
            "notifications_delivered": self.delivered,
            "notifications_retried": self.retried,
            "notifications_failed": self.failed,
        }


def expiring_payload(exc: RemediationException) -> dict[str, Any]:
    """The event's data: what expires, when, and where to look (docs/connectors.md)."""
    return {
        "exception": {
            "id": exc.id,
            "type": exc.exception_type,
            "recommendation_id": exc.recommendation_id,
            "vulnerability_id": exc.vulnerability_id,
            "justification": exc.justification,
            "justification_label": JUSTIFICATION_LABELS.get(exc.justification, exc.justification),
            "impact": exc.impact,
            "impact_label": IMPACT_LABELS.get(exc.impact, exc.impact),
            "scope": "global" if exc.is_global else "groups",
            "device_group_ids": sorted(
                g.device_group_id for g in exc.groups if g.status in ("InEffect", "Suspended")
            ),
            "requested_by": exc.requested_by,
            "expires_on": exc.expires_on.isoformat(),
            "path": f"/remediation/exceptions/{exc.id}",
        }
    }


def enqueue_expiring(
    session: Session, exceptions: Iterable[RemediationException], *, as_of: datetime
) -> int:
    """Queue one ``exception.expiring`` event per exception and enabled webhook connection.

    Returns the number of rows queued (0 when no webhook connection is switched on).
    """
    connectors = list(
        session.scalars(
            select(ConnectorConfig.name).where(
                ConnectorConfig.kind == "webhook", ConnectorConfig.enabled.is_(True)
            )
        )
    )
    if not connectors:
        return 0
    queued = 0
    for exc in exceptions:
        payload = expiring_payload(exc)
        for name in connectors:
            # One announcement per flag: the key names the exception and the day it was flagged.
            key = f"remedium-exception-{exc.id}-expiring-{exc.expires_on:%Y%m%d}-{name}"
            exists = session.scalar(
                select(ExceptionNotification.id).where(ExceptionNotification.idempotency_key == key)
            )
            if exists is not None:
                continue
            session.add(
                ExceptionNotification(
                    exception_id=exc.id,
                    event=EVENT_EXCEPTION_EXPIRING,
                    connector_name=name,
                    idempotency_key=key,
                    payload=payload,
                    next_attempt_at=as_of,
                    created_at=as_of,
                )
            )
            queued += 1
    session.flush()
    return queued


def deliver_notifications(
    engine: Engine, resolve: ConnectorResolver, *, now: datetime | None = None, limit: int = 200
) -> NotificationStats:
    """Post every due pending notification, each in its own transaction."""
    now = now or utcnow()
    stats = NotificationStats()
    factory = session_factory(engine)
    with factory() as session:
        ids = list(
            session.scalars(
                select(ExceptionNotification.id)
                .where(
                    ExceptionNotification.state == "pending",
                    ExceptionNotification.next_attempt_at <= now,
                )
                .order_by(ExceptionNotification.next_attempt_at, ExceptionNotification.id)
                .limit(limit)
            )
        )
    for notification_id in ids:
        with factory() as session:
            _deliver_one(session, notification_id, resolve, now=now, stats=stats)
            session.commit()
    return stats


def _deliver_one(
    session: Session,
    notification_id: int,
    resolve: ConnectorResolver,
    *,
    now: datetime,
    stats: NotificationStats,
) -> None:
    if not is_postgres(session):
        # SQLite has no row locks: a no-op UPDATE takes the database's write lock first, so a
        # second process waits here and then finds the notification delivered (one delivery).
        session.execute(
            update(ExceptionNotification)
            .where(ExceptionNotification.id == notification_id)
            .values(attempts=ExceptionNotification.attempts)
            .execution_options(synchronize_session=False)
        )
    row = session.scalars(
        select(ExceptionNotification)
        .where(
            ExceptionNotification.id == notification_id, ExceptionNotification.state == "pending"
        )
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return
    connector = resolve(session, row.connector_name)
    send = getattr(connector, "send_event", None)
    if connector is None or send is None:
        # Switched off since it was queued: nobody to announce to any more.
        row.state = "failed"
        row.last_error = f"the webhook connection {row.connector_name!r} is missing or off"
        stats.failed += 1
        return
    row.attempts += 1
    try:
        send(row.event, EXCEPTION_SCHEMA, row.idempotency_key, dict(row.payload))
    except TransientError as error:
        delay = backoff_delay(max(1, row.attempts))
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, type(delay)(seconds=min(error.retry_after, BACKOFF_CAP_SECONDS)))
        row.next_attempt_at = now + delay
        row.last_error = str(error)[:_ERROR_LENGTH]
        stats.retried += 1
        stats.errors.append(row.last_error)
        return
    except PermanentError as error:
        row.state = "failed"
        row.last_error = str(error)[:_ERROR_LENGTH]
        stats.failed += 1
        stats.errors.append(row.last_error)
        return
    row.state = "delivered"
    row.delivered_at = now
    row.last_error = ""
    stats.delivered += 1
