"""The pure resurfacing rules, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from remedium.exceptions import rules
from remedium.exceptions.rules import IntelChange, ThreatPicture, VulnerabilityFacts

FILED = datetime(2026, 11, 1, tzinfo=UTC)
HIGH = VulnerabilityFacts("CVE-1", "High", public_exploit=False, kev_listed=False)


def _snapshot(*facts: VulnerabilityFacts, impact: float = 10.0) -> rules.ThreatSnapshot:
    return rules.snapshot_of(ThreatPicture(facts, impact), FILED)


def test_unchanged_picture_keeps_the_exception() -> None:
    snapshot = _snapshot(HIGH)
    assert rules.resurfacing(snapshot, ThreatPicture((HIGH,), 10.0), impact_margin=0.2) is None


def test_snapshot_round_trips_through_json() -> None:
    snapshot = _snapshot(HIGH, VulnerabilityFacts("CVE-2", "Low", True, True), impact=3.5)
    assert rules.ThreatSnapshot.from_json(snapshot.as_json()) == snapshot


def test_each_rule_fires_on_its_own_change() -> None:
    snapshot = _snapshot(HIGH)
    cases = {
        "new_vulnerability": ThreatPicture(
            (HIGH, VulnerabilityFacts("CVE-2", "Low", False, False)), 10.0
        ),
        "kev_listed": ThreatPicture((VulnerabilityFacts("CVE-1", "High", False, True),), 10.0),
        "public_exploit": ThreatPicture((VulnerabilityFacts("CVE-1", "High", True, False),), 10.0),
        "severity_increase": ThreatPicture(
            (VulnerabilityFacts("CVE-1", "Critical", False, False),), 10.0
        ),
        "exposure_growth": ThreatPicture((HIGH,), 12.5),
    }
    for rule, picture in cases.items():
        verdict = rules.resurfacing(snapshot, picture, impact_margin=0.2)
        assert verdict is not None, rule
        assert verdict.rule == rule
        assert verdict.label == rules.RULE_LABELS[rule]


def test_growth_within_the_margin_is_tolerated() -> None:
    snapshot = _snapshot(HIGH)
    assert rules.resurfacing(snapshot, ThreatPicture((HIGH,), 12.0), impact_margin=0.2) is None
    assert rules.resurfacing(snapshot, ThreatPicture((HIGH,), 9.0), impact_margin=0.2) is None


def test_what_was_known_at_filing_does_not_fire() -> None:
    known = VulnerabilityFacts("CVE-1", "Critical", public_exploit=True, kev_listed=True)
    snapshot = _snapshot(known)
    assert rules.resurfacing(snapshot, ThreatPicture((known,), 10.0), impact_margin=0.2) is None


def test_a_change_dated_after_as_of_has_not_happened_yet() -> None:
    snapshot = _snapshot(HIGH)
    listed = VulnerabilityFacts("CVE-1", "High", False, True)
    event = IntelChange("CVE-1", "kev_listed", "false", "true", FILED + timedelta(days=5), "kev")
    picture = ThreatPicture((listed,), 10.0, (event,))
    early = rules.resurfacing(snapshot, picture, impact_margin=0.2, as_of=FILED + timedelta(days=4))
    assert early is None
    verdict = rules.resurfacing(
        snapshot, picture, impact_margin=0.2, as_of=FILED + timedelta(days=6)
    )
    assert verdict is not None
    assert verdict.rule == "kev_listed"
    assert verdict.evidence["events"][0]["source"] == "kev"


def test_a_severity_rise_below_the_accepted_level_is_ignored() -> None:
    critical = VulnerabilityFacts("CVE-9", "Critical", False, False)
    snapshot = _snapshot(HIGH, critical)
    raised = VulnerabilityFacts("CVE-1", "Critical", False, False)
    event = IntelChange("CVE-1", "severity_increase", "High", "Critical", FILED + timedelta(days=1))
    picture = ThreatPicture((raised, critical), 10.0, (event,))
    assert rules.resurfacing(snapshot, picture, impact_margin=0.2) is None


def test_new_vulnerability_wins_over_later_rules() -> None:
    snapshot = _snapshot(HIGH)
    picture = ThreatPicture((HIGH, VulnerabilityFacts("CVE-2", "Critical", True, True)), 50.0)
    verdict = rules.resurfacing(snapshot, picture, impact_margin=0.2)
    assert verdict is not None
    assert verdict.rule == "new_vulnerability"
    assert verdict.evidence == {"new_vulnerability_ids": ["CVE-2"]}
