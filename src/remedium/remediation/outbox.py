"""The transactional ticket outbox: nothing lost, nothing doubled.

``request_remediation`` writes the activity and an :class:`OutboxMessage` in one transaction.
Workers (:func:`deliver_pending`, in any number of processes at once) then deliver each message:

1. **claim** it: one committed ``UPDATE`` sets ``claimed_by``/``claimed_until`` (a lease on the
   wall clock, ``REMEDIUM_OUTBOX_LEASE_SECONDS``) only if it is pending, due and unclaimed or
   its lease has run out; of several processes exactly one succeeds, on SQLite and PostgreSQL;
2. ``find_ticket(idempotency_key)``: a ticket made by an earlier attempt that died after the
   external call but before recording it is found here and adopted, never made twice;
3. otherwise renew the claim (give up if another worker took it over) and ``create_ticket``;
4. record the ticket on the activity, audit, release the claim, commit, in one transaction
   that first checks the claim is still ours.

No database transaction stays open during the calls to the ticketing system. A worker killed
mid-delivery leaves its claim to expire; the next one looks the ticket up before creating it.

A :class:`~remedium.connectors.errors.TransientError` (timeout, refused connection, 5xx, 429)
leaves the message pending with exponential back-off (with jitter, capped); a
:class:`~remedium.connectors.errors.PermanentError` marks it failed, visible on the activity,
until an administrator retries it. Ticket states are read back by ``ticket_sync.py``.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.principal import Principal
from remedium.connectors.base import (
    Priority,
    ProductRef,
    RemediationType,
    TargetDevice,
    TicketConnector,
    TicketRef,
    TicketRequest,
    idempotency_key_for,
)
from remedium.connectors.errors import PermanentError, RateLimitedError, TransientError
from remedium.connectors.models import ConnectorConfig
from remedium.db.base import utcnow
from remedium.db.session import session_factory, transaction
from remedium.inventory.models import Software
from remedium.remediation.models import (
    TICKET_DELIVERED,
    TICKET_FAILED,
    TICKET_PENDING,
    OutboxMessage,
    RemediationActivity,
)
from remedium.remediation.service import ActivityConflictError, audit_group
from remedium.settings import get_settings

BACKOFF_CAP_SECONDS = 3600.0
_ERROR_LENGTH = 500
# Ticket states after which the system will not change its mind: no need to keep asking.
FINAL_TICKET_STATES = ("completed", "rejected")

_TYPES = {
    "Update": RemediationType.UPDATE,
    "Upgrade": RemediationType.UPDATE,
    "Uninstall": RemediationType.UNINSTALL,
    "ConfigurationChange": RemediationType.CONFIGURATION_CHANGE,
    "AttentionRequired": RemediationType.ATTENTION_REQUIRED,
}


class ConnectorResolver(Protocol):
    """Builds the connector called ``name`` (``None`` when it is missing or switched off)."""

    def __call__(self, session: Session, name: str) -> TicketConnector | None: ...


# --- writing the message ------------------------------------------------------------------------


def enqueue_ticket(
    session: Session,
    activity: RemediationActivity,
    connector: ConnectorConfig,
    devices: Sequence[Any],
    software: Software | None,
) -> OutboxMessage:
    """Add the pending ticket of ``activity`` to the caller's transaction (flushes)."""
    key = idempotency_key_for(activity.id)
    payload: dict[str, object] = {
        "activity_id": activity.id,
        "idempotency_key": key,
        "title": activity.title,
        "description": activity.description,
        "remediation_type": _TYPES[activity.remediation_type].value,
        "priority": activity.priority,
        "due_on": activity.due_on.date().isoformat() if activity.due_on else None,
        "requester_email": activity.requester_email or activity.requester_name,
        "notes": activity.notes,
        "product": (
            {
                "vendor": software.display_vendor or software.vendor,
                "name": software.display_name,
                "recommended_version": activity.recommended_version,
            }
            if software is not None
            else None
        ),
        "configuration_id": activity.configuration_id or "",
        "target_devices": [
            {
                "name": row.name,
                "machine_id": row.machine_id,
                "aad_device_id": row.aad_device_id or "",
                "intune_managed": bool(row.is_intune_managed),
                "aad_joined": bool(row.is_aad_joined),
            }
            for row in devices
        ],
        # Absolute: the ticket is read in another system (REMEDIUM_PUBLIC_URL).
        "link": f"{get_settings().base_url}/remediation/activities/{activity.id}",
    }
    message = OutboxMessage(
        activity_id=activity.id,
        connector_name=connector.name,
        idempotency_key=key,
        payload=payload,
        state="pending",
        attempts=0,
        next_attempt_at=activity.created_at,
        created_at=activity.created_at,
    )
    session.add(message)
    session.flush()
    return message


def ticket_request(payload: dict[str, Any]) -> TicketRequest:
    """The connector's request rebuilt from a stored outbox payload."""
    product = payload.get("product")
    due = payload.get("due_on")
    return TicketRequest(
        activity_id=str(payload["activity_id"]),
        idempotency_key=str(payload["idempotency_key"]),
        title=str(payload["title"]),
        description=str(payload.get("description") or ""),
        remediation_type=RemediationType(payload["remediation_type"]),
        priority=Priority(payload["priority"]),
        due_on=date.fromisoformat(due) if due else None,
        requester_email=str(payload.get("requester_email") or ""),
        notes=str(payload.get("notes") or ""),
        product=ProductRef(**product) if product else None,
        configuration_id=str(payload.get("configuration_id") or ""),
        target_devices=tuple(TargetDevice(**d) for d in payload.get("target_devices", [])),
        link=str(payload.get("link") or ""),
    )


# --- delivering ---------------------------------------------------------------------------------


def backoff_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after ``attempts`` failed tries: doubling, capped, with jitter.

    The first delay is ``REMEDIUM_OUTBOX_BACKOFF_SECONDS`` (30 s).

    The jitter (between half and all of the delay) spreads retries of many messages so a
    ticketing system coming back is not hit by all of them at once.
    """
    base = get_settings().outbox_backoff_seconds
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling * (0.5 + 0.5 * (rng or random).random()))


def _short(error: BaseException) -> str:
    # Connectors scrub secrets from their messages; keep ours short as well.
    return f"{type(error).__name__}: {error}"[:_ERROR_LENGTH]


@dataclass(slots=True)
class DeliveryStats:
    """What one pass of the outbox did."""

    delivered: int = 0
    adopted: int = 0  # tickets found by the look-up (made by an attempt that crashed)
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # held or delivered by another process
    lost: int = 0  # our claim ran out before we could record; the new holder records
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The figures for ``remedium jobs run --json``."""
        return {
            "delivered": self.delivered,
            "adopted": self.adopted,
            "retried": self.retried,
            "failed": self.failed,
            "skipped": self.skipped,
            "lost": self.lost,
            "errors": self.errors[:20],
        }


def due_messages(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of pending messages whose next attempt is due and that nobody holds, oldest first."""
    wall = utcnow()
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.state == "pending",
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < wall),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
    )


def new_holder() -> str:
    """A name for one delivery pass: host, process and a random part (never reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().outbox_lease_seconds)


def claim(engine: Engine, message_id: int, holder: str, now: datetime) -> bool:
    """Take ``message_id`` for ``holder`` until the lease ends, if it is due and free.

    One ``UPDATE ... WHERE`` in its own committed transaction: SQLite runs it under its write
    lock, PostgreSQL re-checks the condition on the locked row, so of several processes asking
    at once exactly one gets the message. The lease runs on the wall clock (not on ``now``,
    which ``jobs run --as-of`` may move).
    """
    wall = utcnow()
    with transaction(engine) as session:
        taken = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.state == "pending",
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < wall),
            )
            .values(claimed_by=holder, claimed_until=wall + _lease())
            .execution_options(synchronize_session=False)
        )
        return _rowcount(taken) == 1


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return count


def _still_mine(session: Session, message_id: int, holder: str, *, release: bool) -> bool:
    """Renew (or, with ``release``, give up) the claim; False when another worker has it."""
    values: dict[str, Any] = (
        {"claimed_by": None, "claimed_until": None}
        if release
        else {"claimed_until": utcnow() + _lease()}
    )
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == holder)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def deliver_pending(
    engine: Engine,
    resolve: ConnectorResolver,
    *,
    now: datetime | None = None,
    limit: int = 200,
    after_external_call: Callable[[OutboxMessage], None] | None = None,
) -> DeliveryStats:
    """Deliver every due pending message, each claimed first and recorded in its own transaction.

    Safe to run in any number of processes at once: a message is delivered only by the pass
    that claimed it. ``after_external_call`` runs after the connector answered and before the
    result is recorded; tests use it to simulate a crash at the worst moment.
    """
    now = now or utcnow()
    stats = DeliveryStats()
    factory = session_factory(engine)
    holder = new_holder()
    with factory() as session:
        ids = due_messages(session, now, limit)
    for message_id in ids:
        if not claim(engine, message_id, holder, now):
            stats.skipped += 1  # another process has it, or delivered it meanwhile
            continue
        with factory() as session:
            try:
                _deliver_one(
                    session,
                    message_id,
                    holder,
                    resolve,
                    now=now,
                    stats=stats,
                    hook=after_external_call,
                )
                session.commit()
            except Exception as error:
                session.rollback()
                _record_unexpected(factory, message_id, holder, now=now, error=error, stats=stats)
            except BaseException:
                # Interrupted (Ctrl-C, a test's simulated crash): give the message back so the
                # next pass need not wait for the lease. A SIGKILL skips this: the lease expires.
                session.rollback()
                _release(factory, message_id, holder)
                raise
    return stats


def _release(factory: Any, message_id: int, holder: str) -> None:
    try:
        with factory() as session:
            _still_mine(session, message_id, holder, release=True)
            session.commit()
    except Exception:  # noqa: S110 - best effort while going down; the lease expires anyway
        pass


def _deliver_one(
    session: Session,
    message_id: int,
    holder: str,
    resolve: ConnectorResolver,
    *,
    now: datetime,
    stats: DeliveryStats,
    hook: Callable[[OutboxMessage], None] | None,
) -> None:
    message = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == "pending",
            OutboxMessage.claimed_by == holder,
        )
    ).first()
    if message is None:
        stats.skipped += 1
        return
    activity = session.get(RemediationActivity, message.activity_id)
    if activity is None:
        return
    connector = resolve(session, message.connector_name)
    # No transaction stays open during the calls to the ticketing system.
    session.commit()
    if connector is None:
        if _still_mine(session, message_id, holder, release=True):
            _retry_later(
                message,
                now,
                f"the connection {message.connector_name!r} is missing or switched off",
            )
            stats.retried += 1
        return
    outcome = _call_connector(session, connector, message, activity, holder, now=now, stats=stats)
    if outcome is None:
        return
    ref, adopted = outcome
    if hook is not None:
        hook(message)
    if not _still_mine(session, message_id, holder, release=True):
        # Another worker took the message over after our lease ran out; it looks the ticket up
        # by its idempotency key before creating one, and records it.
        session.rollback()
        stats.lost += 1
        return
    message.attempts += 1
    _delivered(session, message, activity, ref, now, adopted=adopted)
    stats.delivered += 1
    stats.adopted += int(adopted)


def _call_connector(
    session: Session,
    connector: TicketConnector,
    message: OutboxMessage,
    activity: RemediationActivity,
    holder: str,
    *,
    now: datetime,
    stats: DeliveryStats,
) -> tuple[TicketRef, bool] | None:
    """Look the ticket up, else create it: the ticket and whether it was found; ``None`` when
    the attempt ended otherwise (recorded here: retry, failure, or the claim lost)."""
    message_id = message.id
    try:
        ref = connector.find_ticket(message.idempotency_key)
        adopted = ref is not None
        if ref is None:
            # Renew the claim just before the only call that must never happen twice: if the
            # lease ran out meanwhile (a stalled process), another worker owns the message.
            if not _still_mine(session, message_id, holder, release=False):
                session.rollback()
                stats.lost += 1
                return None
            session.commit()
            ref = connector.create_ticket(ticket_request(message.payload))
    except TransientError as error:
        if _still_mine(session, message_id, holder, release=True):
            message.attempts += 1
            retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
            _retry_later(message, now, _short(error), retry_after=retry_after)
            stats.retried += 1
            stats.errors.append(_short(error))
        return None
    except PermanentError as error:
        if _still_mine(session, message_id, holder, release=True):
            message.attempts += 1
            _fail(session, message, activity, _short(error))
            stats.failed += 1
            stats.errors.append(_short(error))
        return None
    return ref, adopted


def _retry_later(
    message: OutboxMessage, now: datetime, error: str, *, retry_after: float | None = None
) -> None:
    delay = backoff_delay(max(1, message.attempts))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=min(retry_after, BACKOFF_CAP_SECONDS)))
    message.next_attempt_at = now + delay
    message.last_error = error[:_ERROR_LENGTH]


def _fail(
    session: Session, message: OutboxMessage, activity: RemediationActivity, error: str
) -> None:
    message.state = "failed"
    message.last_error = error[:_ERROR_LENGTH]
    activity.ticket_delivery = TICKET_FAILED
    session.flush()
    record(
        session,
        actor=None,
        action="remediation.ticket_failed",
        object_type="remediation_activity",
        object_id=activity.id,
        device_group_id=audit_group(session, activity.id),
        after={"connector": message.connector_name, "attempts": message.attempts},
        reason=message.last_error,
    )


def _delivered(
    session: Session,
    message: OutboxMessage,
    activity: RemediationActivity,
    ref: TicketRef,
    now: datetime,
    *,
    adopted: bool,
) -> None:
    message.state = "delivered"
    message.delivered_at = now
    message.last_error = ""
    activity.ticket_delivery = TICKET_DELIVERED
    activity.ticket_external_id = ref.external_id
    activity.ticket_key = ref.key
    activity.ticket_url = ref.url
    activity.ticket_status = activity.ticket_status or "pending"
    activity.ticket_synced_at = now
    session.flush()
    record(
        session,
        actor=None,
        action="remediation.ticket_created",
        object_type="remediation_activity",
        object_id=activity.id,
        device_group_id=audit_group(session, activity.id),
        after={
            "connector": message.connector_name,
            "system": ref.system,
            "ticket": ref.key or ref.external_id,
            "url": ref.url,
            "devices_sent": ref.devices_sent,
            "devices_skipped": ref.devices_skipped,
        },
        reason="found by its idempotency key after an interrupted attempt" if adopted else "",
    )


def _record_unexpected(
    factory: Any,
    message_id: int,
    holder: str,
    *,
    now: datetime,
    error: Exception,
    stats: DeliveryStats,
) -> None:
    """An error no connector should raise: keep the message pending and say what happened."""
    with factory() as session:
        message = session.get(OutboxMessage, message_id)
        if (
            message is not None
            and message.state == "pending"
            and _still_mine(session, message_id, holder, release=True)
        ):
            message.attempts += 1
            _retry_later(message, now, _short(error))
            session.commit()
    stats.retried += 1
    stats.errors.append(_short(error))


def retry_ticket(
    session: Session, principal: Principal, activity: RemediationActivity, *, now: datetime
) -> OutboxMessage:
    """Put a failed ticket back in the queue (an administrator's action); audited."""
    message = session.scalars(
        select(OutboxMessage).where(OutboxMessage.activity_id == activity.id)
    ).first()
    if message is None or message.state != "failed":
        raise ActivityConflictError("this activity has no failed ticket to retry")
    message.state = "pending"
    message.next_attempt_at = now
    activity.ticket_delivery = TICKET_PENDING
    session.flush()
    record(
        session,
        actor=principal,
        action="remediation.ticket_retry",
        object_type="remediation_activity",
        object_id=activity.id,
        device_group_id=audit_group(session, activity.id),
        before={"last_error": message.last_error, "attempts": message.attempts},
    )
    return message
