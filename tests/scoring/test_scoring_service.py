"""Vulnerability points, daily snapshots and the sums-to-score helpers."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, Weakness
from remedium.recommendations.models import Recommendation
from remedium.recommendations.service import recompute
from remedium.scoring.models import GroupScoreStat, GroupSecureStat, ScoreSnapshot, SecureSnapshot
from remedium.scoring.service import (
    exposure_score_of,
    refresh_vulnerability_points,
    secure_score_of,
    snapshot_scores,
)
from tests.support.orgs.builder import NOW
from tests.support.orgs.worked_example import CHROME, build_example


def test_new_threat_facts_raise_points_and_name_the_devices_to_recompute(
    session: Session,
) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)
    assert refresh_vulnerability_points(session) == set()  # nothing changed since the factory
    vulnerability = session.get(Vulnerability, "CVE-2026-0002")
    assert vulnerability is not None
    vulnerability.kev_listed = True  # now actively exploited: threat 2.0 instead of 1.5
    devices = refresh_vulnerability_points(session, ["CVE-2026-0002", "CVE-2026-0001"])
    assert devices == {example.n1.id, example.s1.id}
    assert vulnerability.exposure_points == pytest.approx(5.0 * 2.0 * 1.2)
    before = session.get(Device, example.s1.id)
    assert before is not None
    old_score = before.exposure_score
    recompute(session, device_ids=devices, as_of=NOW)
    session.expire_all()
    after = session.get(Device, example.s1.id)
    assert after is not None
    assert after.exposure_points == pytest.approx(16.0 + 12.0 + 3.0)
    assert after.exposure_score > old_score


def test_snapshot_copies_the_sums_and_replaces_the_day(session: Session) -> None:
    build_example(session)
    recompute(session, as_of=NOW)
    day = date(2026, 11, 20)
    assert snapshot_scores(session, day) == 2
    assert snapshot_scores(session, day) == 2  # a rerun replaces, never duplicates
    snapshots = session.scalars(select(ScoreSnapshot).where(ScoreSnapshot.day == day)).all()
    assert len(snapshots) == 2
    assert exposure_score_of(snapshots) == pytest.approx(15.0570, abs=1e-4)
    assert exposure_score_of(session.scalars(select(GroupScoreStat))) == pytest.approx(
        exposure_score_of(snapshots)
    )
    secure = session.scalars(select(SecureSnapshot).where(SecureSnapshot.day == day)).all()
    assert secure_score_of(secure) == pytest.approx(60.0)
    assert secure_score_of(session.scalars(select(GroupSecureStat))) == pytest.approx(60.0)


def test_a_fix_shows_in_the_next_snapshot_only(session: Session) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)
    snapshot_scores(session, date(2026, 11, 20))
    session.execute(update(Weakness).values(fixed_at=NOW))
    recompute(
        session, device_ids=[example.n1.id, example.n2.id, example.s1.id, example.s2.id], as_of=NOW
    )
    snapshot_scores(session, date(2026, 11, 21))
    by_day = {
        day: exposure_score_of(
            session.scalars(select(ScoreSnapshot).where(ScoreSnapshot.day == day))
        )
        for day in (date(2026, 11, 20), date(2026, 11, 21))
    }
    assert by_day[date(2026, 11, 20)] == pytest.approx(15.0570, abs=1e-4)
    assert by_day[date(2026, 11, 21)] == pytest.approx(1.4767, abs=1e-4)
    session.expire_all()
    assert session.get(Recommendation, CHROME) is None
