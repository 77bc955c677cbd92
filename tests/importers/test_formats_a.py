"""Parsers for the JSON scanner and SBOM formats (Trivy, Grype, OSV-Scanner, CycloneDX, SPDX,
Microsoft Defender exports, remedium CSV). Pure: no database.

Corpus counts in ``corpus_expected_a.json`` were written down from reading each file with plain
``json``/``ElementTree`` (not these parsers), by the rules documented in ``docs/formats.md``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from remedium.importers.records import (
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)
from remedium.importers.registry import detect_parser, get_parser

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, dict[str, object]] = json.loads(
    (Path(__file__).parent / "corpus_expected_a.json").read_text()
)


def parse(path: Path, fmt: str | None = None) -> tuple[ReportInfo, list[ImportRecord]]:
    parser = get_parser(fmt) if fmt else detect_parser(path)
    with path.open("rb") as stream:
        info, records = parser.parse(stream, path.name)
        return info, list(records)


def of(records: list[ImportRecord], kind: type) -> list:  # type: ignore[type-arg]
    return [r for r in records if isinstance(r, kind)]


def assert_devices_first(records: list[ImportRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if isinstance(record, DeviceRecord):
            seen.add(record.device_ref)
        elif isinstance(record, FindingRecord | SoftwareRecord | ConfigurationResultRecord):
            assert record.device_ref in seen, f"{record} comes before its device"


# -- every corpus file of these formats ------------------------------------------------------


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_corpus_file_parses_exactly_or_is_refused(corpus: Path, relative: str) -> None:
    expected = EXPECTED[relative]
    path = corpus / relative
    fmt = expected["format"]
    if "refused" in expected:
        with pytest.raises(ReportError) as refused:
            parse(path, str(fmt) if fmt else None)
        assert str(expected["refused"]) in str(refused.value)
        assert path.name in str(refused.value)
        return
    assert detect_parser(path).name == fmt
    _info, records = parse(path)
    counts = Counter(type(r).__name__ for r in records)
    assert {
        "devices": counts["DeviceRecord"],
        "software": counts["SoftwareRecord"],
        "findings": counts["FindingRecord"],
        "config_results": counts["ConfigurationResultRecord"],
    } == {k: expected[k] for k in ("devices", "software", "findings", "config_results")}
    if "vex_skipped" in expected:
        vex = [s for s in of(records, SkippedRecord) if "VEX analysis says" in s.reason]
        assert len(vex) == expected["vex_skipped"]
    assert_devices_first(records)
    for finding in of(records, FindingRecord):
        assert finding.vulnerability_id
        # "Unknown": the scanner's own word where it has no rating (Grype), never a default.
        assert finding.severity in ("", "Low", "Medium", "High", "Critical", "Unknown")


def test_every_corpus_file_of_these_formats_has_expected_counts(corpus: Path) -> None:
    folders = [
        "trivy",
        "trivy_operator",
        "grype",
        "osv_scanner",
        "cyclonedx",
        "spdx",
        "ms_defender",
    ]
    on_disk = {
        str(p.relative_to(corpus)) for f in folders for p in (corpus / f).rglob("*") if p.is_file()
    }
    # OpenVEX documents sit in the vex folder beside CSAF files (another engineer's).
    openvex = {"vex/dd_openvex_many_vuln.json", "vex/trivy_oci.openvex.json"}
    assert on_disk | openvex == set(EXPECTED)


# -- Trivy -------------------------------------------------------------------------------------


def test_trivy_image_maps_device_packages_findings_and_misconfigurations() -> None:
    info, records = parse(FIXTURES / "trivy" / "image.json")
    assert info.format == "trivy"
    assert info.scanned_at is not None
    assert info.scanned_at.isoformat() == "2026-03-01T10:00:00.123456+00:00"
    (device,) = of(records, DeviceRecord)
    assert device.name == "registry.example/shop/api:1.4"
    assert device.asset_id == "sha256:aaaa1111"
    assert (device.os_platform, device.os_version) == ("Linux", "debian 12.5")
    assert {(s.vendor, s.product, s.version) for s in of(records, SoftwareRecord)} == {
        ("debian", "openssl", "3.0.11-1"),
        ("debian", "zlib1g", "1:1.2.13"),
    }
    high, unknown = of(records, FindingRecord)
    assert (high.vulnerability_id, high.severity, high.fixed_version) == (
        "CVE-2024-0001",
        "High",
        "3.0.13-1",
    )
    assert high.cvss_v3_score == 7.5
    assert high.purl.startswith("pkg:deb/debian/openssl")
    # No purl: the vendor is the result's ecosystem. An UNKNOWN severity stays unrated.
    assert (unknown.vendor, unknown.severity) == ("debian", "")
    results = {r.configuration_id: r.is_compliant for r in of(records, ConfigurationResultRecord)}
    assert results == {"DS002": False, "DS026": True}
    (secret,) = of(records, SkippedRecord)
    assert "aws-access-key-id" in secret.reason
    assert secret.where == "app/.env"


def test_trivy_truncated_file_is_refused_with_its_place() -> None:
    with pytest.raises(ReportError) as refused:
        parse(FIXTURES / "trivy" / "truncated.json", "trivy")
    message = str(refused.value)
    assert message.startswith("truncated.json: Results[].Vulnerabilities[]")
    assert "malformed JSON" in message


# -- Grype -------------------------------------------------------------------------------------


class _Unseekable(io.RawIOBase):
    """An upload piped through: no seek (Grype's source comes after its matches)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_grype_device_comes_first_although_source_is_written_last() -> None:
    data = (FIXTURES / "grype" / "directory.json").read_bytes()
    info, iterator = get_parser("grype").parse(_Unseekable(data), "directory.json")  # type: ignore[arg-type]
    records = list(iterator)
    assert info.scanned_at is not None
    assert info.scanned_at.year == 2026
    assert isinstance(records[0], DeviceRecord)
    assert (records[0].name, records[0].os_platform) == ("/srv/checkout/webshop", "Other")
    critical, negligible = of(records, FindingRecord)
    # A GHSA match is recorded under the CVE it is related to.
    assert critical.vulnerability_id == "CVE-2024-1111"
    assert (critical.vendor, critical.fixed_version, critical.severity) == (
        "npm",
        "4.17.21",
        "Critical",
    )
    assert negligible.severity == "Low"
    assert len(of(records, SoftwareRecord)) == 1  # one package, two matches


# -- OSV-Scanner -------------------------------------------------------------------------------


def test_osv_scanner_groups_aliases_into_one_cve_finding() -> None:
    _info, records = parse(FIXTURES / "osv_scanner" / "lockfiles.json")
    (device,) = of(records, DeviceRecord)
    assert device.name == "/repo/shop/requirements.txt"
    assert len(of(records, SoftwareRecord)) == 2
    (finding,) = of(records, FindingRecord)
    assert (finding.vulnerability_id, finding.vendor, finding.product) == (
        "CVE-2024-22195",
        "pypi",
        "jinja2",
    )
    assert (finding.fixed_version, finding.severity, finding.cvss_v3_score) == (
        "3.1.3",
        "Medium",
        5.4,
    )


# -- CycloneDX ---------------------------------------------------------------------------------


def test_cyclonedx_json_inventory_findings_and_vex() -> None:
    info, records = parse(FIXTURES / "cyclonedx" / "sbom_with_vex.json")
    assert info.complete_scan is True
    (device,) = of(records, DeviceRecord)
    assert device.name == "billing-service"
    assert {s.product for s in of(records, SoftwareRecord)} == {"parser", "shaded-util", "left-pad"}
    findings = {(f.vulnerability_id, f.product): f for f in of(records, FindingRecord)}
    assert set(findings) == {
        ("CVE-2025-1000", "parser"),
        ("CVE-2025-3000", "shaded-util"),
        ("CVE-2025-3000", "left-pad"),
    }
    exploitable = findings[("CVE-2025-1000", "parser")]
    assert (exploitable.vendor, exploitable.vex_state, exploitable.severity) == (
        "org.example",
        "exploitable",
        "High",
    )
    assert exploitable.cvss_v3_vector.startswith("CVSS:3.1/AV:N")
    (skipped,) = of(records, SkippedRecord)
    assert "not_affected" in skipped.reason
    assert "code_not_reachable" in skipped.reason


def test_cyclonedx_xml_matches_json_mapping() -> None:
    info, records = parse(FIXTURES / "cyclonedx" / "sbom.xml")
    assert info.scanned_at is not None
    (device,) = of(records, DeviceRecord)
    assert (device.name, device.os_platform) == ("registry.example/edge/proxy", "Linux")
    assert [s.vendor for s in of(records, SoftwareRecord)] == ["alpine", "alpine"]
    (finding,) = of(records, FindingRecord)
    assert (finding.product, finding.installed_version, finding.severity) == (
        "busybox",
        "1.36.1-r5",
        "Critical",
    )
    assert "false_positive" in of(records, SkippedRecord)[0].reason


def test_cyclonedx_xml_entity_expansion_is_refused() -> None:
    with pytest.raises(ReportError, match="refused unsafe XML"):
        parse(FIXTURES / "cyclonedx" / "bomb.xml", "cyclonedx")


def test_cyclonedx_vex_only_document_is_not_a_complete_scan(corpus: Path) -> None:
    info, _records = parse(corpus / "cyclonedx" / "vex" / "cdxex_vex_cisa_case3.json")
    assert info.complete_scan is False


# -- SPDX --------------------------------------------------------------------------------------


def test_spdx_subject_is_the_device_and_packages_the_software() -> None:
    _info, records = parse(FIXTURES / "spdx" / "image.spdx.json")
    (device,) = of(records, DeviceRecord)
    assert device.name == "payments"
    software = {s.product: s for s in of(records, SoftwareRecord)}
    assert set(software) == {"curl", "requests"}
    assert software["curl"].vendor == "debian"
    assert software["curl"].cpe.startswith("cpe:2.3:a:haxx")
    assert software["requests"].vendor == "psf"
    (skipped,) = of(records, SkippedRecord)
    assert "internal-docs" in skipped.reason
    assert not of(records, FindingRecord)


# -- Microsoft Defender ------------------------------------------------------------------------


def test_mde_zip_maps_machine_fields_and_unknown_machines(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        # Vulnerabilities first in the archive: machines must still be read first.
        zipped.write(FIXTURES / "mde" / "vulnerabilities.json", "vulnerabilities/page1.json")
        zipped.write(FIXTURES / "mde" / "machines.json", "machines/machines.json")
    assert detect_parser(archive).name == "mde"
    _info, records = parse(archive)
    known, unknown = of(records, DeviceRecord)
    assert (known.name, known.ip_address, known.device_group, known.device_value) == (
        "ws-ana.contoso.com",
        "10.0.4.21",
        "Finance",
        "High",
    )
    assert (known.os_platform, known.is_aad_joined, known.asset_id) == (
        "Windows11",
        True,
        "1e5bc9d7e413ddd7902c2932e418702b84d0cc07",
    )
    assert "exposure:Medium" in known.tags
    assert unknown.name == "ffff000000000000000000000000000000000000"
    windows, chrome = of(records, FindingRecord)
    assert (windows.device_ref, windows.vendor, windows.product, windows.severity) == (
        known.device_ref,
        "microsoft",
        "windows_11",
        "Critical",
    )
    assert chrome.device_ref == unknown.device_ref


def test_mde_zip_with_a_broken_member_names_the_member(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "vulnerabilities/page1.json", '{"@odata.context": "x", "value": [{"cveId": '
        )
    with pytest.raises(ReportError, match=r"export.zip!vulnerabilities/page1.json"):
        parse(archive, "mde")


# -- remedium CSV ------------------------------------------------------------------------------


def test_csv_rows_become_devices_packages_and_findings() -> None:
    path = FIXTURES / "csv" / "findings.csv"
    assert detect_parser(path).name == "csv"
    _info, records = parse(path)
    assert [d.name for d in of(records, DeviceRecord)] == ["web-01", "db-01"]
    assert of(records, DeviceRecord)[1].device_group == "Data"
    assert len(of(records, SoftwareRecord)) == 3
    findings = of(records, FindingRecord)
    assert [(f.vulnerability_id, f.severity) for f in findings] == [
        ("CVE-2024-0001", "High"),
        ("CVE-2024-0002", "Medium"),
    ]
    (skipped,) = of(records, SkippedRecord)
    assert "'severe'" in skipped.reason
    assert skipped.where == "line 6"


def test_csv_with_an_unknown_column_is_refused() -> None:
    with pytest.raises(ReportError, match=r"unknown column.*versoin"):
        parse(FIXTURES / "csv" / "bad_column.csv", "csv")
