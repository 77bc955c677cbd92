"""The ticket outbox against the fake Jira: faults never lose or double a ticket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent
from remedium.connectors.base import TicketConnector, idempotency_key_for
from remedium.connectors.jira import JiraConfig, JiraConnector
from remedium.db.session import transaction
from remedium.remediation.models import OutboxMessage, RemediationActivity
from remedium.remediation.outbox import deliver_pending
from remedium.remediation.ticket_sync import sync_ticket_states
from tests.support.fake_ticketing import FakeJira
from tests.support.orgs.remediation import RECOMMENDATION, build_org

TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


class SimulatedCrashError(BaseException):
    """The worker dies (like SIGKILL) after the external call, before its commit."""


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def resolve(jira: FakeJira) -> Iterator[Any]:
    config = JiraConfig(
        base_url=jira.url,
        project_key="SEC",
        email="remedium-bot@example.com",
        api_token="fake-jira-api-token+value",  # type: ignore[arg-type]
    )
    with httpx.Client(timeout=1.0) as client:
        connector = JiraConnector(config, client)

        def _resolve(_session: Session, name: str) -> TicketConnector | None:
            return connector if name == "tickets" else None

        yield _resolve


def _request(admin_client: Any) -> str:
    reply = admin_client.post(
        "/api/v1/remediation-activities",
        json={
            "recommendation_id": RECOMMENDATION,
            "remediation_type": "Update",
            "priority": "High",
            "due_on": TOMORROW,
            "connector": "tickets",
        },
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _later(minutes: int = 0) -> datetime:
    # Past any back-off (capped at an hour).
    return datetime.now(UTC) + timedelta(hours=2, minutes=minutes)


def _state(engine: Engine) -> tuple[str, int, str]:
    with transaction(engine) as session:
        message = session.scalars(select(OutboxMessage)).one()
        return message.state, message.attempts, message.last_error


def test_delivers_once_and_reads_state_back(
    engine: Engine, admin_client: Any, jira: FakeJira, resolve: Any
) -> None:
    build_org(engine)
    activity_id = _request(admin_client)
    stats = deliver_pending(engine, resolve)
    assert stats.delivered == 1
    # A second pass finds nothing to do.
    assert deliver_pending(engine, resolve, now=_later()).delivered == 0
    assert jira.count_for(idempotency_key_for(activity_id)) == 1
    shown = admin_client.get(f"/api/v1/remediation-activities/{activity_id}").json()["ticket"]
    assert shown["delivery"] == "delivered"
    assert shown["key"].startswith("SEC-")
    assert shown["url"]
    with transaction(engine) as session:
        figures = sync_ticket_states(session, resolve)
    assert figures["checked"] == 1
    shown = admin_client.get(f"/api/v1/remediation-activities/{activity_id}").json()["ticket"]
    assert shown["state"]  # Jira's own word, e.g. "To Do"
    assert shown["status"] == "pending"


@pytest.mark.parametrize("fault", ["500", "timeout", "refused", "drop"])
def test_transient_faults_back_off_then_deliver_exactly_once(
    engine: Engine, admin_client: Any, jira: FakeJira, resolve: Any, fault: str
) -> None:
    build_org(engine)
    activity_id = _request(admin_client)
    if fault == "500":
        jira.fail(times=3, status=500)
    elif fault == "timeout":
        # The remote makes the ticket but answers too late: the look-up must find it.
        jira.delay(2.0, times=1, commit=True, method="POST")
    elif fault == "drop":
        jira.commit_then_fail(times=1, status=None)
    else:
        jira.stop()
    stats = deliver_pending(engine, resolve)
    assert stats.delivered == 0
    assert stats.retried == 1
    state, attempts, error = _state(engine)
    assert (state, attempts) == ("pending", 1)
    assert error
    shown = admin_client.get(f"/api/v1/remediation-activities/{activity_id}").json()["ticket"]
    assert shown["delivery"] == "pending"  # "ticket pending" stays visible
    # Not due yet: the back-off holds the message.
    assert deliver_pending(engine, resolve).delivered == 0
    if fault == "refused":
        jira.start()
    for minutes in range(5):
        deliver_pending(engine, resolve, now=_later(minutes * 70))
    assert _state(engine)[0] == "delivered"
    assert jira.count_for(idempotency_key_for(activity_id)) == 1


def test_crash_after_the_external_call_never_doubles_the_ticket(
    engine: Engine, admin_client: Any, jira: FakeJira, resolve: Any
) -> None:
    build_org(engine)
    activity_id = _request(admin_client)

    def crash(_message: OutboxMessage) -> None:
        raise SimulatedCrashError

    with pytest.raises(SimulatedCrashError):
        deliver_pending(engine, resolve, after_external_call=crash)
    # The ticket exists remotely; the database does not know it yet.
    assert jira.count_for(idempotency_key_for(activity_id)) == 1
    assert _state(engine)[0] == "pending"
    stats = deliver_pending(engine, resolve)
    assert (stats.delivered, stats.adopted) == (1, 1)
    assert jira.count_for(idempotency_key_for(activity_id)) == 1
    with transaction(engine) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "remediation.ticket_created")
        ).all()
        assert len(events) == 1
        assert "idempotency key" in events[0].reason


def test_permanent_failure_is_visible_and_retryable(
    engine: Engine, admin_client: Any, jira: FakeJira, resolve: Any
) -> None:
    build_org(engine)
    activity_id = _request(admin_client)
    jira.fail(times=1, status=400, method="POST")
    stats = deliver_pending(engine, resolve)
    assert stats.failed == 1
    assert _state(engine)[0] == "failed"
    shown = admin_client.get(f"/api/v1/remediation-activities/{activity_id}").json()["ticket"]
    assert shown["delivery"] == "failed"
    assert shown["last_error"]
    assert "fake-jira-api-token" not in shown["last_error"]
    # Failed messages are not retried by themselves...
    assert deliver_pending(engine, resolve, now=_later()).delivered == 0
    # ...until an administrator asks.
    reply = admin_client.post(f"/api/v1/remediation-activities/{activity_id}/retry-ticket")
    assert reply.status_code == 200, reply.text
    assert deliver_pending(engine, resolve, now=_later()).delivered == 1
    assert jira.count_for(idempotency_key_for(activity_id)) == 1
    with transaction(engine) as session:
        activity = session.get(RemediationActivity, activity_id)
        assert activity is not None
        assert activity.ticket_delivery == "delivered"
