"""CSV exports of Nessus/Tenable, OpenVAS/Greenbone and Qualys (issue 4).

Hand-written fixtures pin the field mapping of each layout; some mirror the XML fixtures of
``test_formats_b.py`` so the CSV and XML parsers are checked to agree on the same scan. Real
corpus files check the layouts as the scanners write them (their counts are in
``corpus_expected_b.json``, checked by ``test_formats_b.py``).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from remedium.importers import registry
from remedium.importers.formats.csv_report import CsvReportParser
from remedium.importers.formats.nessus import NessusParser
from remedium.importers.formats.nessus_csv import NessusCsvParser
from remedium.importers.formats.openvas import OpenVASParser
from remedium.importers.formats.openvas_csv import OpenVASCsvParser
from remedium.importers.formats.qualys import QualysParser
from remedium.importers.formats.qualys_csv import QualysCsvParser
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    ReportParser,
    SkippedRecord,
)

FIXTURES = Path(__file__).parent / "fixtures"
CSV_PARSERS: dict[str, ReportParser] = {
    "nessus_csv": NessusCsvParser(),
    "openvas_csv": OpenVASCsvParser(),
    "qualys_csv": QualysCsvParser(),
}


def read(parser: ReportParser, path: Path) -> tuple[ReportInfo, list[ImportRecord]]:
    with path.open("rb") as stream:
        info, records = parser.parse(stream, path.name)
        return info, list(records)


def of(records: list[ImportRecord], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


def reasons(records: list[ImportRecord]) -> list[str]:
    return [s.reason for s in of(records, SkippedRecord)]


def finding_facts(records: list[ImportRecord]) -> list[tuple[object, ...]]:
    """Each finding's fields, with its device given by name (refs differ between layouts)."""
    names = {d.device_ref: d.name for d in of(records, DeviceRecord)}
    return [
        (
            names[f.device_ref],
            f.vulnerability_id,
            f.vendor,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_vector,
            f.cvss_v3_score,
            f.title,
            f.description,
        )
        for f in of(records, FindingRecord)
    ]


def assert_devices_come_first(records: list[ImportRecord]) -> None:
    known: set[str] = set()
    for record in records:
        if isinstance(record, DeviceRecord):
            assert record.device_ref not in known  # one record per host
            known.add(record.device_ref)
        elif isinstance(record, FindingRecord):
            assert record.device_ref in known


# --- Nessus / Tenable ----------------------------------------------------------------------------


def test_nessus_csv_maps_hosts_and_one_finding_per_cve() -> None:
    info, records = read(NessusCsvParser(), FIXTURES / "nessus_csv" / "nessus.csv")
    assert (info.format, info.source, info.complete_scan, info.scanned_at) == (
        "nessus_csv",
        "nessus",
        False,  # a CSV export cannot prove it is whole: --complete says so
        None,
    )
    assert_devices_come_first(records)
    logs, smb = of(records, DeviceRecord)
    # "Host" is a name: it is the device; the extra columns give its IP, NetBIOS name and OS.
    assert (logs.device_ref, logs.name, logs.ip_address) == (
        "logs01.example.test",
        "logs01.example.test",
        "192.0.2.40",
    )
    assert (logs.os_platform, logs.os_version) == ("Linux", "Linux Kernel 5.15.0 on Ubuntu 22.04")
    assert logs.last_seen == datetime(2024, 5, 2, 10, 30, tzinfo=UTC)
    # "Host" is an IP and no IP column is filled: the IP is the device's name and address.
    assert (smb.device_ref, smb.name, smb.ip_address, smb.os_platform) == (
        "192.0.2.41",
        "192.0.2.41",
        "192.0.2.41",
        "",
    )
    findings = of(records, FindingRecord)
    # One row listing two CVEs (one per line of its cell) gives two findings.
    assert [(f.device_ref, f.vulnerability_id) for f in findings] == [
        ("logs01.example.test", "CVE-2021-44228"),
        ("logs01.example.test", "CVE-2021-45046"),
        ("192.0.2.41", "CVE-2017-0144"),
        ("192.0.2.41", "CVE-2020-1234"),
    ]
    log4j = findings[0]
    assert (log4j.installed_version, log4j.fixed_version, log4j.severity) == (
        "2.14.1",
        "2.16.0",
        "Critical",
    )
    assert log4j.cvss_v3_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert log4j.cvss_v3_score == 10.0
    assert log4j.title == "Apache Log4j < 2.16.0 RCE (Log4Shell)"
    assert log4j.description == "The remote host has a vulnerable Log4j library."
    assert (log4j.vendor, log4j.product) == ("", "")  # the classic layout names no CPE
    # "81" is no CVSS score (this template drops the decimal point): left out, not guessed.
    assert findings[2].cvss_v3_score is None
    skipped = of(records, SkippedRecord)
    assert [s.reason for s in skipped] == [
        "informational (severity 0)",
        "fixed",
        "no CVE",
        "not a CVE id: 'NOCVE'",
    ]
    assert skipped[0].where == "line 10 (host logs01.example.test, plugin 19506, port 0)"


def test_tenable_sc_csv_agrees_with_the_xml_parser_on_the_same_scan() -> None:
    # tenable_sc.csv holds the scan of fixtures/nessus/two_hosts.nessus, plus one agent host.
    _info, records = read(NessusCsvParser(), FIXTURES / "nessus_csv" / "tenable_sc.csv")
    _xml_info, xml_records = read(NessusParser(), FIXTURES / "nessus" / "two_hosts.nessus")
    assert_devices_come_first(records)
    app, printer, agent = of(records, DeviceRecord)
    xml_app, xml_printer = of(xml_records, DeviceRecord)
    for csv_device, xml_device in ((app, xml_app), (printer, xml_printer)):
        assert (csv_device.name, csv_device.ip_address) == (xml_device.name, xml_device.ip_address)
    # Without a "Host" column a host is known by its host id, else its DNS name, else its IP.
    assert (app.device_ref, printer.device_ref) == ("app01.example.test", "printer.example.test")
    assert (agent.device_ref, agent.asset_id, agent.name, agent.ip_address) == (
        "5d1c2f3e-0000-4000-8000-00000000abcd",
        "5d1c2f3e-0000-4000-8000-00000000abcd",
        "10.1.2.9",
        "10.1.2.9",
    )
    facts = finding_facts(records)
    assert facts[:3] == finding_facts(xml_records)
    # The product comes from the first CPE of the cell, as the XML parser reads <cpe>.
    assert facts[0][2:4] == ("example", "web_server")
    assert facts[3][:2] == ("10.1.2.9", "CVE-2024-7777")
    assert reasons(records) == reasons(xml_records) == ["informational (severity 0)", "no CVE"]


def test_tenable_io_export_is_read_with_its_semicolons() -> None:
    _info, records = read(NessusCsvParser(), FIXTURES / "nessus_csv" / "tenable_io.csv")
    (device,) = of(records, DeviceRecord)
    assert (device.device_ref, device.asset_id, device.name, device.ip_address) == (
        "0b5e3c2a-1111-4222-8333-944455556666",
        "0b5e3c2a-1111-4222-8333-944455556666",
        "build01.example.test",
        "10.9.0.5",
    )
    assert (device.os_platform, device.os_version) == ("Linux", "CentOS Linux 7 (Core)")
    first, second = of(records, FindingRecord)
    assert (first.vulnerability_id, second.vulnerability_id) == ("CVE-2022-21619", "CVE-2022-21624")
    # The finding's own severity, not the plugin's (definition.severity).
    assert first.severity == "Medium"
    assert (first.cvss_v3_vector, first.cvss_v3_score) == (
        "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:N/I:H/A:N",
        5.3,
    )
    # A package CPE (p-cpe) is not a CPE the XML parser reads either: no product.
    assert (first.vendor, first.product) == ("", "")
    assert reasons(records) == ["informational (severity 0)", "fixed"]


def test_real_tenable_export_maps_host_columns(corpus: Path) -> None:
    _info, records = read(NessusCsvParser(), corpus / "nessus" / "dd_tenable_many_vuln.csv")
    first = of(records, DeviceRecord)[0]
    assert (first.device_ref, first.ip_address, first.os_platform) == (
        "ip-127-0-0-1.us-west-2.compute.internal",
        "127.0.0.1",
        "Linux",
    )
    assert first.last_seen == datetime(2023, 6, 8, 1, 58, 56, 166000, tzinfo=UTC)
    kernel = of(records, FindingRecord)[0]
    assert (kernel.vulnerability_id, kernel.severity, kernel.cvss_v3_score) == (
        "CVE-2023-32233",
        "High",
        7.8,
    )
    assert kernel.cvss_v3_vector == "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
    assert kernel.title == "Amazon Linux 2 : kernel (ALAS-2023-2050)"


def test_real_tenable_sc_export_splits_cve_cells_and_reads_cpes(corpus: Path) -> None:
    _info, records = read(NessusCsvParser(), corpus / "nessus" / "dd_nessus_many_vuln.csv")
    findings = of(records, FindingRecord)
    assert [(f.device_ref, f.vulnerability_id) for f in findings] == [
        ("10.1.1.1", "CVE-2004-2761"),
        ("10.2.1.1", "CVE-2013-2566"),
        ("10.2.1.1", "CVE-2015-2808"),
    ]
    assert (findings[0].vendor, findings[0].product) == ("ietf", "md5")
    assert reasons(records) == ["no CVE", "no CVE"]


def test_real_tenable_io_export_keys_devices_by_asset_id(corpus: Path) -> None:
    _info, records = read(NessusCsvParser(), corpus / "nessus" / "dd_nessus_new.csv")
    devices = of(records, DeviceRecord)
    assert all(d.device_ref == d.asset_id for d in devices)
    assert (devices[0].name, devices[0].ip_address) == ("Blah1", "10.0.0.1")
    title = "CentOS 7 : java-1.8.0-openjdk (CESA-2022:7002)"
    multi = [f for f in of(records, FindingRecord) if f.title == title]
    assert {f.vulnerability_id for f in multi} == {
        "CVE-2022-21619",
        "CVE-2022-21624",
        "CVE-2022-21626",
        "CVE-2022-21628",
    }


# --- OpenVAS / Greenbone -------------------------------------------------------------------------


def test_openvas_csv_agrees_with_the_xml_parser_on_the_same_report() -> None:
    # results.csv holds the results of fixtures/openvas/report.xml.
    info, records = read(OpenVASCsvParser(), FIXTURES / "openvas_csv" / "results.csv")
    xml_info, xml_records = read(OpenVASParser(), FIXTURES / "openvas" / "report.xml")
    assert (info.format, info.source) == ("openvas_csv", "openvas")
    assert info.scanned_at == xml_info.scanned_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert_devices_come_first(records)
    assert of(records, DeviceRecord) == of(xml_records, DeviceRecord)
    assert of(records, FindingRecord) == of(xml_records, FindingRecord)
    findings = of(records, FindingRecord)
    assert [f.vulnerability_id for f in findings] == ["CVE-2024-1111", "CVE-2024-2222"]
    assert (findings[0].installed_version, findings[0].fixed_version) == ("15.1", "15.6")
    assert findings[0].title == "Example Database Server Multiple Vulnerabilities"
    assert reasons(records) == reasons(xml_records) == ["informational (Log)", "no CVE"]
    assert of(records, SkippedRecord)[1].where == "line 10 (result r3, host 192.0.2.11)"


def test_openvas_csv_cve_scan_results_name_their_cve_in_the_oid() -> None:
    _info, records = read(OpenVASCsvParser(), FIXTURES / "openvas_csv" / "cve_scan.csv")
    findings = of(records, FindingRecord)
    assert [(f.vulnerability_id, f.severity) for f in findings] == [
        ("CVE-2021-26690", "High"),
        # No severity word: the CVSS score's rating, as the XML parser does.
        ("CVE-2024-3333", "Critical"),
    ]
    assert reasons(records) == ["informational (False Positive)"]


def test_real_openvas_exports(corpus: Path) -> None:
    _info, records = read(
        OpenVASCsvParser(), corpus / "openvas" / "dd_openvas_report_using_CVE.csv"
    )
    findings = of(records, FindingRecord)
    assert len({f.vulnerability_id for f in findings}) == 43
    assert {f.severity for f in findings} == {"High", "Medium"}
    _info, records = read(
        OpenVASCsvParser(), corpus / "openvas" / "dd_openvas_report_using_openVAS.csv"
    )
    assert sorted(set(reasons(records))) == ["informational (Log)", "no CVE"]


# --- Qualys --------------------------------------------------------------------------------------


def test_qualys_scan_report_with_metadata_agrees_with_the_xml_parser() -> None:
    # Host 198.51.100.7 of scan_report.csv is the host of fixtures/qualys/asset_data_report.xml.
    info, records = read(QualysCsvParser(), FIXTURES / "qualys_csv" / "scan_report.csv")
    xml_info, xml_records = read(QualysParser(), FIXTURES / "qualys" / "asset_data_report.xml")
    # A CSV export fixes nothing unless the user says it is complete (--complete).
    assert (info.format, info.source, info.complete_scan) == ("qualys_csv", "qualys", False)
    assert info.may_be_complete
    # "Launch Date" 09:00 GMT+0100 is the XML report's 08:00Z.
    assert info.scanned_at == xml_info.scanned_at == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert_devices_come_first(records)
    files, workstation = of(records, DeviceRecord)
    assert files == of(xml_records, DeviceRecord)[0]
    assert (workstation.name, workstation.os_platform) == ("WS-0009", "Windows10")

    def host_findings(found: list[ImportRecord]) -> list[FindingRecord]:
        return [f for f in of(found, FindingRecord) if f.device_ref == "198.51.100.7"]

    assert host_findings(records) == host_findings(xml_records)
    tls = host_findings(records)[0]
    assert (tls.vulnerability_id, tls.severity, tls.cvss_v3_score) == (
        "CVE-2024-0100",
        "Critical",
        9.8,
    )
    assert tls.cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert reasons(records) == reasons(xml_records)
    assert reasons(records) == ["informational (information gathered)", "fixed", "no CVE"]
    windows = of(records, FindingRecord)[-1]
    assert (windows.device_ref, windows.vulnerability_id, windows.severity) == (
        "198.51.100.9",
        "CVE-2024-0200",
        "High",
    )


def test_qualys_vmdr_cve_list_reads_its_metadata_and_assets() -> None:
    info, records = read(QualysCsvParser(), FIXTURES / "qualys_csv" / "vmdr_cve.csv")
    # "01 Mar 2024 03:00AM GMT-0500" in the title row.
    assert info.scanned_at == datetime(2024, 3, 1, 8, tzinfo=UTC)
    app, ubuntu = of(records, DeviceRecord)
    assert (app.device_ref, app.asset_id, app.name, app.ip_address, app.os_platform) == (
        "qualys-asset:4001",
        "qualys-asset:4001",
        "APP01",
        "10.1.0.5",  # the first of the asset's addresses
        "WindowsServer2019",
    )
    assert (ubuntu.name, ubuntu.ip_address) == ("2001:db8::5", "2001:db8::5")
    first, second = of(records, FindingRecord)
    assert (first.vulnerability_id, first.severity, first.cvss_v3_score) == (
        "CVE-2024-5000",
        "High",
        7.5,
    )
    assert (second.vulnerability_id, second.cvss_v3_score) == ("CVE-2024-5001", None)
    assert first.title == "Example Service Vulnerabilities"
    # Skip reasons as the host detection XML gives them.
    assert reasons(records) == [
        "fixed",
        "informational (information gathered)",
        "ignored in Qualys",
    ]


def test_qualys_vmdr_qid_list_is_not_a_complete_scan() -> None:
    info, records = read(QualysCsvParser(), FIXTURES / "qualys_csv" / "vmdr_qid.csv")
    # Without CVEs nothing it lacks may be taken as fixed.
    assert info.complete_scan is False
    assert "QID-based" in info.notes[0]
    assert len(of(records, DeviceRecord)) == 1
    assert reasons(records) == ["no CVE"]


def test_qualys_pci_report_uses_the_qualys_severity_level() -> None:
    _info, records = read(QualysCsvParser(), FIXTURES / "qualys_csv" / "pci.csv")
    (device,) = of(records, DeviceRecord)
    assert (device.device_ref, device.name, device.os_platform) == (
        "192.0.2.80",
        "shop.example.test",
        "Linux",
    )
    (finding,) = of(records, FindingRecord)
    assert (finding.vulnerability_id, finding.severity, finding.title) == (
        "CVE-2023-44487",
        "High",
        "Example HTTP/2 Rapid Reset",
    )
    assert reasons(records) == ["informational (information gathered)"]


def test_real_qualys_exports(corpus: Path) -> None:
    info, records = read(QualysCsvParser(), corpus / "qualys" / "dd_qualys_Sample_Report.csv")
    assert info.scanned_at is None  # this export has no metadata rows
    device = of(records, DeviceRecord)[0]
    assert (device.name, device.os_platform) == (
        "ip-10-98-57-180.eu-west-1.compute.internal",
        "WindowsServer2016",
    )
    update = of(records, FindingRecord)
    assert len(update) == 23  # one row naming 23 CVEs
    assert update[0].cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"
    info, records = read(QualysCsvParser(), corpus / "qualys" / "dd_qualys_vmdr_many_vulns_cve.csv")
    assert info.scanned_at == datetime(2026, 2, 4, 15, tzinfo=UTC)
    assert [d.name for d in of(records, DeviceRecord)] == [
        "SERVER01",
        "SERVER02",
        "DBSERVER01",
        "WORKSTATION01",
        "APPSERVER01",
    ]


# --- every parser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("nessus_csv", "the Nessus header row lacks the column(s) CVE"),
        ("openvas_csv", "the OpenVAS header row lacks the column(s) Severity or CVSS, CVEs"),
        ("qualys_csv", "line 5: the Qualys scan report header row lacks the column(s) Severity"),
    ],
)
def test_a_header_missing_required_columns_is_refused_with_their_names(
    name: str, missing: str
) -> None:
    path = FIXTURES / name / "broken_missing_columns.csv"
    assert registry.detect_parser(path).name == name  # recognised, so the refusal is precise
    with pytest.raises(ReportError, match=r"broken_missing_columns\.csv") as refused:
        read(CSV_PARSERS[name], path)
    assert missing in str(refused.value)


@pytest.mark.parametrize("name", sorted(CSV_PARSERS))
def test_a_file_of_another_layout_given_by_name_is_refused_naming_what_it_lacks(
    name: str,
) -> None:
    other = FIXTURES / "csv" / "findings.csv"
    with pytest.raises(ReportError, match=r"findings\.csv: .*not a .* CSV export"):
        read(CSV_PARSERS[name], other)


@pytest.mark.parametrize("name", sorted(CSV_PARSERS))
def test_an_export_without_rows_is_refused(name: str) -> None:
    # A header and no row reads exactly like an export cut after its header: it proves nothing.
    with pytest.raises(ReportError, match=r"empty_export\.csv: line \d+: a header and no rows"):
        read(CSV_PARSERS[name], FIXTURES / name / "empty_export.csv")


@pytest.mark.parametrize("name", sorted(CSV_PARSERS))
def test_a_csv_export_cannot_prove_it_is_complete(name: str) -> None:
    readable = [
        p
        for p in sorted((FIXTURES / name).glob("*.csv"))
        if not p.name.startswith(("empty", "broken"))
    ]
    for fixture in readable:
        info, _records = read(CSV_PARSERS[name], fixture)
        assert info.complete_scan is False, fixture.name


@pytest.mark.parametrize("name", sorted(CSV_PARSERS))
def test_detection_picks_the_right_parser_and_no_other_claims_the_file(name: str) -> None:
    fixtures = sorted((FIXTURES / name).glob("*.csv"))
    assert len(fixtures) >= 3
    others = [p for n, p in CSV_PARSERS.items() if n != name] + [CsvReportParser()]
    for path in fixtures:
        head = path.read_bytes()[: registry.SNIFF_BYTES]
        assert registry.detect_parser(path).name == name, path.name
        assert not [p.name for p in others if p.sniff(head, path.name)], path.name
    # remedium's own CSV is not claimed by any of them.
    own = (FIXTURES / "csv" / "findings.csv").read_bytes()
    assert not any(p.sniff(own, "findings.csv") for p in CSV_PARSERS.values())


def test_a_row_with_a_wrong_number_of_values_refuses_the_file_at_its_line() -> None:
    data = b'Plugin ID,CVE,Risk,Host\n1,CVE-2024-0001,High,h1\n2,"CVE-2024-\n0002",High\n'
    with pytest.raises(ReportError, match=r"cut\.csv: line 3: 3 values for 4 columns"):
        list(NessusCsvParser().parse(BytesIO(data), "cut.csv")[1])


def test_text_that_is_not_utf8_is_refused_at_its_line() -> None:
    data = b"Plugin ID,CVE,Risk,Host\n1,CVE-2024-0001,High,h\xe9\n"
    with pytest.raises(ReportError, match=r"latin1\.csv: line \d+: unreadable CSV"):
        list(NessusCsvParser().parse(BytesIO(data), "latin1.csv")[1])


def _nessus_rows(rows: int) -> bytes:
    head = "Plugin ID,CVE,Risk,Host,Name,Plugin Output\n"
    output = '"' + "line of plugin output\n" * 20 + '"'
    body = "".join(
        f"{n},CVE-2024-{n:05d},High,host{n % 50},Plugin {n},{output}\n" for n in range(rows)
    )
    return (head + body).encode()


def _openvas_rows(rows: int) -> bytes:
    head = "IP,Hostname,CVSS,Severity,NVT Name,Specific Result,NVT OID,CVEs\n"
    body = "".join(
        f'10.0.0.{n % 50},,7.5,High,NVT {n},"{"x" * 400}",1.3.6.1.{n},CVE-2024-{n:05d}\n'
        for n in range(rows)
    )
    return (head + body).encode()


def _qualys_rows(rows: int) -> bytes:
    head = '"Asset Vuln Datalist Report","01 Mar 2024 03:00AM GMT-0500","1"\n'
    head += '"CVE","QID","Title","Severity","Status","Asset Id","Asset Name","Results"\n'
    body = "".join(
        f'"CVE-2024-{n:05d}","{n}","QID {n}","4","ACTIVE","{n % 50}","a{n % 50}","{"r" * 400}"\n'
        for n in range(rows)
    )
    return (head + body).encode()


@pytest.mark.parametrize(
    ("name", "build"),
    [("nessus_csv", _nessus_rows), ("openvas_csv", _openvas_rows), ("qualys_csv", _qualys_rows)],
)
def test_memory_stays_flat_as_the_export_grows(name: str, build: Callable[[int], bytes]) -> None:
    def peak(data: bytes) -> tuple[int, int]:
        tracemalloc.start()
        _info, records = CSV_PARSERS[name].parse(BytesIO(data), "big.csv")
        findings = sum(1 for r in records if isinstance(r, FindingRecord))
        _current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return findings, top

    small, big = build(1_000), build(10_000)  # ~0.5 MB and ~5 MB
    small_findings, small_peak = peak(small)
    big_findings, big_peak = peak(big)
    assert (small_findings, big_findings) == (1_000, 10_000)
    # Tracked memory excludes the input bytes themselves; rows are not kept.
    assert big_peak < small_peak * 2 + 1_000_000
