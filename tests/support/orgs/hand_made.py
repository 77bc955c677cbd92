"""Scenario "hand-made": a small organisation with hand-made derived tables, shared by the query
and API tests.

Two groups: Alpha (a1 Normal score 60, a2 High score 80) and Beta (b1 Normal score 20,
b2 Low score 0). Chrome is vulnerable on a1, a2, b1; Java on b1; a configuration check fails
on a1 and b2. The per-group sums below are what the recompute would write for this inventory,
so the expected figures can be worked out by hand (see each test). The organisation-wide
``weaknesses`` stored on each recommendation are what the recompute would store, too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)
from remedium.scoring.models import GroupScoreStat, GroupSecureStat, ScoreSnapshot, SecureSnapshot
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_configuration,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

CHROME = "va-_-google-_-chrome"
JAVA = "va-_-oracle-_-java"
SCID = "sca-_-scid-1"


@dataclass
class Org:
    """Handles on the scenario's rows."""

    alpha: DeviceGroup
    beta: DeviceGroup
    a1: Device
    a2: Device
    b1: Device
    b2: Device
    chrome_id: int
    java_id: int
    today: date

    @property
    def alpha_scope(self) -> Scope:
        return Scope(frozenset({self.alpha.id}))

    @property
    def beta_scope(self) -> Scope:
        return Scope(frozenset({self.beta.id}))


def _device(session: Session, group: DeviceGroup, name: str, value: str, score: float) -> Device:
    now = datetime.now(UTC)
    device = make_device(session, group, name, value=value, last_seen=now - timedelta(hours=1))
    device.exposure_score = score
    device.exposure_level = (
        "None" if score == 0 else "Low" if score < 30 else "Medium" if score < 70 else "High"
    )
    device.secure_total_weight = 6.0
    return device


def build_org(session: Session) -> Org:
    """Build the scenario (flushes, does not commit)."""
    alpha = make_group(session, "Alpha")
    beta = make_group(session, "Beta")
    a1 = _device(session, alpha, "a1", "Normal", 60.0)
    a2 = _device(session, alpha, "a2", "High", 80.0)
    b1 = _device(session, beta, "b1", "Normal", 20.0)
    b2 = _device(session, beta, "b2", "Low", 0.0)
    chrome = make_software(session, "google", "chrome")
    java = make_software(session, "oracle", "java")
    cve1 = make_vulnerability(session, "CVE-2026-0001", cvss=9.8, severity="Critical", kev=True)
    cve2 = make_vulnerability(session, "CVE-2026-0002", cvss=5.0, severity="Medium")
    cve3 = make_vulnerability(session, "CVE-2026-0003", cvss=7.0, exploit=True)
    cve4 = make_vulnerability(session, "CVE-2026-0004", cvss=4.0, severity="Medium")
    make_configuration(session, "scid-1", category="OS", weight=6.0)
    for device, version in ((a1, "100.0"), (a2, "101.0"), (b1, "100.0"), (b2, "120.0")):
        install(session, device, chrome, version)
    install(session, b1, java, "8.0")
    add_weakness(session, a1, chrome, cve1, installed_version="100.0")
    add_weakness(session, a1, chrome, cve2, installed_version="100.0")
    add_weakness(session, a2, chrome, cve1, installed_version="101.0")
    add_weakness(session, b1, chrome, cve1, installed_version="100.0")
    add_weakness(session, b1, java, cve3, installed_version="8.0")
    add_weakness(session, a1, chrome, cve4, installed_version="100.0", fixed_at=datetime.now(UTC))

    session.add_all(
        [
            Recommendation(
                id=CHROME,
                kind="software",
                software_id=chrome.id,
                name="Update Google Chrome",
                product_name="chrome",
                vendor="google",
                related_component="Chrome",
                category="Application",
                remediation_type="Update",
                active_alert=True,
                weaknesses=2,
            ),
            Recommendation(
                id=JAVA,
                kind="software",
                software_id=java.id,
                name="Update Oracle Java",
                product_name="java",
                vendor="oracle",
                related_component="Java",
                category="Application",
                remediation_type="Update",
                public_exploit=True,
                weaknesses=1,
            ),
            Recommendation(
                id=SCID,
                kind="configuration",
                configuration_id="scid-1",
                name="Turn on the firewall",
                related_component="Windows Firewall",
                category="OS",
                remediation_type="ConfigurationChange",
                severity_score=6.0,
                weaknesses=1,
            ),
        ]
    )
    session.flush()

    def stat(rec: str, group: DeviceGroup, exposed: int, critical: int, installed: int,
             dw: float, dh: float = 0.0, cw: float = 0.0) -> RecommendationGroupStat:  # fmt: skip
        return RecommendationGroupStat(
            recommendation_id=rec,
            device_group_id=group.id,
            exposed_devices=exposed,
            exposed_critical_devices=critical,
            installed_devices=installed,
            delta_weighted=dw,
            delta_high=dh,
            config_weight=cw,
        )

    session.add_all(
        [
            stat(CHROME, alpha, 2, 1, 2, 30.0, 40.0),
            stat(CHROME, beta, 1, 0, 2, 15.0),
            stat(JAVA, beta, 1, 0, 1, 5.0),
            stat(SCID, alpha, 1, 0, 2, 10.0, cw=6.0),
            stat(SCID, beta, 1, 0, 2, 0.0, cw=6.0),
            RecommendationVulnerability(
                recommendation_id=CHROME,
                vulnerability_id=cve1.id,
                device_group_id=alpha.id,
                exposed_devices=2,
            ),
            RecommendationVulnerability(
                recommendation_id=CHROME,
                vulnerability_id=cve1.id,
                device_group_id=beta.id,
                exposed_devices=1,
            ),
            RecommendationVulnerability(
                recommendation_id=CHROME,
                vulnerability_id=cve2.id,
                device_group_id=alpha.id,
                exposed_devices=1,
            ),
            RecommendationVulnerability(
                recommendation_id=JAVA,
                vulnerability_id=cve3.id,
                device_group_id=beta.id,
                exposed_devices=1,
            ),
            DeviceRecommendation(
                device_id=a1.id, recommendation_id=CHROME, weaknesses=2, points=20, score_delta=30
            ),
            DeviceRecommendation(
                device_id=a2.id, recommendation_id=CHROME, weaknesses=1, points=30, score_delta=40
            ),
            DeviceRecommendation(
                device_id=b1.id, recommendation_id=CHROME, weaknesses=1, points=10, score_delta=15
            ),
            DeviceRecommendation(
                device_id=b1.id, recommendation_id=JAVA, weaknesses=1, points=4, score_delta=5
            ),
            DeviceRecommendation(
                device_id=a1.id,
                recommendation_id=SCID,
                weaknesses=1,
                points=3,
                score_delta=10,
                config_weight=6,
            ),
            DeviceRecommendation(
                device_id=b2.id, recommendation_id=SCID, weaknesses=1, points=3, config_weight=6
            ),
            GroupScoreStat(
                device_group_id=alpha.id,
                active_devices=2,
                high_value_devices=1,
                weight_low_normal=1.0,
                exposure_weighted=60.0,
                exposure_high=80.0,
                devices_medium=1,
                devices_high=1,
            ),
            GroupScoreStat(
                device_group_id=beta.id,
                active_devices=2,
                high_value_devices=0,
                weight_low_normal=1.75,
                exposure_weighted=20.0,
                exposure_high=0.0,
                devices_none=1,
                devices_low=1,
            ),
            GroupSecureStat(
                device_group_id=alpha.id, category="OS", passed_weight=6.0, total_weight=12.0
            ),
            GroupSecureStat(
                device_group_id=alpha.id, category="Network", passed_weight=4.0, total_weight=4.0
            ),
            GroupSecureStat(
                device_group_id=beta.id, category="OS", passed_weight=6.0, total_weight=12.0
            ),
        ]
    )
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    old = today - timedelta(days=60)
    for day, alpha_weighted in ((old, 90.0), (yesterday, 80.0), (today, 60.0)):
        session.add_all(
            [
                ScoreSnapshot(
                    day=day,
                    device_group_id=alpha.id,
                    active_devices=2,
                    high_value_devices=1,
                    weight_low_normal=1.0,
                    exposure_weighted=alpha_weighted,
                    exposure_high=80.0,
                ),
                ScoreSnapshot(
                    day=day,
                    device_group_id=beta.id,
                    active_devices=2,
                    weight_low_normal=1.75,
                    exposure_weighted=20.0,
                ),
                SecureSnapshot(
                    day=day,
                    device_group_id=alpha.id,
                    category="OS",
                    passed_weight=6.0,
                    total_weight=12.0,
                ),
            ]
        )
    session.flush()
    return Org(alpha, beta, a1, a2, b1, b2, chrome.id, java.id, today)
