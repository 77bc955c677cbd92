"""Exception lifecycle: filing, scope, suspension under a global exception, cancel, expiry."""

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
from tests.support.orgs.exceptions import ADMIN, ANALYST, CHROME, CVE, LATER, VIEWER, Org, build


@pytest.fixture
def org(session: Session) -> Org:
    return build(session)


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _group_statuses(exc: RemediationException) -> dict[int, str]:
    return {g.device_group_id: g.status for g in exc.groups}


def _file(session: Session, org: Org, *groups: int, **kwargs: object) -> RemediationException:
    options: dict[str, object] = {
        "recommendation_id": CHROME,
        "justification": "AcceptRisk",
        "duration_days": 30,
        "device_group_ids": groups,
        "as_of": NOW,
    }
    principal = kwargs.pop("principal", ANALYST)
    options.update(kwargs)
    return filing.file_exception(session, principal, **options)  # type: ignore[arg-type]


def test_filed_group_exception_is_in_effect_then_expires(session: Session, org: Org) -> None:
    exc = _file(session, org, org.alpha.id, context="Kiosk image frozen until Q1")
    assert exc.status == "InEffect"
    assert exc.impact == "NoImpact"  # the default for an accepted risk
    assert exc.expires_on == NOW + timedelta(days=30)
    assert exc.snapshot["vulnerability_ids"] == [CVE]
    coverage = effective_coverage(session, NOW + timedelta(days=1))
    assert [(c.recommendation_id, c.device_group_ids, c.impact) for c in coverage] == [
        (CHROME, frozenset({org.alpha.id}), "NoImpact")
    ]
    # Nothing happens the day before the end date...
    assert lifecycle.run_exception_jobs(session, NOW + timedelta(days=29)).expired == []
    # ...and it expires once the end date has passed.
    result = lifecycle.run_exception_jobs(session, NOW + timedelta(days=30, seconds=1))
    assert result.expired == [exc.id]
    assert exc.status == "Expired"
    assert _group_statuses(exc) == {org.alpha.id: "Expired"}
    assert exc.ended_at == exc.expires_on
    assert effective_coverage(session, NOW + timedelta(days=31)) == []
    kinds = [e.kind for e in service.history(session, ANALYST.scope, exc)]
    assert kinds == ["file", "in_effect", "expiring_soon", "expire"]
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == str(exc.id))
    ).all()
    assert {"exception.file", "exception.in_effect", "exception.expire"} <= set(actions)


def test_coverage_stops_at_the_end_date_even_before_the_job(session: Session, org: Org) -> None:
    _file(session, org, org.alpha.id)
    assert effective_coverage(session, NOW + timedelta(days=31)) == []


def test_compensating_control_defaults_to_mitigation_like(session: Session, org: Org) -> None:
    exc = _file(session, org, org.alpha.id, justification="CompensatingControl")
    assert exc.impact == "MitigationLike"
    hybrid = _file(session, org, org.beta.id, justification="BusinessNeed", impact="Hybrid")
    assert hybrid.impact == "Hybrid"


def test_end_date_and_duration_are_checked(session: Session, org: Org) -> None:
    with pytest.raises(service.ExceptionInvalid, match="future"):
        _file(session, org, org.alpha.id, duration_days=None, expires_on=NOW - timedelta(days=1))
    with pytest.raises(service.ExceptionInvalid, match="30, 60, 90, 180"):
        _file(session, org, org.alpha.id, duration_days=45)
    exc = _file(session, org, org.alpha.id, duration_days=None, expires_on=NOW + timedelta(days=12))
    assert exc.expires_on == NOW + timedelta(days=12)


def test_groups_already_under_exception_are_refused(session: Session, org: Org) -> None:
    _file(session, org, org.alpha.id)
    with pytest.raises(service.ExceptionConflict, match="Alpha"):
        _file(session, org, org.alpha.id, org.beta.id)
    # "All current device groups" leaves the excepted one out.
    every = _file(session, org, all_groups=True)
    assert set(_group_statuses(every)) == {org.beta.id, org.gamma.id}
    # A CVE exception is a different target: the same group may have one.
    cve = _file(session, org, org.alpha.id, recommendation_id=None, vulnerability_id=CVE)
    assert cve.exception_type == "cve"
    assert cve.status == "InEffect"


def test_rights_and_scope_when_filing(session: Session, org: Org) -> None:
    with pytest.raises(service.ExceptionNotAllowed):
        _file(session, org, org.alpha.id, principal=VIEWER)
    with pytest.raises(service.ExceptionNotAllowed, match="administrators"):
        _file(session, org, is_global=True)
    scoped = org.scoped(org.alpha)
    with pytest.raises(service.ExceptionNotFound, match="device group"):
        _file(session, org, org.beta.id, principal=scoped)
    with pytest.raises(service.ExceptionNotFound):
        _file(session, org, org.alpha.id, recommendation_id="va-_-nobody-_-nothing")
    mine = _file(session, org, principal=scoped, all_groups=True)
    assert set(_group_statuses(mine)) == {org.alpha.id}


def test_global_exception_suspends_groups_and_releases_them_on_cancel(
    session: Session, org: Org
) -> None:
    group_exc = _file(session, org, org.alpha.id, duration_days=90)
    global_exc = _file(session, org, principal=ADMIN, is_global=True, as_of=LATER)
    assert global_exc.status == "InEffect"
    assert group_exc.status == "Suspended"
    assert _group_statuses(group_exc) == {org.alpha.id: "Suspended"}
    # A group exception filed under the global one starts suspended.
    later_exc = _file(session, org, org.beta.id, as_of=LATER)
    assert later_exc.status == "Suspended"
    coverage = effective_coverage(session, LATER)
    assert [(c.exception_id, c.device_group_ids) for c in coverage] == [(global_exc.id, None)]
    # A second global one is refused; only administrators may cancel it.
    with pytest.raises(service.ExceptionConflict):
        _file(session, org, principal=ADMIN, is_global=True)
    with pytest.raises(service.ExceptionNotAllowed):
        lifecycle.cancel_exception(session, ANALYST, global_exc.id, as_of=LATER)
    lifecycle.cancel_exception(session, ADMIN, global_exc.id, as_of=NOW + timedelta(days=2))
    assert global_exc.status == "Canceled"
    assert group_exc.status == "InEffect"
    assert later_exc.status == "InEffect"
    covered = {c.exception_id for c in effective_coverage(session, NOW + timedelta(days=3))}
    assert covered == {group_exc.id, later_exc.id}
    kinds = [e.kind for e in service.history(session, ANALYST.scope, group_exc)]
    assert kinds == ["file", "in_effect", "suspend", "resume"]


def test_group_exception_that_ended_while_held_expires_instead(session: Session, org: Org) -> None:
    group_exc = _file(session, org, org.alpha.id, duration_days=30)
    global_exc = _file(session, org, principal=ADMIN, is_global=True, duration_days=60)
    result = lifecycle.run_exception_jobs(session, NOW + timedelta(days=31))
    # The group exception ran out while suspended: it expires and does not come back.
    assert result.expired == [group_exc.id]
    assert group_exc.status == "Expired"
    assert global_exc.status == "InEffect"


def test_global_expiry_resumes_groups_that_are_still_valid(session: Session, org: Org) -> None:
    group_exc = _file(session, org, org.alpha.id, duration_days=90)
    global_exc = _file(session, org, principal=ADMIN, is_global=True, duration_days=30)
    result = lifecycle.run_exception_jobs(session, NOW + timedelta(days=31))
    assert result.expired == [global_exc.id]
    assert result.resumed == [group_exc.id]
    assert group_exc.status == "InEffect"


def test_cancel_one_group_or_all(session: Session, org: Org) -> None:
    exc = _file(session, org, org.alpha.id, org.beta.id, org.gamma.id)
    lifecycle.cancel_exception(session, ANALYST, exc.id, device_group_id=org.beta.id, as_of=LATER)
    assert _group_statuses(exc) == {
        org.alpha.id: "InEffect",
        org.beta.id: "Canceled",
        org.gamma.id: "InEffect",
    }
    assert exc.status == "InEffect"
    with pytest.raises(service.ExceptionConflict):
        lifecycle.cancel_exception(session, ANALYST, exc.id, device_group_id=org.beta.id)
    # A user limited to Alpha cancels "all" of what they manage: Alpha only.
    scoped = org.scoped(org.alpha)
    lifecycle.cancel_exception(session, scoped, exc.id, as_of=LATER)
    assert _group_statuses(exc)[org.gamma.id] == "InEffect"
    assert _group_statuses(exc)[org.alpha.id] == "Canceled"
    with pytest.raises(service.ExceptionNotFound):
        lifecycle.cancel_exception(session, scoped, exc.id, device_group_id=org.gamma.id)
    lifecycle.cancel_exception(session, ANALYST, exc.id, reason="patched after all", as_of=LATER)
    assert exc.status == "Canceled"
    assert exc.ended_at == LATER
    cancel = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "exception.cancel", AuditEvent.device_group_id == org.gamma.id
        )
    ).one()
    assert cancel.reason == "patched after all"
    assert cancel.actor_name == "ana"


def test_scoped_users_do_not_see_or_cancel_other_groups(session: Session, org: Org) -> None:
    beta_only = _file(session, org, org.beta.id)
    both = _file(
        session, org, org.alpha.id, org.gamma.id, recommendation_id=None, vulnerability_id=CVE
    )
    scoped = org.scoped(org.alpha)
    assert service.get_exception(session, scoped.scope, beta_only.id) is None
    with pytest.raises(service.ExceptionNotFound):
        lifecycle.cancel_exception(session, scoped, beta_only.id)
    rows, total = service.list_exceptions(session, scoped.scope)
    assert total == 1
    assert [r.id for r in rows] == [both.id]
    # Their view of the history leaves other groups' events out.
    groups = {e.device_group_id for e in service.history(session, scoped.scope, both)}
    assert groups == {org.alpha.id}


def test_list_filters(session: Session, org: Org) -> None:
    a = _file(session, org, org.alpha.id, justification="FalsePositive")
    b = _file(session, org, org.beta.id, recommendation_id=None, vulnerability_id=CVE)
    lifecycle.cancel_exception(session, ANALYST, b.id, as_of=LATER)
    scope = ADMIN.scope

    def ids(**f: str) -> list[int]:
        return [
            r.id for r in service.list_exceptions(session, scope, service.ExceptionFilter(**f))[0]
        ]

    assert ids(justification="FalsePositive") == [a.id]
    assert ids(exception_type="cve") == [b.id]
    assert ids(status="Canceled") == [b.id]
    assert ids(status="InEffect") == [a.id]
    rows, total = service.list_exceptions(session, scope, offset=1, limit=1)
    assert total == 2
    assert len(rows) == 1


def test_expiring_soon_is_flagged_once(session: Session, org: Org) -> None:
    soon = _file(session, org, org.alpha.id, duration_days=30)
    _file(session, org, org.beta.id, duration_days=90)
    at = NOW + timedelta(days=21)
    assert [e.id for e in service.expiring_soon(session, ADMIN.scope, as_of=at)] == [soon.id]
    assert lifecycle.run_exception_jobs(session, at).expiring_soon == [soon.id]
    assert lifecycle.run_exception_jobs(session, at + timedelta(days=1)).expiring_soon == []
    assert service.expiring_soon(session, ADMIN.scope, as_of=NOW) == []
