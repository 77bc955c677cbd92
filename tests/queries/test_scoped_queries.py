"""The read-side queries give exact, scoped figures and hide what is outside the scope.

Expected numbers are worked out by hand from the scenario in ``tests/support/orgs/hand_made.py``
with the formulas of docs/scoring.md (High-value weight = active devices / 10).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from remedium.auth.principal import UNRESTRICTED, Scope
from remedium.intel import queries as intel
from remedium.inventory import queries as inventory
from remedium.inventory import software_queries
from remedium.recommendations import queries as recs
from remedium.scoring import queries as scores
from tests.support.orgs.hand_made import CHROME, JAVA, SCID, Org, build_org

NOTHING = Scope(frozenset())


@pytest.fixture
def org(session: Session) -> Org:
    return build_org(session)


def test_exposure_score_of_organisation_and_of_one_group(session: Session, org: Org) -> None:
    everyone = scores.exposure_score(session, UNRESTRICTED)
    # (80 + 0.4 x 80) / (2.75 + 0.4): the High device weighs 4 devices / 10.
    assert everyone.score == pytest.approx(35.56)
    assert everyone.band == "Medium"
    assert everyone.active_devices == 4
    alpha = scores.exposure_score(session, org.alpha_scope)
    assert alpha.score == pytest.approx(63.33)  # (60 + 0.2 x 80) / 1.2
    assert alpha.active_devices == 2
    beta = scores.exposure_score(session, org.beta_scope)
    assert beta.score == pytest.approx(11.43)
    assert beta.band == "Low"
    assert scores.exposure_score(session, NOTHING).active_devices == 0


def test_exposure_by_group_lists_only_groups_in_scope(session: Session, org: Org) -> None:
    groups = scores.exposure_by_group(session, UNRESTRICTED)
    assert [(g.group_name, g.score, g.band) for g in groups] == [
        ("Alpha", pytest.approx(63.33), "Medium"),
        ("Beta", pytest.approx(11.43), "Low"),
    ]
    assert [g.group_name for g in scores.exposure_by_group(session, org.beta_scope)] == ["Beta"]
    assert scores.exposure_by_group(session, NOTHING) == []


def test_secure_score_by_category_and_scope(session: Session, org: Org) -> None:
    everyone = scores.secure_score(session, UNRESTRICTED)
    assert everyone.score == pytest.approx(57.14)  # 16 / 28
    by_category = {c.category: c for c in everyone.categories}
    assert set(by_category) == {"Accounts", "Application", "Network", "OS", "SecurityControls"}
    assert by_category["OS"].score == 50.0
    assert by_category["OS"].label == "Operating system"
    assert by_category["Network"].score == 100.0
    assert scores.secure_score(session, org.alpha_scope).score == 62.5  # 10 / 16
    assert scores.secure_score(session, org.beta_scope).score == 50.0


def test_distribution_counts_active_devices_by_level(session: Session, org: Org) -> None:
    assert scores.exposure_distribution(session, UNRESTRICTED).model_dump() == {
        "none": 1,
        "low": 1,
        "medium": 1,
        "high": 1,
    }
    alpha = scores.exposure_distribution(session, org.alpha_scope)
    assert (alpha.none, alpha.low, alpha.medium, alpha.high) == (0, 0, 1, 1)


def test_history_covers_the_requested_days_oldest_first(session: Session, org: Org) -> None:
    history = scores.score_history(session, org.alpha_scope, days=30)
    assert [p.day for p in history] == [org.today - timedelta(days=1), org.today]
    assert [p.exposure_score for p in history] == [pytest.approx(80.0), pytest.approx(63.33)]
    assert [p.secure_score for p in history] == [50.0, 50.0]
    assert len(scores.score_history(session, org.alpha_scope, days=90)) == 3
    beta_today = scores.score_history(session, org.beta_scope, days=1)
    assert [(p.exposure_score, p.secure_score) for p in beta_today] == [
        (pytest.approx(11.43), 100.0)
    ]


def test_recommendation_list_ranks_by_scoped_exposure_impact(session: Session, org: Org) -> None:
    page = recs.list_recommendations(session, UNRESTRICTED)
    assert page.total == 3
    assert [r.id for r in page.items] == [CHROME, SCID, JAVA]
    chrome = page.items[0]
    assert (chrome.exposed_devices, chrome.exposed_critical_devices, chrome.total_devices) == (
        3,
        1,
        4,
    )
    assert chrome.weaknesses == 2
    assert chrome.exposure_impact == pytest.approx(19.37)  # (45 + 0.4 x 40) / 3.15
    assert chrome.status == "Active"
    scid = page.items[1]
    assert scid.config_score_impact == pytest.approx(42.86)  # 12 / 28
    assert scid.weaknesses == 1  # one misconfiguration, on two devices


def test_recommendations_shrink_to_the_scope(session: Session, org: Org) -> None:
    alpha = recs.list_recommendations(session, org.alpha_scope)
    assert [r.id for r in alpha.items] == [CHROME, SCID]
    chrome, scid = alpha.items
    assert (chrome.exposed_devices, chrome.weaknesses, chrome.total_devices) == (2, 2, 2)
    assert chrome.exposure_impact == pytest.approx(31.67)  # (30 + 0.2 x 40) / 1.2
    assert scid.config_score_impact == pytest.approx(37.5)  # 6 / 16
    beta_chrome = recs.get_recommendation(session, org.beta_scope, CHROME)
    assert beta_chrome is not None
    assert (beta_chrome.exposed_devices, beta_chrome.weaknesses) == (1, 1)
    assert recs.get_recommendation(session, org.alpha_scope, JAVA) is None
    assert recs.get_recommendation(session, UNRESTRICTED, "va-_-nobody-_-nothing") is None
    assert recs.list_recommendations(session, NOTHING).total == 0
    assert recs.get_recommendation(session, NOTHING, CHROME) is None


def test_recommendation_filters_sort_and_paging(session: Session, org: Org) -> None:
    def ids(**kwargs: object) -> list[str]:
        return [r.id for r in recs.list_recommendations(session, UNRESTRICTED, **kwargs).items]  # type: ignore[arg-type]

    assert ids(threats="exploit") == [JAVA]
    assert ids(threats="kev") == [CHROME]
    assert ids(search="firewall") == [SCID]
    assert ids(kind="configuration") == [SCID]
    assert ids(category="Application") == [CHROME, JAVA]
    assert ids(sort="name", descending=False) == [SCID, CHROME, JAVA]
    assert ids(sort="exposed_devices", descending=True) == [CHROME, SCID, JAVA]
    second = recs.list_recommendations(session, UNRESTRICTED, offset=1, limit=1)
    assert (second.total, [r.id for r in second.items]) == (3, [SCID])
    with pytest.raises(ValueError, match="sort"):
        recs.list_recommendations(session, UNRESTRICTED, sort="password")
    assert [r.id for r in recs.top_recommendations(session, UNRESTRICTED, n=2)] == [CHROME, SCID]


def test_recommendation_devices_and_vulnerabilities_are_scoped(session: Session, org: Org) -> None:
    everyone = recs.recommendation_devices(session, UNRESTRICTED, CHROME)
    assert everyone.total == 3
    assert [d.name for d in everyone.items] == ["a2", "a1", "b1"]  # biggest score drop first
    alpha = recs.recommendation_devices(session, org.alpha_scope, CHROME)
    assert {d.name for d in alpha.items} == {"a1", "a2"}
    assert alpha.items[0].device_group_name == "Alpha"
    vulns = recs.recommendation_vulnerabilities(session, UNRESTRICTED, CHROME)
    assert [(v.id, v.exposed_devices) for v in vulns] == [
        ("CVE-2026-0001", 3),
        ("CVE-2026-0002", 1),
    ]
    beta_vulns = recs.recommendation_vulnerabilities(session, org.beta_scope, CHROME)
    assert [(v.id, v.exposed_devices) for v in beta_vulns] == [("CVE-2026-0001", 1)]


def test_devices_are_scoped_filtered_and_sorted(session: Session, org: Org) -> None:
    page = inventory.list_devices(session, UNRESTRICTED)
    assert [d.name for d in page.items] == ["a2", "a1", "b1", "b2"]
    assert page.items[1].weaknesses == 2  # the fixed CVE does not count
    alpha = inventory.list_devices(session, org.alpha_scope, sort="name", descending=False)
    assert (alpha.total, [d.name for d in alpha.items]) == (2, ["a1", "a2"])
    assert [d.name for d in inventory.list_devices(session, UNRESTRICTED, search="b").items] == [
        "b1",
        "b2",
    ]
    assert inventory.list_devices(session, UNRESTRICTED, exposure_level="High").total == 1
    assert inventory.list_devices(session, UNRESTRICTED, device_value="Low").items[0].name == "b2"
    assert inventory.list_devices(session, UNRESTRICTED, group_id=org.beta.id).total == 2
    assert inventory.list_devices(session, org.alpha_scope, group_id=org.beta.id).total == 0
    assert inventory.list_devices(session, NOTHING).total == 0
    assert [d.name for d in inventory.top_exposed_devices(session, org.beta_scope, n=1)] == ["b1"]
    with pytest.raises(ValueError, match="exposure_level"):
        inventory.list_devices(session, UNRESTRICTED, exposure_level="Extreme")


def test_device_details_are_hidden_outside_the_scope(session: Session, org: Org) -> None:
    assert inventory.get_device(session, org.alpha_scope, org.b1.id) is None
    assert inventory.device_software(session, org.alpha_scope, org.b1.id) == []
    device = inventory.get_device(session, org.beta_scope, org.b1.id)
    assert device is not None
    assert (device.device_group_name, device.weaknesses, device.is_active) == ("Beta", 2, True)
    software = inventory.device_software(session, UNRESTRICTED, org.b1.id)
    assert [(s.name, s.version, s.weaknesses) for s in software] == [
        ("Chrome", "100.0", 1),
        ("Java", "8.0", 1),
    ]
    open_only = inventory.device_weaknesses(session, UNRESTRICTED, org.a1.id)
    assert [w.vulnerability_id for w in open_only] == ["CVE-2026-0001", "CVE-2026-0002"]
    with_fixed = inventory.device_weaknesses(session, UNRESTRICTED, org.a1.id, include_fixed=True)
    assert len(with_fixed) == 3
    assert inventory.device_weaknesses(session, org.beta_scope, org.a1.id) == []
    device_recs = inventory.device_recommendations(session, UNRESTRICTED, org.a1.id)
    assert [r.recommendation_id for r in device_recs] == [CHROME, SCID]


def test_device_groups_with_counts(session: Session, org: Org) -> None:
    groups = inventory.list_device_groups(session, UNRESTRICTED)
    assert [(g.name, g.devices, g.exposure_score) for g in groups] == [
        ("Alpha", 2, pytest.approx(63.33)),
        ("Beta", 2, pytest.approx(11.43)),
    ]
    assert [g.name for g in inventory.list_device_groups(session, org.alpha_scope)] == ["Alpha"]


def test_software_inventory_is_scoped(session: Session, org: Org) -> None:
    page = software_queries.list_software(session, UNRESTRICTED)
    assert [(s.name, s.installed_devices, s.exposed_devices, s.weaknesses) for s in page.items] == [
        ("Chrome", 4, 3, 2),
        ("Java", 1, 1, 1),
    ]
    assert page.items[0].recommendation_id == CHROME
    alpha = software_queries.list_software(session, org.alpha_scope)
    assert [(s.name, s.installed_devices, s.exposed_devices) for s in alpha.items] == [
        ("Chrome", 2, 2)
    ]
    assert software_queries.get_software(session, org.alpha_scope, org.java_id) is None
    java = software_queries.get_software(session, org.beta_scope, org.java_id)
    assert java is not None
    assert java.public_exploit
    assert [s.name for s in software_queries.top_vulnerable_software(session, UNRESTRICTED)] == [
        "Chrome",
        "Java",
    ]
    versions = software_queries.software_versions(session, UNRESTRICTED, org.chrome_id)
    assert [
        (v.version, v.installed_devices, v.exposed_devices, v.weaknesses) for v in versions
    ] == [
        ("120.0", 1, 0, 0),
        ("101.0", 1, 1, 1),
        ("100.0", 2, 2, 2),
    ]
    beta_versions = software_queries.software_versions(session, org.beta_scope, org.chrome_id)
    assert [(v.version, v.installed_devices) for v in beta_versions] == [
        ("120.0", 1),
        ("100.0", 1),
    ]


def test_vulnerabilities_count_exposed_devices_in_scope(session: Session, org: Org) -> None:
    page = intel.list_vulnerabilities(session, UNRESTRICTED)
    assert [(v.id, v.exposed_devices) for v in page.items] == [
        ("CVE-2026-0001", 3),
        ("CVE-2026-0002", 1),
        ("CVE-2026-0003", 1),
    ]
    alpha = intel.list_vulnerabilities(session, org.alpha_scope)
    assert [(v.id, v.exposed_devices) for v in alpha.items] == [
        ("CVE-2026-0001", 2),
        ("CVE-2026-0002", 1),
    ]
    assert [v.id for v in intel.list_vulnerabilities(session, UNRESTRICTED, kev=True).items] == [
        "CVE-2026-0001"
    ]
    assert [
        v.id for v in intel.list_vulnerabilities(session, UNRESTRICTED, severity="Medium").items
    ] == ["CVE-2026-0002"]
    by_cvss = intel.list_vulnerabilities(session, UNRESTRICTED, sort="cvss_v3_score")
    assert [v.id for v in by_cvss.items] == ["CVE-2026-0001", "CVE-2026-0003", "CVE-2026-0002"]
    outside = intel.get_vulnerability(session, org.alpha_scope, "CVE-2026-0003")
    assert outside is not None
    assert outside.exposed_devices == 0
    assert intel.get_vulnerability(session, UNRESTRICTED, "CVE-1999-9999") is None
    devices = intel.vulnerability_devices(session, org.alpha_scope, "CVE-2026-0001")
    assert [(d.name, d.software_name) for d in devices.items] == [
        ("a1", "Chrome"),
        ("a2", "Chrome"),
    ]
    software = intel.vulnerability_software(session, UNRESTRICTED, "CVE-2026-0001")
    assert [(s.name, s.exposed_devices) for s in software] == [("Chrome", 3)]
    assert intel.vulnerability_software(session, NOTHING, "CVE-2026-0001") == []
