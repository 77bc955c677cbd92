"""Exceptions' effect on the scores: docs/scoring.md "After exceptions", on the worked example.

North: n1 (Normal, internet facing, P 35), n2 (Low, P 16). South: s1 (High, P 28), s2 inactive.
Chrome (CVE-2026-0001 16 points on all, CVE-2026-0002 9 points on n1 and s1), check scid-1
(3 points) failing on n1 and s1. Organisation exposure 15.0570, Secure Score 60.0.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.db.session import transaction
from remedium.defender import service as defender
from remedium.exceptions import filing, lifecycle
from remedium.exceptions.preview import preview_exception
from remedium.recommendations.queries import get_recommendation, list_recommendations
from remedium.recommendations.service import recompute
from remedium.scoring import engine
from remedium.scoring.queries import exposure_score, secure_score
from tests.support.orgs.builder import NOW
from tests.support.orgs.exceptions import ADMIN, ANALYST
from tests.support.orgs.worked_example import CHROME, SCID1, Example, build_example

ALL = Scope()
f = engine.exposure_score
# Device scores of the worked example, as they are.
N1, N2, S1 = f(35.0), f(16.0), f(28.0)


def _org(n1: float, n2: float, s1: float) -> float:
    """The organisation's score from the three active devices' scores (weights 1, 0.75, 0.3)."""
    return (n1 + 0.75 * n2 + 0.3 * s1) / 2.05


@pytest.fixture
def ex(session: Session) -> Example:
    example = build_example(session)
    recompute(session, as_of=NOW)
    return example


def _file(session: Session, **kwargs: object) -> int:
    exc = filing.file_exception(session, ADMIN, duration_days=30, as_of=NOW, **kwargs)  # type: ignore[arg-type]
    return exc.id


def test_without_exceptions_both_figures_agree(session: Session, ex: Example) -> None:
    exposure = exposure_score(session, ALL)
    assert exposure.score == pytest.approx(15.06, abs=0.01)
    assert exposure.score_after_exceptions == exposure.score
    assert secure_score(session, ALL).score_after_exceptions == 60.0


def test_mitigation_like_global_removes_the_recommendation_as_if_fixed(
    session: Session, ex: Example
) -> None:
    _file(session, recommendation_id=CHROME, justification="CompensatingControl", is_global=True)
    exposure = exposure_score(session, ALL)
    assert exposure.score == pytest.approx(round(_org(N1, N2, S1), 2))
    # docs/scoring.md: fixing Chrome everywhere leaves 1.4767.
    assert exposure.score_after_exceptions == pytest.approx(1.48, abs=0.01)
    assert exposure.score_after_exceptions == pytest.approx(round(_org(f(3.75), 0.0, f(3.0)), 2))
    assert secure_score(session, ALL).score_after_exceptions == 60.0
    rec = get_recommendation(session, ALL, CHROME)
    assert rec is not None
    assert rec.status == "Full exception"
    assert rec.exposed_devices == 3
    assert rec.exposed_devices_after == 0
    assert rec.exposure_impact_after == 0.0
    listed = [r.id for r in list_recommendations(session, ALL).items]
    assert CHROME not in listed
    assert SCID1 in listed
    shown = list_recommendations(session, ALL, status="exceptions").items
    assert [r.id for r in shown] == [CHROME]
    # Defender's API marks it.
    item = defender.get_recommendation(session, ALL, CHROME)
    assert item is not None
    assert item["status"] == "Exception"
    other = defender.get_recommendation(session, ALL, SCID1)
    assert other is not None
    assert other["status"] == "Active"


def test_no_impact_leaves_the_scores_and_hides_the_recommendation(
    session: Session, ex: Example
) -> None:
    before = exposure_score(session, ALL)
    _file(session, recommendation_id=CHROME, justification="AcceptRisk", is_global=True)
    after = exposure_score(session, ALL)
    assert after.score == before.score
    assert after.score_after_exceptions == before.score
    rec = get_recommendation(session, ALL, CHROME)
    assert rec is not None
    assert rec.status == "Full exception"
    assert rec.exposed_devices_after == 0
    assert rec.exposure_impact_after == 0.0
    assert CHROME not in [r.id for r in list_recommendations(session, ALL).items]
    assert CHROME in [r.id for r in list_recommendations(session, ALL, status="full").items]


def test_hybrid_group_exception_on_a_check_counts_it_passed_in_that_group(
    session: Session, ex: Example
) -> None:
    _file(
        session,
        recommendation_id=SCID1,
        justification="CompensatingControl",
        impact="Hybrid",
        device_group_ids=[ex.north.id],
    )
    secure = secure_score(session, ALL)
    # Side by side: as it is (60) and with scid-1 passing on n1 (weight 6 more of 30).
    assert secure.score == 60.0
    assert secure.score_after_exceptions == 80.0
    exposure = exposure_score(session, ALL)
    n1_after = f(35.0 - 1.25 * 3.0)
    assert exposure.score == pytest.approx(round(_org(N1, N2, S1), 2))
    assert exposure.score_after_exceptions == pytest.approx(round(_org(n1_after, N2, S1), 2))
    assert exposure.score_after_exceptions == pytest.approx(14.24)  # docs/scoring.md
    rec = get_recommendation(session, ALL, SCID1)
    assert rec is not None
    assert rec.status == "Partial exception"
    assert rec.exception_impacts == ["Hybrid"]
    assert rec.exposed_devices == 2
    assert rec.exposed_devices_after == 1
    # Impact after exceptions: over s1 alone, on the after-exceptions sums.
    assert rec.exposure_impact_after == pytest.approx(round(0.3 * (S1 - f(25.0)) / 2.05, 2))
    assert rec.config_score_impact_after == pytest.approx(20.0)
    # Still in the default list (only partly excepted).
    assert SCID1 in [r.id for r in list_recommendations(session, ALL).items]
    # For a scope of North alone, the check is fully excepted.
    north = Scope(device_group_ids=frozenset({ex.north.id}))
    scoped = get_recommendation(session, north, SCID1)
    assert scoped is not None
    assert scoped.status == "Full exception"
    south = Scope(device_group_ids=frozenset({ex.south.id}))
    scoped = get_recommendation(session, south, SCID1)
    assert scoped is not None
    assert scoped.status == "Active"
    assert secure_score(session, south).score_after_exceptions == secure_score(session, south).score


def test_cve_exception_removes_that_cve_on_every_device(session: Session, ex: Example) -> None:
    _file(
        session,
        vulnerability_id="CVE-2026-0001",
        justification="CompensatingControl",
        is_global=True,
    )
    exposure = exposure_score(session, ALL)
    # 16 raw points off every device: n1 1.25 x 12 = 15, n2 0, s1 12.
    assert exposure.score_after_exceptions == pytest.approx(round(_org(f(15.0), 0.0, f(12.0)), 2))
    assert exposure.score_after_exceptions == pytest.approx(5.52)  # docs/scoring.md
    rec = get_recommendation(session, ALL, CHROME)
    assert rec is not None
    # A CVE exception does not except the recommendation; n2 only had the excepted CVE.
    assert rec.status == "Active"
    assert rec.exposed_devices_after == 2


def test_group_scope_filters_the_after_figure(session: Session, ex: Example) -> None:
    _file(
        session,
        recommendation_id=CHROME,
        justification="CompensatingControl",
        device_group_ids=[ex.south.id],
    )
    north = Scope(device_group_ids=frozenset({ex.north.id}))
    south = Scope(device_group_ids=frozenset({ex.south.id}))
    assert (
        exposure_score(session, north).score_after_exceptions
        == exposure_score(session, north).score
    )
    # South alone: s1 is its only active device (High value weighs 1/10 of 1 device).
    assert exposure_score(session, south).score_after_exceptions == pytest.approx(round(f(3.0), 2))
    rec = get_recommendation(session, ALL, CHROME)
    assert rec is not None
    assert rec.status == "Partial exception"
    assert rec.exposed_devices_after == 2


def test_cancel_and_expiry_bring_the_scores_back(session: Session, ex: Example) -> None:
    before = exposure_score(session, ALL).score
    exc_id = _file(
        session, recommendation_id=CHROME, justification="CompensatingControl", is_global=True
    )
    assert exposure_score(session, ALL).score_after_exceptions < before
    lifecycle.cancel_exception(session, ADMIN, exc_id, as_of=NOW + timedelta(hours=1))
    assert exposure_score(session, ALL).score_after_exceptions == before
    rec = get_recommendation(session, ALL, CHROME)
    assert rec is not None
    assert rec.status == "Active"
    # An exception that expires: the job puts the scores back.
    filing.file_exception(
        session,
        ANALYST,
        recommendation_id=CHROME,
        justification="CompensatingControl",
        device_group_ids=[ex.north.id],
        expires_on=NOW + timedelta(days=2),
        as_of=NOW + timedelta(hours=2),
    )
    assert exposure_score(session, ALL).score_after_exceptions < before
    # (Within the 30 days of activity: the devices, last seen at NOW, still count.)
    lifecycle.run_exception_jobs(session, NOW + timedelta(days=3))
    assert exposure_score(session, ALL).score_after_exceptions == before


def test_preview_matches_what_filing_then_shows(session: Session, ex: Example) -> None:
    preview = preview_exception(
        session, ALL, recommendation_id=SCID1, impact="MitigationLike", is_global=True, as_of=NOW
    )
    assert preview.exposure_score == preview.exposure_score_after_exceptions
    assert preview.secure_score_with_exception == 100.0
    unchanged = preview_exception(
        session, ALL, recommendation_id=SCID1, impact="NoImpact", is_global=True, as_of=NOW
    )
    assert unchanged.exposure_score_with_exception == unchanged.exposure_score
    _file(session, recommendation_id=SCID1, justification="CompensatingControl", is_global=True)
    assert exposure_score(session, ALL).score_after_exceptions == pytest.approx(
        preview.exposure_score_with_exception
    )
    assert secure_score(session, ALL).score_after_exceptions == 100.0


def test_preview_and_scores_through_the_api(engine: Any, admin_client: Any) -> None:
    with transaction(engine) as session:
        build_example(session)
        recompute(session)  # as of now: the API files and reads at the real time
    body = {"recommendation_id": CHROME, "scope": "global", "justification": "CompensatingControl"}
    answer = admin_client.post("/api/v1/exceptions/preview", json=body)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["exposure_score"] == pytest.approx(15.06, abs=0.01)
    assert preview["exposure_score_with_exception"] == pytest.approx(1.48, abs=0.01)
    # Nothing was written: the scores are as they were.
    scores = admin_client.get("/api/v1/scores").json()
    assert scores["exposure"]["score_after_exceptions"] == scores["exposure"]["score"]
    filed = admin_client.post(
        "/api/v1/exceptions",
        json={**body, "duration_days": 30},
    )
    assert filed.status_code == 201, filed.text
    scores = admin_client.get("/api/v1/scores").json()
    assert scores["exposure"]["score_after_exceptions"] == preview["exposure_score_with_exception"]
    listed = admin_client.get("/api/v1/recommendations").json()
    assert CHROME not in [r["id"] for r in listed["items"]]
    shown = admin_client.get("/api/v1/recommendations", params={"status": "exceptions"}).json()
    (rec,) = shown["items"]
    assert rec["status"] == "Full exception"
    assert rec["exposed_devices_after"] == 0
    defender_view = admin_client.get(f"/api/recommendations/{CHROME}")
    assert defender_view.status_code == 200, defender_view.text
    assert defender_view.json()["status"] == "Exception"
