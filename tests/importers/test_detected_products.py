"""Network scanners: the affected product is the one the scanner detected.

OpenVAS names it in a result's ``<detection>`` (or, for a result exported without it, through the
host details gvmd derives ``<detection>`` from), its CSV export in ``Product Detection Result``;
Nessus in the plugin's ``<cpe>`` (one CPE a line; the first names the product), with versions from
the plugin output or the host's detected CPEs (``cpe-0``, ``cpe-1``…). Hand-written fixtures pin
each rule; the corpus counts (``findings_with_product``, ``weaknesses`` in
``corpus_expected_b.json``) were written down by reading the files with ElementTree and csv.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.importers.batches import DETECTION
from remedium.importers.formats import openvas
from remedium.importers.formats._xmlstream import cpe_vendor_product, detected_cpe
from remedium.importers.formats.nessus import NessusParser
from remedium.importers.formats.nessus_csv import NessusCsvParser
from remedium.importers.formats.openvas import OpenVASParser
from remedium.importers.formats.openvas_csv import OpenVASCsvParser
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportParser,
)
from remedium.importers.registry import get_parser
from remedium.importers.service import import_report
from remedium.intel.importing import import_feed
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HERE / "corpus_expected_b.json").read_text())
NETWORK_SCANNERS = ("nessus", "nessus_csv", "openvas", "openvas_csv")
CORPUS_FILES = sorted(
    name
    for name, expected in EXPECTED.items()
    if expected["format"] in NETWORK_SCANNERS and "refused" not in expected
)

# (vulnerability, vendor, product, installed version) of each finding.
Product = tuple[str, str, str, str]


def parse(parser: ReportParser, path: Path) -> list[ImportRecord]:
    with path.open("rb") as stream:
        _info, records = parser.parse(stream, path.name)
        return list(records)


def findings(records: list[ImportRecord]) -> list[FindingRecord]:
    return [r for r in records if isinstance(r, FindingRecord)]


def products(records: list[ImportRecord]) -> dict[str, Product]:
    """Each finding's product and version, by vulnerability id (one finding per CVE here)."""
    return {
        f.vulnerability_id: (f.vulnerability_id, f.vendor, f.product, f.installed_version)
        for f in findings(records)
    }


def assert_devices_come_first(records: list[ImportRecord]) -> None:
    known: set[str] = set()
    for record in records:
        if isinstance(record, DeviceRecord):
            known.add(record.device_ref)
        elif isinstance(record, FindingRecord):
            assert record.device_ref in known


# --- OpenVAS / Greenbone XML ---------------------------------------------------------------------


def test_openvas_findings_land_on_the_product_of_their_detection() -> None:
    records = parse(OpenVASParser(), FIXTURES / "openvas" / "detected_products.xml")
    assert_devices_come_first(records)
    found = products(records)
    # The detection's CPE names the product; its version stands in for "Installed version:".
    assert found["CVE-2021-41773"] == ("CVE-2021-41773", "apache", "http_server", "2.4.49")
    assert found["CVE-2021-42013"] == ("CVE-2021-42013", "apache", "http_server", "2.4.49")
    # A CPE 2.3 without a version: the description's "Installed version:" is the version.
    assert found["CVE-2024-3001"] == ("CVE-2024-3001", "example", "db", "15.1")
    # An operating system CPE names a product too.
    assert found["CVE-2024-3004"] == ("CVE-2024-3004", "canonical", "ubuntu_linux", "22.04")
    # A hardware CPE does not.
    assert found["CVE-2024-3003"] == ("CVE-2024-3003", "", "", "")
    fixed = {f.vulnerability_id: f.fixed_version for f in findings(records)}
    assert (fixed["CVE-2024-3001"], fixed["CVE-2021-41773"]) == ("15.7", "")


def test_openvas_results_without_detection_are_tied_through_the_host_details() -> None:
    records = parse(OpenVASParser(), FIXTURES / "openvas" / "detected_products.xml")
    found = products(records)
    # detected_by@443/tcp names the nginx detection; its cpe:… detail at 443/tcp the product.
    assert found["CVE-2021-23017"] == ("CVE-2021-23017", "nginx", "nginx", "1.20.0")
    # general/tcp: detected_at gives the location (an installation path) of the product.
    assert found["CVE-2023-4573"] == ("CVE-2023-4573", "mozilla", "firefox", "116.0.3")
    # No detected_by for the NVT: nginx and OpenSSL listen on 443/tcp, but the port names
    # no product; the finding stays without one (the import places it through NVD data).
    assert found["CVE-2014-0224"] == ("CVE-2014-0224", "", "", "")
    # The detection found the framework at two versions: which one is affected is not said.
    assert found["CVE-2024-3002"] == ("CVE-2024-3002", "", "", "")
    # Every result still gives its findings, once.
    assert sorted(found) == sorted(f.vulnerability_id for f in findings(records))
    assert len(findings(records)) == 9


def test_openvas_holds_a_bounded_number_of_findings_for_the_host_details(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openvas, "HOLD_LIMIT", 2)
    records = parse(OpenVASParser(), FIXTURES / "openvas" / "detected_products.xml")
    assert_devices_come_first(records)
    found = products(records)
    # The first two held findings were released without their host details to stay in bounds:
    # they keep no product (the import places them through NVD data) but are not lost.
    assert found["CVE-2021-23017"][1:3] == ("", "")
    assert found["CVE-2023-4573"][1:3] == ("", "")
    assert len(findings(records)) == 9
    # Findings whose result names its detection are not held at all.
    assert found["CVE-2021-41773"][1:3] == ("apache", "http_server")


def test_real_openvas_reports_without_detection_keep_their_findings(corpus: Path) -> None:
    # The DefectDojo samples carry neither <detection> nor host details (<detail/>).
    records = parse(OpenVASParser(), corpus / "openvas" / "dd_openvas_one_vuln.xml")
    assert {(f.vendor, f.product, f.installed_version) for f in findings(records)} == {
        ("", "", "116.0.3")
    }
    records = parse(OpenVASParser(), corpus / "openvas" / "dd_openvas_many_vuln.xml")
    assert_devices_come_first(records)
    assert len(findings(records)) == 55
    assert all(not f.product for f in findings(records))


# --- OpenVAS / Greenbone CSV ---------------------------------------------------------------------


def test_openvas_csv_reads_the_product_detection_result() -> None:
    records = parse(OpenVASCsvParser(), FIXTURES / "openvas_csv" / "detected_products.csv")
    found = products(records)
    # "Product: cpe:…\nMethod: …\n(OID: …)", as GSA writes it.
    assert found["CVE-2021-41773"] == ("CVE-2021-41773", "apache", "http_server", "2.4.49")
    # "cpe:2.3:… (OID: …)": the specific result's "Installed version:" wins over the CPE's.
    assert found["CVE-2024-3001"] == ("CVE-2024-3001", "example", "db", "15.1")
    assert found["CVE-2014-0224"] == ("CVE-2014-0224", "", "", "")  # no detection
    assert found["CVE-2024-3003"] == ("CVE-2024-3003", "", "", "")  # hardware
    assert found["CVE-2024-3004"] == ("CVE-2024-3004", "canonical", "ubuntu_linux", "22.04")


def test_openvas_csv_agrees_with_the_xml_on_the_same_results() -> None:
    csv_found = products(
        parse(OpenVASCsvParser(), FIXTURES / "openvas_csv" / "detected_products.csv")
    )
    xml_found = products(parse(OpenVASParser(), FIXTURES / "openvas" / "detected_products.xml"))
    assert csv_found == {cve: xml_found[cve] for cve in csv_found}


def test_real_openvas_cve_scan_export_names_apache(corpus: Path) -> None:
    path = corpus / "openvas" / "dd_openvas_report_using_CVE.csv"
    records = parse(OpenVASCsvParser(), path)
    assert {(f.vendor, f.product, f.installed_version) for f in findings(records)} == {
        ("apache", "http_server", "2.4.7")
    }
    assert len(findings(records)) == 43


# --- Nessus --------------------------------------------------------------------------------------


def test_nessus_takes_the_first_cpe_of_a_multi_line_cpe() -> None:
    records = parse(NessusParser(), FIXTURES / "nessus" / "detected_products.nessus")
    found = products(records)
    # <cpe>cpe:/o:microsoft:windows\ncpe:/a:microsoft:remote_desktop_protocol</cpe>: once
    # product "windows\ncpe" and version "/a". The host's CPE names windows_server_2019, another
    # product: no version is borrowed from it.
    assert found["CVE-2012-0002"] == ("CVE-2012-0002", "microsoft", "windows", "")


def test_real_multi_line_cpe_names_its_first_product(corpus: Path) -> None:
    # dd_nessus_v_unknown.xml, plugin 58453 (no CVE, so its findings are skipped in the file).
    root = ET.parse(corpus / "nessus" / "dd_nessus_v_unknown.xml").getroot()
    cpe_texts = {
        item.findtext("cpe") or ""
        for item in root.iter("ReportItem")
        if item.get("pluginID") == "58453"
    }
    assert cpe_texts == {"cpe:/o:microsoft:windows\ncpe:/a:microsoft:remote_desktop_protocol"}
    (text,) = cpe_texts
    assert cpe_vendor_product(detected_cpe(text.split())) == ("microsoft", "windows", "")


def test_nessus_installed_version_from_the_output_else_the_detected_cpes() -> None:
    records = parse(NessusParser(), FIXTURES / "nessus" / "detected_products.nessus")
    found = products(records)
    # No "Installed version :": the host's cpe-1 names php at one version.
    assert found["CVE-2024-4577"] == ("CVE-2024-4577", "php", "php", "8.1.2")
    # The host lists nginx at two versions: which one is affected is not said.
    assert found["CVE-2021-23017"] == ("CVE-2021-23017", "nginx", "nginx", "")
    # The plugin output states the version.
    assert found["CVE-2024-3101"] == ("CVE-2024-3101", "example", "library", "1.4.2")
    # The item lists 20.04 and 22.04: the host's detected 22.04 decides.
    assert found["CVE-2024-3202"] == ("CVE-2024-3202", "canonical", "ubuntu_linux", "22.04")
    # The host's detection wins over the version the plugin's CPE names.
    assert found["CVE-2024-3203"] == ("CVE-2024-3203", "canonical", "ubuntu_linux", "22.04")


def test_nessus_names_no_product_it_did_not_detect() -> None:
    records = parse(NessusParser(), FIXTURES / "nessus" / "detected_products.nessus")
    found = products(records)
    assert found["CVE-2024-3102"][1:] == ("", "", "")  # a hardware CPE first
    assert found["CVE-2024-3201"][1:] == ("", "", "")  # a package CPE (p-cpe) first
    # No <cpe>: the host's CPEs are not guessed onto the finding (nor is the title read).
    assert found["CVE-2017-0144"][1:] == ("", "", "")


def test_nessus_csv_reads_the_cpe_cell_like_the_xml() -> None:
    records = parse(NessusCsvParser(), FIXTURES / "nessus_csv" / "detected_products.csv")
    found = products(records)
    assert found["CVE-2024-3201"][1:] == ("", "", "")  # p-cpe first
    # Two versions of the product in the cell, and no host CPEs in a CSV: no version.
    assert found["CVE-2024-3202"] == ("CVE-2024-3202", "canonical", "ubuntu_linux", "")
    # One version in the cell: the plugin only fires on that release.
    assert found["CVE-2024-3204"] == ("CVE-2024-3204", "canonical", "ubuntu_linux", "22.04")
    # The plugin output wins over the CPE's version ("1.4").
    assert found["CVE-2024-3101"] == ("CVE-2024-3101", "example", "library", "1.4.2")
    assert found["CVE-2024-3102"][1:] == ("", "", "")  # hardware first
    # The same item as XML and as a CSV row names the same product.
    xml_found = products(parse(NessusParser(), FIXTURES / "nessus" / "detected_products.nessus"))
    assert found["CVE-2024-3101"] == xml_found["CVE-2024-3101"]


# --- Corpus: findings with a product, and the weaknesses an import records -----------------------


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_findings_with_a_detected_product(corpus: Path, name: str) -> None:
    expected = EXPECTED[name]
    records = parse(get_parser(expected["format"]), corpus / name)
    with_product = [f for f in findings(records) if f.product]
    assert len(findings(records)) == expected["findings"]
    assert len(with_product) == expected["findings_with_product"]


@pytest.mark.parametrize(
    "name",
    [
        # PostgreSQL imports the one file whose products are all detected.
        n if "CVE" in n else pytest.param(n, marks=pytest.mark.sqlite_only)
        for n in CORPUS_FILES
        if EXPECTED[n]["findings"]
    ],
)
def test_corpus_import_records_weaknesses_on_detected_products(
    corpus: Path, session: Session, name: str
) -> None:
    expected = EXPECTED[name]
    summary = import_report(session, corpus / name)
    session.flush()
    on_products = (
        session.query(Weakness)
        .join(Software, Software.id == Weakness.software_id)
        .filter(Software.purl_type.is_distinct_from(DETECTION))
    )
    assert on_products.count() == expected["weaknesses"]
    # Without intelligence, the findings that name no product stay on the scanner's detection.
    without = expected["findings"] - expected["findings_with_product"]
    # One weakness per (device, detection, CVE): repeats in the file are counted once.
    assert 0 < summary.findings_on_detection <= without or without == 0
    assert "finding without an affected product" not in {s["reason"] for s in summary.skipped}
    on_detection = session.query(Weakness).count() - on_products.count()
    assert (on_detection > 0) == (without > 0)


# --- Through the import pipeline -----------------------------------------------------------------


def weaknesses(session: Session) -> set[tuple[str, str, str, str, str]]:
    rows = session.execute(
        select(
            Device.name,
            Software.vendor,
            Software.product,
            Weakness.vulnerability_id,
            Weakness.installed_version,
        )
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
        # The findings kept on the scanner's detection are checked apart.
        .where(Software.purl_type.is_distinct_from(DETECTION))
    )
    return {(name, vendor, product, cve, version) for name, vendor, product, cve, version in rows}


def write_nvd(tmp_path: Path, products: dict[str, str]) -> Path:
    """An NVD API 2.0 file whose record of each CVE names one product (``vendor:product``)."""
    records = [
        {
            "cve": {
                "id": cve,
                "published": "2024-06-01T00:00:00.000",
                "lastModified": "2024-06-02T00:00:00.000",
                "descriptions": [{"lang": "en", "value": f"{cve} in {product}"}],
                "metrics": {},
                "configurations": [
                    {
                        "nodes": [
                            {
                                "operator": "OR",
                                "cpeMatch": [
                                    {
                                        "vulnerable": True,
                                        "criteria": f"cpe:2.3:a:{product}:*:*:*:*:*:*:*:*",
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        }
        for cve, product in products.items()
    ]
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


def test_import_records_the_weakness_on_the_detected_product_and_version(
    session: Session,
) -> None:
    summary = import_report(session, FIXTURES / "openvas" / "detected_products.xml")
    session.flush()
    web, gw = "web01.example.test", "gw01.example.test"
    assert weaknesses(session) == {
        (web, "apache", "http_server", "CVE-2021-41773", "2.4.49"),
        (web, "apache", "http_server", "CVE-2021-42013", "2.4.49"),
        (web, "example", "db", "CVE-2024-3001", "15.1"),
        (web, "nginx", "nginx", "CVE-2021-23017", "1.20.0"),
        (web, "mozilla", "firefox", "CVE-2023-4573", "116.0.3"),
        (gw, "canonical", "ubuntu_linux", "CVE-2024-3004", "22.04"),
    }
    # The detected product counts as installed at the detected version.
    installed = session.execute(
        select(Device.name, Software.product, InstalledSoftware.version)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .join(Software, Software.id == InstalledSoftware.software_id)
        .where(Software.purl_type.is_distinct_from(DETECTION))
    )
    assert set(installed) == {
        (web, "http_server", "2.4.49"),
        (web, "db", "15.1"),
        (web, "nginx", "1.20.0"),
        (web, "firefox", "116.0.3"),
        (gw, "ubuntu_linux", "22.04"),
    }
    # Without NVD data the three findings that name no product stay on the NVT that found them.
    assert summary.findings_on_detection == 3
    assert "finding without an affected product" not in {s["reason"] for s in summary.skipped}


def test_detected_products_are_kept_and_only_the_others_are_placed(
    session: Session, tmp_path: Path
) -> None:
    # NVD names f5's nginx for CVE-2021-23017 and OpenSSL for CVE-2014-0224.
    import_feed(
        session,
        write_nvd(tmp_path, {"CVE-2021-23017": "f5:nginx", "CVE-2014-0224": "openssl:openssl"}),
    )
    summary = import_report(session, FIXTURES / "openvas" / "detected_products.xml")
    session.flush()
    found = {(v, p, cve) for _d, v, p, cve, _version in weaknesses(session)}
    assert ("nginx", "nginx", "CVE-2021-23017") in found  # the scanner's product, not NVD's
    assert ("f5", "nginx", "CVE-2021-23017") not in found
    assert ("openssl", "openssl", "CVE-2014-0224") in found  # named no product: placed
    assert summary.findings_placed == 1
