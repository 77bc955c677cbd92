"""Resurfacing: each rule fired by real changes (intel import, new scan + recompute)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from remedium.exceptions import filing, lifecycle, service
from remedium.exceptions.models import RemediationException
from remedium.importers.records import VulnerabilityRecord
from remedium.intel.importing import import_feed
from remedium.intel.models import Vulnerability
from remedium.intel.service import upsert_vulnerabilities
from remedium.inventory.models import Device
from remedium.recommendations.coverage import effective_coverage
from remedium.recommendations.service import recompute
from remedium.settings import get_settings
from tests.support.orgs.builder import NOW, add_weakness, install, make_vulnerability
from tests.support.orgs.exceptions import ADMIN, ANALYST, CHROME, CVE, Org, build

FILED = NOW + timedelta(hours=1)


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    monkeypatch.delenv("REMEDIUM_EXCEPTION_RESURFACE_IMPACT_MARGIN", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def org(session: Session) -> Org:
    return build(session)


@pytest.fixture
def exc(session: Session, org: Org) -> RemediationException:
    return filing.file_exception(
        session,
        ANALYST,
        recommendation_id=CHROME,
        justification="CompensatingControl",
        device_group_ids=[org.alpha.id],
        duration_days=90,
        as_of=FILED,
    )


def _kev_file(tmp_path: Path, cve: str) -> Path:
    path = tmp_path / "known_exploited_vulnerabilities.json"
    path.write_text(
        json.dumps(
            {
                "title": "CISA Catalog of Known Exploited Vulnerabilities",
                "catalogVersion": "2026.11.25",
                "dateReleased": "2026-11-25T15:00:00.0000Z",
                "count": 1,
                "vulnerabilities": [
                    {
                        "cveID": cve,
                        "vendorProject": "Google",
                        "product": "Chrome",
                        "vulnerabilityName": "Chrome heap overflow",
                        "dateAdded": "2026-11-25",
                        "shortDescription": "Heap overflow.",
                        "requiredAction": "Apply updates.",
                        "dueDate": "2026-12-16",
                        "knownRansomwareCampaignUse": "Unknown",
                        "notes": "",
                        "cwes": ["CWE-787"],
                    }
                ],
            }
        )
    )
    return path


def test_nothing_changed_nothing_resurfaces(session: Session, exc: RemediationException) -> None:
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=5)) == []
    assert exc.status == "InEffect"


def test_kev_import_voids_the_exception(
    session: Session, exc: RemediationException, tmp_path: Path
) -> None:
    import_feed(session, _kev_file(tmp_path, CVE), feed="kev-json")
    # The import itself runs the exception jobs right after its recompute, so the exception is
    # void before any periodic job runs. The exposure grew too: the KEV rule comes first and is
    # the one recorded.
    session.refresh(exc)
    assert exc.status == "Resurfaced"
    assert lifecycle.run_exception_jobs(session, NOW + timedelta(days=6)).resurfaced == []
    assert {g.status for g in exc.groups} == {"Resurfaced"}
    assert exc.resurfaced_rule == "kev_listed"
    assert exc.resurfaced_evidence is not None
    assert exc.resurfaced_evidence["vulnerability_ids"] == [CVE]
    [event] = exc.resurfaced_evidence["events"]
    assert event["source"] == "intel:kev-json"
    assert event["occurred_at"].startswith("2026-11-25")
    assert effective_coverage(session, NOW + timedelta(days=6)) == []
    history = service.history(session, ANALYST.scope, exc)
    assert history[-1].kind == "resurface"
    assert history[-1].detail["rule"] == "kev_listed"


def test_a_new_cve_after_a_scan_voids_the_exception(
    session: Session, org: Org, exc: RemediationException
) -> None:
    new = make_vulnerability(session, "CVE-2026-2002", cvss=5.0, severity="Medium")
    add_weakness(session, org.b1, org.chrome, new, installed_version="1.0")
    recompute(session, device_ids=[org.b1.id], as_of=NOW + timedelta(days=1))
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=1)) == [exc.id]
    assert exc.resurfaced_rule == "new_vulnerability"
    assert exc.resurfaced_evidence == {"new_vulnerability_ids": ["CVE-2026-2002"]}


def test_a_public_exploit_voids_the_exception(session: Session, exc: RemediationException) -> None:
    upsert_vulnerabilities(
        session,
        [VulnerabilityRecord(CVE, public_exploit=True)],
        source="intel:nvd",
        observed_at=NOW + timedelta(days=3),
    )
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=3)) == [exc.id]
    assert exc.resurfaced_rule == "public_exploit"
    assert exc.resurfaced_evidence is not None
    assert exc.resurfaced_evidence["events"][0]["kind"] == "public_exploit"


def test_a_severity_rise_voids_the_exception(session: Session, exc: RemediationException) -> None:
    upsert_vulnerabilities(
        session,
        [VulnerabilityRecord(CVE, severity="Critical")],
        source="intel:nvd",
        observed_at=NOW + timedelta(days=3),
    )
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=4)) == [exc.id]
    assert exc.resurfaced_rule == "severity_increase"
    assert exc.resurfaced_evidence is not None
    assert exc.resurfaced_evidence["severity_at_filing"] == "High"
    assert exc.resurfaced_evidence["severity_now"] == "Critical"


def _expose(session: Session, org: Org, devices: list[Device]) -> None:
    """A new scan finds the vulnerable Chrome on ``devices`` (clean until now)."""
    vulnerability = session.get(Vulnerability, CVE)
    assert vulnerability is not None
    for device in devices:
        install(session, device, org.chrome, "1.0")
        add_weakness(session, device, org.chrome, vulnerability, installed_version="1.0")
    recompute(session, device_ids=[d.id for d in devices], as_of=NOW + timedelta(days=1))


def test_exposure_growth_beyond_the_margin_voids_the_exception(
    session: Session, org: Org, exc: RemediationException
) -> None:
    before = exc.snapshot["exposure_impact"]
    assert before > 0
    _expose(session, org, org.clean)
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=1)) == [exc.id]
    assert exc.resurfaced_rule == "exposure_growth"
    assert exc.resurfaced_evidence is not None
    assert exc.resurfaced_evidence["exposure_impact_now"] > before * 1.2


def test_a_wide_margin_tolerates_the_same_growth(
    session: Session, org: Org, exc: RemediationException, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIUM_EXCEPTION_RESURFACE_IMPACT_MARGIN", "100")
    get_settings.cache_clear()
    _expose(session, org, org.clean)
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=1)) == []
    assert exc.status == "InEffect"


def test_a_resurfaced_global_exception_releases_held_groups(
    session: Session, org: Org, exc: RemediationException
) -> None:
    upsert_vulnerabilities(
        session,
        [VulnerabilityRecord(CVE, public_exploit=True)],
        source="intel:nvd",
        observed_at=NOW + timedelta(days=3),
    )
    # Filed after the exploit appeared: the global exception accepted that picture...
    glob = filing.file_exception(
        session,
        ADMIN,
        recommendation_id=CHROME,
        justification="AcceptRisk",
        is_global=True,
        duration_days=30,
        as_of=NOW + timedelta(days=4),
    )
    assert exc.status == "Suspended"
    # ...while the older group exception did not: it resurfaces, the global one stays.
    assert lifecycle.resurface_exceptions(session, NOW + timedelta(days=5)) == [exc.id]
    assert glob.status == "InEffect"
