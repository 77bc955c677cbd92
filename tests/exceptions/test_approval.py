"""Optional approval: pending until a second person with the exceptions right decides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent
from remedium.exceptions import filing, lifecycle, service
from remedium.exceptions.models import RemediationException
from remedium.recommendations.coverage import effective_coverage
from remedium.settings import get_settings
from tests.support.orgs.builder import NOW
from tests.support.orgs.exceptions import ADMIN, ANALYST, CHROME, REVIEWER, VIEWER, Org, build


@pytest.fixture(autouse=True)
def _approval_required(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def org(session: Session) -> Org:
    return build(session)


@pytest.fixture
def pending(session: Session, org: Org) -> RemediationException:
    return filing.file_exception(
        session,
        ANALYST,
        recommendation_id=CHROME,
        justification="PlannedRemediation",
        device_group_ids=[org.alpha.id],
        duration_days=30,
        as_of=NOW,
    )


def test_a_pending_exception_has_no_effect_and_holds_its_groups(
    session: Session, org: Org, pending: RemediationException
) -> None:
    assert pending.status == "PendingApproval"
    assert {g.status for g in pending.groups} == {"PendingApproval"}
    assert effective_coverage(session, NOW + timedelta(hours=1)) == []
    with pytest.raises(service.ExceptionConflict):
        filing.file_exception(
            session,
            REVIEWER,
            recommendation_id=CHROME,
            justification="AcceptRisk",
            device_group_ids=[org.alpha.id],
            duration_days=30,
        )


def test_the_requester_cannot_approve_their_own(
    session: Session, pending: RemediationException
) -> None:
    with pytest.raises(service.ExceptionNotAllowed, match="your own"):
        filing.approve_exception(session, ANALYST, pending.id)
    with pytest.raises(service.ExceptionNotAllowed):
        filing.approve_exception(session, VIEWER, pending.id)


def test_another_user_approves_and_it_takes_effect(
    session: Session, org: Org, pending: RemediationException
) -> None:
    at = NOW + timedelta(hours=2)
    filing.approve_exception(
        session, REVIEWER, pending.id, comment="ok until the rollout", as_of=at
    )
    assert pending.status == "InEffect"
    assert pending.decided_by == "rex"
    assert pending.decision_comment == "ok until the rollout"
    assert [c.exception_id for c in effective_coverage(session, at)] == [pending.id]
    with pytest.raises(service.ExceptionConflict):
        filing.approve_exception(session, ADMIN, pending.id)
    kinds = [e.kind for e in service.history(session, ADMIN.scope, pending)]
    assert kinds == ["file", "approve", "in_effect"]
    approve = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "exception.approve")
    ).one()
    assert approve.actor_name == "rex"
    assert approve.reason == "ok until the rollout"
    assert approve.device_group_id == org.alpha.id


def test_a_scoped_reviewer_cannot_approve_other_groups(
    session: Session, org: Org, pending: RemediationException
) -> None:
    with pytest.raises(service.ExceptionNotFound):
        filing.approve_exception(session, org.scoped(org.beta, name="bob"), pending.id)


def test_rejection_ends_it_and_frees_the_group(
    session: Session, org: Org, pending: RemediationException
) -> None:
    filing.reject_exception(session, REVIEWER, pending.id, comment="patch instead")
    assert pending.status == "Rejected"
    assert pending.ended_at is not None
    assert effective_coverage(session) == []
    again = filing.file_exception(
        session,
        ANALYST,
        recommendation_id=CHROME,
        justification="AcceptRisk",
        device_group_ids=[org.alpha.id],
        duration_days=30,
    )
    assert again.status == "PendingApproval"


def test_a_global_exception_needs_an_administrator_to_approve(
    session: Session, org: Org, pending: RemediationException
) -> None:
    other_admin = ADMIN.__class__(user_id=99, name="root", rights=ADMIN.rights)
    glob = filing.file_exception(
        session,
        ADMIN,
        recommendation_id=CHROME,
        justification="CompensatingControl",
        is_global=True,
        duration_days=60,
        as_of=NOW,
    )
    filing.approve_exception(session, REVIEWER, pending.id, as_of=NOW + timedelta(hours=1))
    assert pending.status == "InEffect"
    with pytest.raises(service.ExceptionNotAllowed, match="administrators"):
        filing.approve_exception(session, REVIEWER, glob.id)
    filing.approve_exception(session, other_admin, glob.id, as_of=NOW + timedelta(hours=2))
    assert glob.status == "InEffect"
    # Approving the global exception holds the group one it now covers.
    assert pending.status == "Suspended"


def test_a_pending_exception_past_its_end_date_expires(
    session: Session, pending: RemediationException
) -> None:
    assert lifecycle.run_exception_jobs(session, NOW + timedelta(days=31)).expired == [pending.id]
    assert pending.status == "Expired"
