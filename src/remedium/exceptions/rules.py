"""Resurfacing rules: pure functions that decide whether an exception has become void.

An exception keeps a :class:`ThreatSnapshot` of the threat picture when it was filed. The
periodic job builds the current :class:`ThreatPicture` (facts of the vulnerabilities now behind
the recommendation or CVE, its exposure impact, and the dated intelligence events since filing)
and asks :func:`resurfacing` whether the picture got worse. The rules, in the order they are
tried (the first one that fires is recorded, with its evidence):

1. ``new_vulnerability``  a vulnerability joined the recommendation after filing;
2. ``kev_listed``         one of its vulnerabilities is now listed as actively exploited (KEV);
3. ``public_exploit``     a public exploit appeared for one of them;
4. ``severity_increase``  the highest severity rose;
5. ``exposure_growth``    the exposure impact grew by more than the margin (relative).

Each rule fires on the facts alone (the snapshot against the present) and also on a worsening
intelligence event dated after filing, so a job run ``--as-of`` an earlier time sees the
timeline it is asked about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITY_RANK = {"": -1, "Low": 0, "Medium": 1, "High": 2, "Critical": 3}
RULES = (
    "new_vulnerability",
    "kev_listed",
    "public_exploit",
    "severity_increase",
    "exposure_growth",
)
RULE_LABELS = {
    "new_vulnerability": "A new vulnerability joined the recommendation",
    "kev_listed": "A vulnerability is now listed as actively exploited (KEV)",
    "public_exploit": "A public exploit appeared",
    "severity_increase": "The severity rose",
    "exposure_growth": "The exposure impact grew beyond the margin",
}
# Intelligence event kinds (intel.models.IntelEvent.kind) that each rule reacts to.
_EVENT_RULES = {
    "kev_listed": "kev_listed",
    "public_exploit": "public_exploit",
    "exploit_verified": "public_exploit",
    "severity_increase": "severity_increase",
}


@dataclass(frozen=True, slots=True)
class VulnerabilityFacts:
    """What matters about one vulnerability for resurfacing."""

    id: str
    severity: str
    public_exploit: bool
    kev_listed: bool


@dataclass(frozen=True, slots=True)
class IntelChange:
    """A dated worsening of one vulnerability (a row of ``intel_event``)."""

    vulnerability_id: str
    kind: str
    old_value: str | None
    new_value: str | None
    occurred_at: datetime
    source: str = ""


@dataclass(frozen=True, slots=True)
class ThreatPicture:
    """The present threat picture of an exception's recommendation or CVE."""

    vulnerabilities: tuple[VulnerabilityFacts, ...]
    exposure_impact: float
    events: tuple[IntelChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ThreatSnapshot:
    """The threat picture kept with an exception when it was filed."""

    vulnerability_ids: frozenset[str]
    max_severity: str
    exploit_ids: frozenset[str]
    kev_ids: frozenset[str]
    exposure_impact: float
    filed_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The snapshot as stored in ``remediation_exception.snapshot``."""
        return {
            "vulnerability_ids": sorted(self.vulnerability_ids),
            "max_severity": self.max_severity,
            "public_exploit_ids": sorted(self.exploit_ids),
            "kev_ids": sorted(self.kev_ids),
            "exposure_impact": self.exposure_impact,
            "filed_at": self.filed_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThreatSnapshot:
        """Read a stored snapshot back."""
        return cls(
            vulnerability_ids=frozenset(data.get("vulnerability_ids", ())),
            max_severity=str(data.get("max_severity", "")),
            exploit_ids=frozenset(data.get("public_exploit_ids", ())),
            kev_ids=frozenset(data.get("kev_ids", ())),
            exposure_impact=float(data.get("exposure_impact", 0.0)),
            filed_at=datetime.fromisoformat(str(data["filed_at"])),
        )


@dataclass(frozen=True, slots=True)
class Resurfacing:
    """The rule that voided an exception, and the facts that made it fire."""

    rule: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The rule in words."""
        return RULE_LABELS[self.rule]


def max_severity(vulnerabilities: Iterable[VulnerabilityFacts]) -> str:
    """The highest severity among ``vulnerabilities`` ("" when there are none)."""
    best = ""
    for vulnerability in vulnerabilities:
        if SEVERITY_RANK.get(vulnerability.severity, -1) > SEVERITY_RANK[best]:
            best = vulnerability.severity
    return best


def snapshot_of(picture: ThreatPicture, filed_at: datetime) -> ThreatSnapshot:
    """The snapshot to keep for an exception filed at ``filed_at`` on ``picture``."""
    return ThreatSnapshot(
        vulnerability_ids=frozenset(v.id for v in picture.vulnerabilities),
        max_severity=max_severity(picture.vulnerabilities),
        exploit_ids=frozenset(v.id for v in picture.vulnerabilities if v.public_exploit),
        kev_ids=frozenset(v.id for v in picture.vulnerabilities if v.kev_listed),
        exposure_impact=picture.exposure_impact,
        filed_at=filed_at,
    )


def _matching(picture: ThreatPicture, snapshot: ThreatSnapshot, rule: str) -> list[IntelChange]:
    current = {v.id for v in picture.vulnerabilities}
    return sorted(
        (
            e
            for e in picture.events
            if _EVENT_RULES.get(e.kind) == rule
            and e.occurred_at > snapshot.filed_at
            and e.vulnerability_id in current
        ),
        key=lambda e: (e.occurred_at, e.vulnerability_id),
    )


def _split(
    picture: ThreatPicture, snapshot: ThreatSnapshot, rule: str, as_of: datetime
) -> tuple[list[dict[str, Any]], set[str]]:
    """Events for ``rule`` up to ``as_of`` (as evidence), and ids changed only after it."""
    events = _matching(picture, snapshot, rule)
    due = [e for e in events if e.occurred_at <= as_of]
    late = {e.vulnerability_id for e in events if e.occurred_at > as_of}
    late -= {e.vulnerability_id for e in due}
    evidence = [
        {
            "vulnerability_id": e.vulnerability_id,
            "kind": e.kind,
            "old_value": e.old_value,
            "new_value": e.new_value,
            "occurred_at": e.occurred_at.isoformat(),
            "source": e.source,
        }
        for e in due
    ]
    return evidence, late


def _new_vulnerability(snapshot: ThreatSnapshot, picture: ThreatPicture) -> dict[str, Any] | None:
    added = sorted({v.id for v in picture.vulnerabilities} - snapshot.vulnerability_ids)
    return {"new_vulnerability_ids": added} if added else None


def _flag_rule(
    snapshot: ThreatSnapshot,
    picture: ThreatPicture,
    as_of: datetime,
    *,
    rule: str,
    flagged: set[str],
    at_filing: frozenset[str],
) -> dict[str, Any] | None:
    events, late = _split(picture, snapshot, rule, as_of)
    # A flag whose only event is dated after ``as_of`` had not changed yet at that time.
    newly = (flagged - at_filing) - late
    if not newly and not events:
        return None
    ids = sorted(newly | {e["vulnerability_id"] for e in events})
    return {"vulnerability_ids": ids, "events": events}


def _severity_increase(
    snapshot: ThreatSnapshot, picture: ThreatPicture, as_of: datetime
) -> dict[str, Any] | None:
    accepted = SEVERITY_RANK.get(snapshot.max_severity, -1)
    events, late = _split(picture, snapshot, "severity_increase", as_of)
    # A rise below the level the exception already accepted does not worsen the picture.
    events = [e for e in events if SEVERITY_RANK.get(str(e["new_value"]), -1) > accepted]
    raised = sorted(
        v.id
        for v in picture.vulnerabilities
        if SEVERITY_RANK.get(v.severity, -1) > accepted and v.id not in late
    )
    if not raised and not events:
        return None
    return {
        "severity_at_filing": snapshot.max_severity,
        "severity_now": max_severity(picture.vulnerabilities),
        "vulnerability_ids": raised,
        "events": events,
    }


def _exposure_growth(
    snapshot: ThreatSnapshot, picture: ThreatPicture, margin: float
) -> dict[str, Any] | None:
    before, now = snapshot.exposure_impact, picture.exposure_impact
    limit = before * (1.0 + margin)
    if now <= limit + 1e-9 or now <= 0:
        return None
    return {
        "exposure_impact_at_filing": round(before, 4),
        "exposure_impact_now": round(now, 4),
        "margin": margin,
        "growth": None if before <= 0 else round(now / before - 1.0, 4),
    }


def resurfacing(
    snapshot: ThreatSnapshot,
    picture: ThreatPicture,
    *,
    impact_margin: float,
    as_of: datetime | None = None,
) -> Resurfacing | None:
    """The first rule (in :data:`RULES` order) that voids the exception, or ``None``.

    ``as_of`` (default: no limit) ignores changes whose only intelligence event is later.
    """
    as_of = as_of or datetime.max.replace(tzinfo=snapshot.filed_at.tzinfo)
    checks = (
        ("new_vulnerability", _new_vulnerability(snapshot, picture)),
        (
            "kev_listed",
            _flag_rule(
                snapshot,
                picture,
                as_of,
                rule="kev_listed",
                flagged={v.id for v in picture.vulnerabilities if v.kev_listed},
                at_filing=snapshot.kev_ids,
            ),
        ),
        (
            "public_exploit",
            _flag_rule(
                snapshot,
                picture,
                as_of,
                rule="public_exploit",
                flagged={v.id for v in picture.vulnerabilities if v.public_exploit},
                at_filing=snapshot.exploit_ids,
            ),
        ),
        ("severity_increase", _severity_increase(snapshot, picture, as_of)),
        ("exposure_growth", _exposure_growth(snapshot, picture, impact_margin)),
    )
    for rule, evidence in checks:
        if evidence is not None:
            return Resurfacing(rule, evidence)
    return None
