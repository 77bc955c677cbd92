"""Matching inventory to vulnerabilities: purls against OSV ranges, CPEs against NVD ranges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.importers.service import import_report
from remedium.intel.feeds.records import AffectedRange
from remedium.intel.importing import import_feed
from remedium.intel.matching import Candidate, affects, match_devices, range_key, release_fits
from remedium.inventory.models import Device, Software, Weakness
from remedium.recommendations.models import Recommendation

FIXTURES = Path(__file__).parent / "fixtures" / "matching"


def weaknesses(session: Session) -> set[tuple[str, str, str, str, bool]]:
    """(device, product, vulnerability, source, open) of every weakness."""
    rows = session.execute(
        select(
            Device.name,
            Software.product,
            Weakness.vulnerability_id,
            Weakness.source,
            Weakness.fixed_at.is_(None),
        )
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
    )
    return {(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows}


def native(tmp_path: Path, scanned_at: str, software: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"inventory-{scanned_at[:10]}.json"
    path.write_text(
        json.dumps(
            {
                "schema": "remedium-inventory/1",
                "source": "cmdb",
                "scanned_at": scanned_at,
                "devices": [
                    {"name": "web-01", "os_platform": "Linux", "software": software},
                ],
            }
        )
    )
    return path


# -- version ranges, pure ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "introduced", "fixed", "last", "spelled", "version", "expected"),
    [
        ("npm", "0", "4.17.21", "", "<4.17.21", "4.17.20", True),
        ("npm", "0", "4.17.21", "", "<4.17.21", "4.17.21", False),
        ("npm", "11.0.0", "11.0.5", "", ">=11.0.0, <11.0.5", "10.2.0", False),
        ("PyPI", "0", "2.0.0", "", "<2.0.0", "2.0.0rc1", True),  # a pre-release comes before
        ("PyPI", "0", "1.26.5", "", "<1.26.5", "1.26.10", False),  # numeric, not text order
        ("Maven", "2.0-beta9", "2.15.0", "", ">=2.0-beta9, <2.15.0", "2.14.1", True),
        ("Maven", "2.0-beta9", "2.15.0", "", ">=2.0-beta9, <2.15.0", "2.15.0", False),
        ("Go", "0", "0.17.0", "", "<0.17.0", "v0.16.0", True),
        ("crates.io", "0", "1.8.4", "", "<1.8.4", "1.8.3", True),
        ("RubyGems", "0", "1.13.6", "", "<1.13.6", "1.13.10", False),
        ("NuGet", "0", "13.0.1", "", "<13.0.1", "12.0.3", True),
        ("Packagist", "0", "7.30.5", "", "<7.30.5", "v7.30.4", True),
        ("Debian:11", "0", "1.1.1n-0+deb11u4", "", "", "1.1.1n-0+deb11u3", True),
        ("Debian:11", "0", "1:2.3-1", "", "", "2.9-1", True),  # the epoch outranks the version
        ("Alpine:v3.18", "0", "3.1.4-r1", "", "", "3.1.4-r0", True),
        ("Red Hat", "0", "1.1.1k-7.el8", "", "", "1.1.1k-6.el8", True),
        ("npm", "0", "", "4.17.9", "<=4.17.9", "4.17.9", True),
        ("npm", "0", "", "4.17.9", "<=4.17.9", "4.18.2", False),
        ("", "", "", "2.4.51", ">2.4.9, <=2.4.51", "2.4.10", True),  # NVD, start excluding
        ("", "", "", "2.4.51", ">2.4.9, <=2.4.51", "2.4.9", False),
        ("", "2.4.49", "", "2.4.49", "=2.4.49", "2.4.49", True),
        ("", "2.4.49", "", "2.4.49", "=2.4.49", "2.4.50", False),
        ("", "0", "1.1.1l", "", "<1.1.1l", "1.1.1k", True),  # letters after numbers
        ("SwiftURL", "0", "2.0", "", "<2.0", "1.0", False),  # unknown order: never guessed
        ("npm", "0", "4.17.21", "", "<4.17.21", "not a version", False),
    ],
)
def test_versions_are_compared_in_each_ecosystems_order(
    ecosystem: str,
    introduced: str,
    fixed: str,
    last: str,
    spelled: str,
    version: str,
    expected: bool,
) -> None:
    candidate = Candidate("CVE-1", ecosystem, introduced, fixed, last, spelled)
    assert affects(candidate, version) is expected


def test_range_keys_join_osv_names_to_the_purls_scanners_write() -> None:
    assert range_key(AffectedRange("X", "npm", "@angular/core")) == "purl:npm/@angular/core"
    assert range_key(AffectedRange("X", "PyPI", "Jinja2")) == "purl:pypi/jinja2"
    assert (
        range_key(AffectedRange("X", "Maven", "org.apache.logging.log4j:log4j-core"))
        == "purl:maven/org.apache.logging.log4j/log4j-core"
    )
    assert range_key(AffectedRange("X", "Debian:12", "openssl")) == "purl:deb/debian/openssl"
    cpe = "cpe:2.3:a:apache:http_server:*:*:*:*:*:*:*:*"
    assert range_key(AffectedRange("X", "", "http_server", cpe=cpe)) == "cpe:apache:http_server"


def test_distribution_ranges_apply_to_their_release_only() -> None:
    assert release_fits("Debian:11", "Linux 11.6")
    assert not release_fits("Debian:11", "Linux 12.1")
    assert release_fits("Ubuntu:22.04:LTS", "Linux Ubuntu 22.04.3 LTS")
    assert release_fits("Debian:11", "Linux")  # the device does not say: keep the range


# -- through the database ------------------------------------------------------------------


def test_sbom_imported_after_osv_gets_matched_weaknesses(session: Session) -> None:
    import_feed(session, FIXTURES / "osv_lodash.json")
    import_feed(session, FIXTURES / "osv_angular.json")
    summary = import_report(session, FIXTURES / "sbom_lodash.cdx.json")
    assert summary.findings_added == 0  # the SBOM itself names no vulnerability
    assert summary.devices_matched == 1
    assert weaknesses(session) == {
        ("shop-frontend", "lodash", "CVE-2021-23337", "match:osv", True),
        ("shop-frontend", "core", "CVE-2021-4231", "match:osv", True),
    }  # express 4.18.2 is after last_affected 4.17.9: not matched
    # The matched weakness counts like any other: a recommendation to update lodash.
    names = set(session.scalars(select(Recommendation.product_name)))
    assert "lodash" in names


def test_osv_imported_after_sbom_rematches_devices_holding_the_package(
    session: Session,
) -> None:
    import_report(session, FIXTURES / "sbom_lodash.cdx.json")
    assert weaknesses(session) == set()
    summary = import_feed(session, FIXTURES / "osv_lodash.json")
    assert summary.ranges_added == 1
    assert summary.devices_matched == 1
    assert weaknesses(session) == {("shop-frontend", "lodash", "CVE-2021-23337", "match:osv", True)}
    again = import_feed(session, FIXTURES / "osv_lodash.json")
    assert (again.ranges_added, again.devices_matched, again.vulnerabilities_added) == (0, 0, 0)
    assert len(weaknesses(session)) == 1


def test_upgraded_package_closes_the_matched_weakness(session: Session) -> None:
    import_feed(session, FIXTURES / "osv_lodash.json")
    import_report(session, FIXTURES / "sbom_lodash.cdx.json")
    import_report(session, FIXTURES / "sbom_lodash_upgraded.cdx.json")
    assert weaknesses(session) == {
        ("shop-frontend", "lodash", "CVE-2021-23337", "match:osv", False)
    }
    fixed_at = session.scalars(select(Weakness.fixed_at)).one()
    assert fixed_at is not None
    assert fixed_at.isoformat().startswith("2026-04-01")


def test_cpe_and_named_software_match_nvd_configurations(session: Session, tmp_path: Path) -> None:
    import_feed(session, FIXTURES / "nvd_httpd.json")
    with_cpe = {
        "vendor": "Apache",
        "product": "HTTP Server",
        "version": "2.4.49",
        "cpe": "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*",
    }
    import_report(session, native(tmp_path, "2026-03-01T00:00:00Z", [with_cpe]))
    assert weaknesses(session) == {
        ("web-01", "http_server", "CVE-2021-41773", "match:nvd", True),
        ("web-01", "http_server", "CVE-2021-44790", "match:nvd", True),
    }
    # Named like NVD's product, without a CPE, version 2.4.9 (excluded start of the range).
    old = {"vendor": "Apache", "product": "http_server", "version": "2.4.9"}
    path = native(tmp_path, "2026-03-02T00:00:00Z", [old])
    path.write_text(path.read_text().replace("web-01", "web-02"))
    import_report(session, path)
    assert not {w for w in weaknesses(session) if w[0] == "web-02"}


def test_scanner_findings_are_never_closed_by_matching(session: Session, tmp_path: Path) -> None:
    import_feed(session, FIXTURES / "nvd_httpd.json")
    path = tmp_path / "scan.json"
    path.write_text(
        json.dumps(
            {
                "schema": "remedium-inventory/1",
                "source": "scanner",
                "scanned_at": "2026-03-01T00:00:00Z",
                "devices": [
                    {
                        "name": "web-03",
                        "os_platform": "Linux",
                        "software": [
                            {"vendor": "apache", "product": "http_server", "version": "2.4.60"}
                        ],
                        "findings": [
                            {
                                "cve": "CVE-2021-41773",
                                "vendor": "apache",
                                "product": "http_server",
                                "installed_version": "2.4.60",
                            }
                        ],
                    }
                ],
            }
        )
    )
    import_report(session, path)
    device_id = session.scalars(select(Device.id)).one()
    assert match_devices(session, [device_id]) == set()
    assert weaknesses(session) == {("web-03", "http_server", "CVE-2021-41773", "scanner", True)}
