"""The recompute: device scores, recommendations and the per-group sums they decompose into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from remedium.intel.models import SecurityConfiguration, Vulnerability
from remedium.inventory.models import ConfigurationAssessment, Device, Software, Weakness
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)
from remedium.recommendations.service import recompute
from remedium.scoring import engine
from remedium.scoring.models import GroupScoreStat, GroupSecureStat
from tests.support.orgs.builder import (
    NOW,
    add_weakness,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.orgs.random_org import build_random_org
from tests.support.orgs.worked_example import CHROME, SCID1, build_example


def _org_sums(session: Session, groups: list[int] | None = None) -> engine.ExposureSums:
    query = select(GroupScoreStat)
    if groups is not None:
        query = query.where(GroupScoreStat.device_group_id.in_(groups))
    sums = engine.ExposureSums()
    for row in session.scalars(query):
        sums += engine.ExposureSums(
            row.active_devices,
            row.high_value_devices,
            row.weight_low_normal,
            row.exposure_weighted,
            row.exposure_high,
        )
    return sums


def test_worked_example_device_scores(session: Session) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)
    session.expire_all()
    scores = {d.name: (d.exposure_points, d.exposure_score, d.exposure_level) for d in
              session.scalars(select(Device))}  # fmt: skip
    assert scores["n1"][0] == pytest.approx(35.0)  # 1.25 x (16 + 9 + 3)
    assert scores["n1"][1] == pytest.approx(18.9189, abs=1e-4)
    assert scores["n2"][1] == pytest.approx(9.6386, abs=1e-4)
    assert scores["s1"][1] == pytest.approx(15.7303, abs=1e-4)
    # The inactive device keeps its own score but counts in no sum.
    assert scores["s2"][1] == pytest.approx(9.6386, abs=1e-4)
    assert {level for _, _, level in scores.values()} == {"Low"}
    south = session.get(GroupScoreStat, example.south.id)
    assert south is not None
    assert south.active_devices == 1
    assert south.high_value_devices == 1
    assert _org_sums(session).score() == pytest.approx(15.0570, abs=1e-4)
    secure = session.scalars(select(GroupSecureStat)).all()
    assert sum(r.passed_weight for r in secure) == pytest.approx(18.0)
    assert sum(r.total_weight for r in secure) == pytest.approx(30.0)
    by_category = {r.category: 0.0 for r in secure}
    for row in secure:
        by_category[row.category] += row.total_weight
    assert by_category == {"OS": 18.0, "Network": 12.0}


def test_worked_example_recommendations(session: Session) -> None:
    build_example(session)
    recompute(session, as_of=NOW)
    session.expire_all()
    chrome = session.get(Recommendation, CHROME)
    assert chrome is not None
    assert chrome.name == "Update Google Chrome to version 120.0.6099.71"
    assert chrome.recommended_version == "120.0.6099.71"
    assert chrome.remediation_type == "Update"
    assert chrome.category == "Application"
    assert chrome.weaknesses == 2
    assert chrome.active_alert
    assert chrome.public_exploit
    assert chrome.max_cvss == pytest.approx(8.0)
    assert chrome.max_severity == "High"
    assert chrome.exposed_machines_count == 3  # the inactive s2 is left out
    assert chrome.total_machine_count == 3
    assert chrome.exposed_critical_devices == 1
    assert "internetFacing" in chrome.tags
    assert chrome.exposure_impact == pytest.approx(13.5803, abs=1e-4)
    assert chrome.config_score_impact == 0.0
    config = session.get(Recommendation, SCID1)
    assert config is not None
    assert config.name == "Check scid-1"
    assert config.remediation_type == "ConfigurationChange"
    assert config.severity_score == 6.0
    assert config.exposed_machines_count == 2
    assert config.total_machine_count == 3
    assert config.exposure_impact == pytest.approx(1.0297, abs=1e-4)
    assert config.config_score_impact == pytest.approx(40.0)
    assert session.get(Recommendation, "sca-_-scid-2") is None  # passes everywhere
    vulns = session.scalars(
        select(RecommendationVulnerability).where(
            RecommendationVulnerability.vulnerability_id == "CVE-2026-0001"
        )
    ).all()
    assert sorted(v.exposed_devices for v in vulns) == [1, 2]


def test_fixing_everything_on_chrome_lowers_the_score_by_its_impact(session: Session) -> None:
    build_example(session)
    recompute(session, as_of=NOW)
    before = _org_sums(session).score()
    session.execute(update(Weakness).values(fixed_at=NOW))
    recompute(session, as_of=NOW)
    session.expire_all()
    assert _org_sums(session).score() == pytest.approx(before - 13.5803, abs=1e-4)
    assert _org_sums(session).score() == pytest.approx(1.4767, abs=1e-4)
    assert session.get(Recommendation, CHROME) is None


def _fix(session: Session, rec: Recommendation) -> None:
    if rec.kind == "software":
        session.execute(
            update(Weakness)
            .where(Weakness.software_id == rec.software_id, Weakness.fixed_at.is_(None))
            .values(fixed_at=NOW)
        )
    else:
        session.execute(
            update(ConfigurationAssessment)
            .where(ConfigurationAssessment.configuration_id == rec.configuration_id)
            .values(is_compliant=True, fixed_at=NOW)
        )


def _scoped_impacts(
    session: Session, rec_id: str, groups: list[int] | None
) -> tuple[float, float, float]:
    query = select(RecommendationGroupStat).where(
        RecommendationGroupStat.recommendation_id == rec_id
    )
    secure = select(GroupSecureStat)
    if groups is not None:
        query = query.where(RecommendationGroupStat.device_group_id.in_(groups))
        secure = secure.where(GroupSecureStat.device_group_id.in_(groups))
    rows = session.scalars(query).all()
    secure_rows = session.scalars(secure).all()
    total = sum(r.total_weight for r in secure_rows)
    passed = sum(r.passed_weight for r in secure_rows)
    exposure = _org_sums(session, groups).impact(
        sum(r.delta_weighted for r in rows), sum(r.delta_high for r in rows)
    )
    return (
        exposure,
        engine.secure_score_impact(sum(r.config_weight for r in rows), total),
        engine.secure_score(passed, total),
    )


def test_impacts_are_exact_for_the_org_and_for_a_subset_of_groups(session: Session) -> None:

    org = build_random_org(session, seed=7, devices=40)
    recompute(session, as_of=NOW)
    subset = org.group_ids[:2]
    recs = [
        Recommendation(
            id=rec.id, kind=rec.kind, software_id=rec.software_id,
            configuration_id=rec.configuration_id,
        )
        for rec in session.scalars(select(Recommendation).order_by(Recommendation.id))
    ]  # fmt: skip
    kinds = {rec.kind for rec in recs}
    assert kinds == {"software", "configuration"}
    checked = 0
    for rec in recs[:: max(len(recs) // 6, 1)]:
        expected = {}
        for groups in (None, subset):
            impact, secure_impact, secure = _scoped_impacts(session, rec.id, groups)
            expected[None if groups is None else "subset"] = (
                _org_sums(session, groups).score() - impact,
                secure + secure_impact,
            )
        _fix(session, rec)
        recompute(session, as_of=NOW)
        session.expire_all()
        for key, groups in ((None, None), ("subset", subset)):
            score_after, secure_after = expected[key]
            _, _, secure = _scoped_impacts(session, rec.id, groups)
            assert _org_sums(session, groups).score() == pytest.approx(score_after, abs=1e-6)
            assert secure == pytest.approx(secure_after, abs=1e-6)
        checked += 1
    assert checked >= 4


def test_recommendation_disappears_when_fixed_and_keeps_first_seen(session: Session) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)
    first_seen = session.get(Recommendation, CHROME).first_seen  # type: ignore[union-attr]
    later = NOW + timedelta(days=1)
    recompute(session, as_of=later)
    session.expire_all()
    chrome = session.get(Recommendation, CHROME)
    assert chrome is not None
    assert chrome.first_seen == first_seen
    assert chrome.updated_at == later
    session.execute(
        update(Weakness).where(Weakness.device_id != example.n2.id).values(fixed_at=NOW)
    )
    recompute(session, device_ids=[example.n1.id, example.s1.id, example.s2.id], as_of=NOW)
    session.expire_all()
    chrome = session.get(Recommendation, CHROME)
    assert chrome is not None
    assert chrome.exposed_machines_count == 1
    assert chrome.weaknesses == 1
    assert chrome.recommended_version == "120.0.6099.9"
    assert "internetFacing" not in chrome.tags
    session.execute(update(Weakness).values(fixed_at=NOW))
    recompute(session, device_ids=[example.n2.id], as_of=NOW)
    session.expire_all()
    assert session.get(Recommendation, CHROME) is None
    assert session.scalars(select(DeviceRecommendation.recommendation_id)).all() == [SCID1] * 2


def test_unpatchable_and_end_of_support_change_the_action(session: Session) -> None:
    example = build_example(session)
    flash = make_software(session, "adobe", "flash_player", display_name="Flash Player")
    zero_day = make_vulnerability(session, "CVE-2026-0003", cvss=9.8, severity="Critical")
    add_weakness(session, example.n2, flash, zero_day, fixed_version=None)
    recompute(session, as_of=NOW)
    session.expire_all()
    rec = session.get(Recommendation, "va-_-adobe-_-flash_player")
    assert rec is not None
    assert rec.name == "No security update available for Adobe Flash Player"
    assert rec.remediation_type == "AttentionRequired"
    assert rec.has_unpatchable_cve
    assert "No security update" in rec.tags
    software = session.get(Software, flash.id)
    assert software is not None
    software.end_of_support_on = datetime(2021, 1, 1, tzinfo=UTC)
    chrome = session.scalars(select(Software).where(Software.product == "chrome")).one()
    chrome.end_of_support_versions = ["119.0.6045.105"]
    recompute(session, device_ids=[example.n2.id], as_of=NOW)
    session.expire_all()
    rec = session.get(Recommendation, "va-_-adobe-_-flash_player")
    assert rec is not None
    assert rec.remediation_type == "Upgrade"
    assert rec.name == "Upgrade Adobe Flash Player to a supported version"
    assert {"EOS software", "No security update"} <= set(rec.tags)
    chrome_rec = session.get(Recommendation, CHROME)
    assert chrome_rec is not None
    assert chrome_rec.remediation_type == "Upgrade"
    assert "EOS versions" in chrome_rec.tags


def test_device_going_inactive_leaves_the_sums(session: Session) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)
    session.execute(
        update(Device).where(Device.id == example.n1.id).values(last_seen=NOW - timedelta(days=45))
    )
    recompute(session, device_ids=[example.n1.id], as_of=NOW)
    session.expire_all()
    sums = _org_sums(session)
    assert sums.active_devices == 2
    # Only n2 (Low, 9.64) and s1 (High, weight 0.2) remain.
    expected = (0.75 * 9.63855421686747 + 0.2 * 15.730337078651685) / (0.75 + 0.2)
    assert sums.score() == pytest.approx(expected)
    chrome = session.get(Recommendation, CHROME)
    assert chrome is not None
    assert chrome.exposed_machines_count == 2
    assert "internetFacing" not in chrome.tags


def test_new_device_in_a_new_group_is_added_incrementally(session: Session) -> None:
    example = build_example(session)
    recompute(session, as_of=NOW)

    west = make_group(session, "West")
    w1 = make_device(session, west, "w1", value="High")
    chrome = session.scalars(select(Software).where(Software.product == "chrome")).one()
    kev = session.get(type(example.n1), example.n1.id)
    assert kev is not None

    vulnerability = session.get(Vulnerability, "CVE-2026-0001")
    assert vulnerability is not None
    add_weakness(session, w1, chrome, vulnerability)
    recompute(session, device_ids=[w1.id], as_of=NOW)
    session.expire_all()
    assert _org_sums(session, [west.id]).active_devices == 1
    stat = session.get(RecommendationGroupStat, (CHROME, west.id))
    assert stat is not None
    assert stat.exposed_devices == 1
    assert stat.exposed_critical_devices == 1
    rec = session.get(Recommendation, CHROME)
    assert rec is not None
    assert rec.exposed_machines_count == 4
    assert rec.exposed_critical_devices == 2


def test_sql_agrees_with_the_pure_formulas(session: Session) -> None:

    org = build_random_org(session, seed=11, devices=40)
    recompute(session, as_of=NOW)
    session.expire_all()
    points = {v.id: v.exposure_points for v in session.scalars(select(Vulnerability))}
    weights = {c.id: c.weight for c in session.scalars(select(SecurityConfiguration))}
    by_group: dict[int, list[tuple[str, float]]] = {g: [] for g in org.group_ids}
    for device in session.scalars(select(Device)):
        raw = sum(
            points[w.vulnerability_id]
            for w in session.scalars(
                select(Weakness).where(Weakness.device_id == device.id, Weakness.fixed_at.is_(None))
            )
        )
        raw += sum(
            engine.configuration_points(weights[a.configuration_id])
            for a in session.scalars(
                select(ConfigurationAssessment).where(
                    ConfigurationAssessment.device_id == device.id,
                    ConfigurationAssessment.is_compliant.is_(False),
                )
            )
        )
        expected = engine.device_multiplier(device.internet_facing) * raw
        assert device.exposure_points == pytest.approx(expected)
        assert device.exposure_score == pytest.approx(engine.exposure_score(expected))
        assert device.exposure_level == engine.exposure_level(engine.exposure_score(expected))
        if device.last_seen >= NOW - timedelta(days=30):
            by_group[device.device_group_id].append((device.device_value, device.exposure_score))
    for group_id, devices in by_group.items():
        expected_sums = engine.sum_exposure(devices)
        stored = _org_sums(session, [group_id])
        assert stored.active_devices == expected_sums.active_devices
        assert stored.score() == pytest.approx(expected_sums.score())
