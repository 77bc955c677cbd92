"""Findings that name no product (network scanners) placed through the NVD records remedium holds.

A network scan says "CVE-x on host y", not which package. When the vulnerability's NVD record
names one product (its CPE configurations), the weakness is recorded on that product; when it
names several, on the one the device has installed; otherwise the finding is kept on a
placeholder for the scanner's detection, and moved onto the real product when intelligence
arrives. Real files: the intel fixtures (NVD API 2.0) and remedium's documented CSV.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.importers.service import import_report
from remedium.intel.importing import import_feed
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness

INTEL = Path(__file__).parents[1] / "intel" / "fixtures"
HEADER = "device,ip,os_platform,device_group,vendor,product,version,cve,fixed_version,severity\n"


def nvd_record(cve: str, products: list[str]) -> dict[str, Any]:
    """An NVD API 2.0 record whose configurations name ``products`` (``vendor:product``)."""
    matches = [
        {
            "vulnerable": True,
            "criteria": f"cpe:2.3:a:{p}:*:*:*:*:*:*:*:*",
            "versionEndExcluding": "9",
        }
        for p in products
    ]
    return {
        "cve": {
            "id": cve,
            "published": "2024-06-01T00:00:00.000",
            "lastModified": "2024-06-02T00:00:00.000",
            "descriptions": [{"lang": "en", "value": f"{cve} in several products"}],
            "metrics": {},
            "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": matches}]}],
        }
    }


def write_nvd(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "nvd.json"
    path.write_text(
        json.dumps(
            {
                "resultsPerPage": len(records),
                "startIndex": 0,
                "totalResults": len(records),
                "format": "NVD_CVE",
                "version": "2.0",
                "timestamp": "2024-08-01T12:00:00.000",
                "vulnerabilities": records,
            }
        )
    )
    return path


def weaknesses(session: Session) -> set[tuple[str, str, str, str]]:
    rows = session.execute(
        select(Device.name, Software.vendor, Software.product, Weakness.vulnerability_id)
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
    )
    return {(d, v, p, c) for d, v, p, c in rows}


def test_a_finding_without_product_lands_on_the_product_nvd_names(
    session: Session, tmp_path: Path
) -> None:
    import_feed(session, INTEL / "nvd_api2.json")  # CVE-2024-0001: example server; 0002: none
    report = tmp_path / "scan.csv"
    report.write_text(
        HEADER
        + "scan-01,10.9.0.1,Linux,Lab,,,,CVE-2024-0001,,High\n"
        + "scan-01,10.9.0.1,Linux,Lab,,,,CVE-2024-0002,,Medium\n"
    )
    summary = import_report(session, report)
    assert summary.findings_placed == 1
    assert summary.findings_on_detection == 1
    assert summary.findings_added == 2
    assert summary.skipped == []
    assert weaknesses(session) == {
        ("scan-01", "example", "server", "CVE-2024-0001"),
        ("scan-01", "csv_detection", "cve-2024-0002", "CVE-2024-0002"),
    }
    software = session.scalars(select(Software).where(Software.product == "server")).one()
    assert software.cpe_prefix == "cpe:2.3:a:example:server"
    # The product counts as installed (version unknown), so the recommendation has a device.
    installed = session.scalars(select(InstalledSoftware.version)).all()
    assert installed == ["", ""]
    # Importing the same scan again changes nothing.
    again = import_report(session, report)
    # (nor counts again as placed what is already in place)
    assert (again.findings_added, again.findings_updated, again.findings_placed) == (0, 0, 0)
    assert again.findings_on_detection == 0


def test_several_products_place_the_finding_on_the_one_installed(
    session: Session, tmp_path: Path
) -> None:
    import_feed(
        session, write_nvd(tmp_path, [nvd_record("CVE-2024-7777", ["acme:alpha", "acme:beta"])])
    )
    report = tmp_path / "scan.csv"
    report.write_text(
        HEADER
        + "host-b,10.9.0.2,Linux,Lab,acme,beta,2.1,,,\n"  # beta installed on host-b
        + "host-b,10.9.0.2,Linux,Lab,,,,CVE-2024-7777,,High\n"
        + "host-c,10.9.0.3,Linux,Lab,,,,CVE-2024-7777,,High\n"  # neither installed
    )
    summary = import_report(session, report)
    # host-c has neither: the finding stays on the scanner's detection, not on a guess.
    assert weaknesses(session) == {
        ("host-b", "acme", "beta", "CVE-2024-7777"),
        ("host-c", "csv_detection", "cve-2024-7777", "CVE-2024-7777"),
    }
    assert (summary.findings_placed, summary.findings_on_detection) == (1, 1)
    assert summary.skipped == []


def test_without_intelligence_the_finding_is_kept_on_the_detection_then_moved(
    session: Session, tmp_path: Path
) -> None:
    report = tmp_path / "scan.csv"
    report.write_text(HEADER + "scan-02,10.9.0.4,Linux,Lab,,,,CVE-2024-0001,,High\n")
    summary = import_report(session, report)
    assert (summary.findings_placed, summary.findings_on_detection) == (0, 1)
    assert summary.skipped == []
    # Kept, visible under a placeholder named for the scanner's detection: nothing invented.
    assert weaknesses(session) == {("scan-02", "csv_detection", "cve-2024-0001", "CVE-2024-0001")}
    placeholder = session.scalars(select(Software)).one()
    assert (placeholder.display_vendor, placeholder.display_name) == (
        "Csv Detection",
        "CVE-2024-0001",
    )
    assert placeholder.purl_type == "detection"
    # Intelligence arrives: the weakness moves onto the product NVD names, with its history.
    first_seen = session.scalars(select(Weakness.first_seen)).one()
    import_feed(session, INTEL / "nvd_api2.json")
    session.flush()
    assert weaknesses(session) == {("scan-02", "example", "server", "CVE-2024-0001")}
    assert session.scalars(select(Weakness.first_seen)).one() == first_seen
    installed = session.execute(
        select(Software.product).join(
            InstalledSoftware, InstalledSoftware.software_id == Software.id
        )
    )
    assert set(installed.scalars()) == {"server"}
    # A later scan of the same host keeps the one weakness (now placed), not a second copy.
    again = import_report(session, report)
    assert (again.findings_added, again.findings_placed, again.findings_on_detection) == (0, 0, 0)
