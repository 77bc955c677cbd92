"""Parsers for XML scanners, SCAP configuration results and Wazuh (issue 4, part B).

Every corpus file of these formats is parsed and its records counted against
``corpus_expected_b.json``, whose numbers were written down from reading the files themselves
(ElementTree / json, not these parsers). Small hand-written fixtures pin the field mapping.
"""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from remedium.importers import registry
from remedium.importers.batches import UNNAMED
from remedium.importers.formats.nessus import NessusParser
from remedium.importers.formats.nessus_csv import NessusCsvParser
from remedium.importers.formats.openscap import OpenSCAPParser
from remedium.importers.formats.openvas import OpenVASParser
from remedium.importers.formats.openvas_csv import OpenVASCsvParser
from remedium.importers.formats.qualys import QualysParser
from remedium.importers.formats.qualys_csv import QualysCsvParser
from remedium.importers.formats.wazuh import WazuhParser
from remedium.importers.records import (
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportParser,
    SkippedRecord,
    SoftwareRecord,
)

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HERE / "corpus_expected_b.json").read_text())
MINE = {
    "nessus",
    "openvas",
    "qualys",
    "openscap",
    "wazuh",
    "nessus_csv",
    "openvas_csv",
    "qualys_csv",
}
PARSERS: dict[str, ReportParser] = {
    "nessus": NessusParser(),
    "openvas": OpenVASParser(),
    "qualys": QualysParser(),
    "openscap": OpenSCAPParser(),
    "wazuh": WazuhParser(),
    "nessus_csv": NessusCsvParser(),
    "openvas_csv": OpenVASCsvParser(),
    "qualys_csv": QualysCsvParser(),
}
# The parser a corpus folder's files belong to (files of other formats there must be refused by it).
FOLDER_PARSER = {
    "nessus": "nessus",
    "openvas": "openvas",
    "qualys": "qualys",
    "openscap": "openscap",
    "wazuh": "wazuh",
    "inventory": "wazuh",
}


def parse(parser: ReportParser, path: Path) -> list[ImportRecord]:
    with path.open("rb") as stream:
        _info, records = parser.parse(stream, path.name)
        return list(records)


def counts(records: list[ImportRecord]) -> dict[str, int]:
    kinds = Counter(type(r) for r in records)
    return {
        "devices": kinds[DeviceRecord],
        "software": kinds[SoftwareRecord],
        "findings": kinds[FindingRecord],
        "config_results": kinds[ConfigurationResultRecord],
        "config_checks": kinds[ConfigurationCheckRecord],
        "skipped": kinds[SkippedRecord],
    }


def of(records: list[ImportRecord], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


# --- every corpus file ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_parses_to_the_expected_counts_or_is_refused(corpus: Path, name: str) -> None:
    expected = EXPECTED[name]
    path = corpus / name
    parser = PARSERS[expected["format"] or FOLDER_PARSER[name.split("/", 1)[0]]]
    if "refused" in expected:
        with pytest.raises(ReportError) as refused:
            parse(parser, path)
        message = str(refused.value)
        assert path.name in message
        if expected["format"]:
            assert expected["refused"] in message
        return
    records = parse(parser, path)
    want = {
        k: expected[k]
        for k in ("devices", "software", "findings", "config_results", "config_checks", "skipped")
    }
    assert counts(records) == want
    if "hotfixes" in expected:
        assert sum(len(d.hotfixes) for d in of(records, DeviceRecord)) == expected["hotfixes"]
    # Devices come before the records that name them, and every reference resolves (or is
    # UNNAMED: the device given on import, for a report that names none).
    known: set[str] = {UNNAMED}
    for record in records:
        if isinstance(record, DeviceRecord):
            assert record.device_ref != UNNAMED
            known.add(record.device_ref)
        elif isinstance(record, FindingRecord | SoftwareRecord | ConfigurationResultRecord):
            assert record.device_ref in known
    for finding in of(records, FindingRecord):
        assert finding.severity in {"Low", "Medium", "High", "Critical", ""}
        assert finding.vulnerability_id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detection_picks_the_right_parser_for_corpus_files(corpus: Path, name: str) -> None:
    expected = EXPECTED[name]
    path = corpus / name
    if expected["format"] is None:
        # Not one of these formats (CSV exports, log lines): none of these parsers may claim it.
        try:
            chosen = registry.detect_parser(path).name
        except ReportError:
            return
        assert chosen not in MINE
        return
    assert registry.detect_parser(path).name == expected["format"]


# --- Nessus --------------------------------------------------------------------------------------


def test_nessus_maps_hosts_and_one_finding_per_cve() -> None:
    records = parse(NessusParser(), FIXTURES / "nessus" / "two_hosts.nessus")
    app, printer = of(records, DeviceRecord)
    assert (app.device_ref, app.name, app.ip_address) == (
        "10.1.2.3",
        "app01.example.test",
        "10.1.2.3",
    )
    assert app.os_platform == "WindowsServer2019"
    assert app.last_seen == datetime.fromtimestamp(1700000000, tz=UTC)
    assert (printer.name, printer.ip_address) == ("printer.example.test", "")
    findings = of(records, FindingRecord)
    assert [(f.device_ref, f.vulnerability_id) for f in findings] == [
        ("10.1.2.3", "CVE-2023-0001"),
        ("10.1.2.3", "CVE-2023-0002"),
        ("printer.example.test", "CVE-2022-1234"),
    ]
    web = findings[0]
    assert (web.vendor, web.product, web.installed_version, web.fixed_version) == (
        "example",
        "web_server",
        "2.4.50",
        "2.4.58",
    )
    assert (web.severity, web.cvss_v3_score) == ("High", 8.1)
    assert findings[2].severity == "Critical"
    reasons = {s.reason: s.where for s in of(records, SkippedRecord)}
    assert set(reasons) == {"informational (severity 0)", "no CVE"}
    assert "pluginID=900002" in reasons["no CVE"]


def test_nessus_truncated_file_is_refused_with_the_place() -> None:
    with pytest.raises(
        ReportError, match=r"truncated\.nessus: line \d+, column \d+: not well-formed XML"
    ):
        parse(NessusParser(), FIXTURES / "nessus" / "truncated.nessus")


def test_xml_entity_bombs_are_refused_not_expanded() -> None:
    with pytest.raises(ReportError, match="declares entities"):
        parse(NessusParser(), FIXTURES / "nessus" / "entity_bomb.nessus")


def test_nessus_memory_stays_flat_as_the_file_grows() -> None:
    def report(hosts: int) -> bytes:
        item = (
            '<ReportItem port="443" severity="2" pluginID="{n}" pluginName="p">'
            "<cve>CVE-2024-{n:05d}</cve><description>" + "x" * 400 + "</description></ReportItem>"
        )
        body = "".join(
            f'<ReportHost name="h{h}"><HostProperties>'
            f'<tag name="host-ip">10.0.{h // 250}.{h % 250}</tag>'
            "</HostProperties>" + "".join(item.format(n=i) for i in range(20)) + "</ReportHost>"
            for h in range(hosts)
        )
        head = '<?xml version="1.0"?><NessusClientData_v2><Report name="r">'
        return f"{head}{body}</Report></NessusClientData_v2>".encode()

    def peak(data: bytes) -> tuple[int, int]:
        tracemalloc.start()
        _info, records = NessusParser().parse(BytesIO(data), "big.nessus")
        findings = sum(1 for r in records if isinstance(r, FindingRecord))
        _current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return findings, top

    small, big = report(40), report(400)  # ~0.4 MB and ~4 MB
    small_findings, small_peak = peak(small)
    big_findings, big_peak = peak(big)
    assert (small_findings, big_findings) == (800, 8000)
    # Tracked memory excludes the input bytes themselves; the parse must not keep the tree.
    assert big_peak < small_peak * 2 + 1_000_000


# --- OpenVAS -------------------------------------------------------------------------------------


def test_openvas_results_become_findings_per_cve_on_their_host() -> None:
    parser = OpenVASParser()
    with (FIXTURES / "openvas" / "report.xml").open("rb") as stream:
        info, iterator = parser.parse(stream, "report.xml")
        records = list(iterator)
    assert info.scanned_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    devices = of(records, DeviceRecord)
    assert [(d.device_ref, d.name, d.ip_address) for d in devices] == [
        ("192.0.2.10", "db01.example.test", "192.0.2.10"),
        ("192.0.2.11", "192.0.2.11", "192.0.2.11"),
    ]
    findings = of(records, FindingRecord)
    assert [f.vulnerability_id for f in findings] == ["CVE-2024-1111", "CVE-2024-2222"]
    assert findings[0].title == "Example Database Server Multiple Vulnerabilities"
    assert (findings[0].installed_version, findings[0].fixed_version, findings[0].severity) == (
        "15.1",
        "15.6",
        "High",
    )
    assert [s.reason for s in of(records, SkippedRecord)] == ["informational (Log)", "no CVE"]


# --- Qualys --------------------------------------------------------------------------------------


def test_qualys_detections_map_qids_to_cves_from_the_glossary() -> None:
    records = parse(QualysParser(), FIXTURES / "qualys" / "asset_data_report.xml")
    devices = of(records, DeviceRecord)
    assert [(d.device_ref, d.name, d.os_platform) for d in devices] == [
        ("198.51.100.7", "files.example.test", "Linux"),
        ("198.51.100.8", "WS-0008", "Windows10"),
    ]
    findings = of(records, FindingRecord)
    assert [(f.vulnerability_id, f.severity) for f in findings] == [
        ("CVE-2024-0100", "Critical"),
        ("CVE-2024-0101", "Critical"),
    ]
    assert findings[0].cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert findings[0].cvss_v3_score == 9.8
    assert [s.reason for s in of(records, SkippedRecord)] == [
        "informational (information gathered)",
        "fixed",
        "no CVE",
    ]


def test_qualys_reads_a_stream_that_cannot_seek() -> None:
    class OneWay(BytesIO):
        def seekable(self) -> bool:
            return False

    data = (FIXTURES / "qualys" / "asset_data_report.xml").read_bytes()
    _info, records = QualysParser().parse(OneWay(data), "piped.xml")
    assert sum(isinstance(r, FindingRecord) for r in records) == 2


# --- OpenSCAP ------------------------------------------------------------------------------------


def test_xccdf_rules_become_checks_and_rule_results_become_configuration_results() -> None:
    records = parse(OpenSCAPParser(), FIXTURES / "openscap" / "xccdf12-results.xml")
    checks = {
        c.configuration_id.rsplit("_rule_", 1)[1]: c for c in of(records, ConfigurationCheckRecord)
    }
    assert {k: (c.category, c.weight) for k, c in checks.items()} == {
        "accounts_password_minlen": ("Accounts", 8.0),
        "enable_firewalld": ("Network", 5.0),
        "disable_ipv6_redirects": ("Network", 3.0),
        "grub2_password": ("Accounts", 5.0),
    }
    minlen = checks["accounts_password_minlen"]
    assert minlen.name == "Set the minimum password length"
    assert minlen.remediation.startswith("Set minlen = 14")
    assert minlen.benchmarks == ("xccdf_test.remedium_benchmark_fixture",)
    (device,) = of(records, DeviceRecord)
    assert (device.name, device.ip_address, device.os_platform) == (
        "web01.example.test",
        "10.20.30.40",
        "Linux",
    )
    results = {
        r.configuration_id.rsplit("_rule_", 1)[1]: r.is_compliant
        for r in of(records, ConfigurationResultRecord)
    }
    assert results == {
        "accounts_password_minlen": False,
        "enable_firewalld": True,
        "grub2_password": True,
    }
    assert [s.reason for s in of(records, SkippedRecord)] == ["rule result notapplicable"]


# --- Wazuh ---------------------------------------------------------------------------------------


def test_wazuh_api_export_findings_name_their_agent() -> None:
    records = parse(WazuhParser(), FIXTURES / "wazuh" / "api_export.json")
    (device,) = of(records, DeviceRecord)
    assert (device.device_ref, device.name, device.ip_address, device.asset_id) == (
        "003",
        "web-03",
        "10.0.0.3",
        "003",
    )
    openssl, curl, zlib = of(records, FindingRecord)
    assert (openssl.product, openssl.installed_version, openssl.fixed_version) == (
        "openssl",
        "3.0.2-0ubuntu1.10",
        "3.0.2-0ubuntu1.12",
    )
    assert openssl.device_ref == curl.device_ref == "003"
    # "-" is no severity: the CVSS score decides.
    assert (openssl.severity, curl.severity, curl.fixed_version) == ("Medium", "Critical", "")
    # An item naming no agent belongs to the device given on import (test_unnamed_device.py).
    assert (zlib.device_ref, zlib.vulnerability_id) == (UNNAMED, "CVE-2022-37434")
    assert not of(records, SkippedRecord)


def test_wazuh_indexer_findings_carry_a_purl_for_distribution_packages() -> None:
    records = parse(WazuhParser(), FIXTURES / "wazuh" / "indexer_export.json")
    (device,) = of(records, DeviceRecord)
    assert (device.name, device.os_platform, device.os_version) == ("build-01", "Linux", "12")
    xz, left_pad = of(records, FindingRecord)
    assert xz.purl == "pkg:deb/debian/xz-utils@5.6.0-0.2?arch=amd64"
    assert (xz.vendor, xz.fixed_version, xz.cvss_v3_score) == (
        "debian",
        "5.6.1+really5.4.5-1",
        10.0,
    )
    # No CVE: the report's own id stays, as for the other formats.
    assert (left_pad.vulnerability_id, left_pad.purl) == (
        "GHSA-xxxx-yyyy-zzzz",
        "pkg:npm/left-pad@1.0.0",
    )
    assert (left_pad.vendor, left_pad.severity) == ("npm", "Low")
    assert not of(records, SkippedRecord)


def test_wazuh_syscollector_inventory_gives_software_os_and_hotfixes() -> None:
    parser = WazuhParser()
    with (FIXTURES / "wazuh" / "syscollector_input.json").open("rb") as stream:
        info, iterator = parser.parse(stream, "syscollector_input.json")
        records = list(iterator)
    assert info.complete_scan is False  # inventory carries no findings: absent ones mean nothing
    (device,) = of(records, DeviceRecord)
    assert (device.device_ref, device.name, device.os_platform) == (
        "007",
        "dev-laptop",
        "Windows11",
    )
    software = of(records, SoftwareRecord)
    assert [(s.vendor, s.display_name, s.version, s.is_operating_system) for s in software] == [
        ("microsoft", "Microsoft Windows 11 Pro", "10.0.22631.3447", True),
        ("mozilla", "Mozilla Firefox (x64 en-US)", "124.0.2", False),
        ("igor_pavlov", "7-Zip 23.01 (x64)", "23.01", False),
    ]
    assert [s.reason for s in of(records, SkippedRecord)] == [
        "removed from the inventory (delete operation)"
    ]

    hotfix_records = parse(parser, FIXTURES / "wazuh" / "agent_hotfixes.json")
    (agent,) = of(hotfix_records, DeviceRecord)
    assert agent.hotfixes == ("KB5034441", "KB5035845")
    assert of(hotfix_records, SkippedRecord)[0].where == "102"


def test_wazuh_broken_json_is_refused_with_the_path() -> None:
    with pytest.raises(
        ReportError, match=r"broken\.json: at data\.affected_items\.item: broken JSON"
    ):
        parse(WazuhParser(), FIXTURES / "wazuh" / "broken.json")


@pytest.mark.parametrize("directory", sorted(PARSERS))
def test_detection_picks_each_parser_for_its_own_fixtures(directory: str) -> None:
    for path in sorted((FIXTURES / directory).iterdir()):
        if path.name.startswith(("broken", "truncated")):
            continue
        assert registry.detect_parser(path).name == directory, path.name


def _read_all(parser: ReportParser, data: bytes, filename: str) -> int:
    _info, records = parser.parse(BytesIO(data), filename)
    return sum(1 for _ in records)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_empty_input_is_refused(name: str) -> None:
    with pytest.raises(ReportError, match=f"empty.{name}"):
        _read_all(PARSERS[name], b"", f"empty.{name}")
