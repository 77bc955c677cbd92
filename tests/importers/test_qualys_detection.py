"""Qualys VMDR host list detection output, zipped with the KnowledgeBase output (issue 4).

The hand-written fixtures (``fixtures/qualys/host_detection.xml`` and ``knowledge_base.xml``) pin
the field mapping; the zips are built here from them. The shared corpus holds no detection output,
so the real-file test takes the hosts of the corpus's asset data report (read with ElementTree)
and proves a detection listing of the same hosts lands on the same devices.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.importers import registry
from remedium.importers.formats.qualys import QualysParser
from remedium.importers.formats.qualys_detection import NEEDS_KNOWLEDGE_BASE, TRUNCATED
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)
from remedium.importers.service import import_report
from remedium.inventory.models import Device, Software, Weakness

FIXTURES = Path(__file__).parent / "fixtures" / "qualys"
DETECTION = (FIXTURES / "host_detection.xml").read_bytes()
KNOWLEDGE_BASE = (FIXTURES / "knowledge_base.xml").read_bytes()
REMEDIUM = Path(sys.executable).with_name("remedium")


def zipped(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def listing() -> bytes:
    return zipped(("host_detection.xml", DETECTION), ("knowledge_base.xml", KNOWLEDGE_BASE))


def parse(data: bytes, filename: str = "qualys.zip") -> tuple[ReportInfo, list[ImportRecord]]:
    info, records = QualysParser().parse(io.BytesIO(data), filename)
    return info, list(records)


def of(records: list[ImportRecord], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


def detection_page(hosts: str, when: str = "2024-06-01T12:00:00Z", more: bool = False) -> bytes:
    warning = (
        "<WARNING><CODE>1980</CODE><TEXT>1000 record limit exceeded.</TEXT>"
        "<URL><![CDATA[https://qualysapi.example.test/api/2.0/fo/asset/host/vm/detection/"
        "?action=list&id_min=9000]]></URL></WARNING>"
        if more
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE>'
        f"<DATETIME>{when}</DATETIME><HOST_LIST>{hosts}</HOST_LIST>{warning}"
        "</RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>"
    ).encode()


def host(host_id: str, *, ip: str = "", dns: str = "", detections: str = "") -> str:
    return (
        f"<HOST><ID>{host_id}</ID><IP>{ip}</IP><TRACKING_METHOD>IP</TRACKING_METHOD>"
        + (f"<DNS><![CDATA[{dns}]]></DNS>" if dns else "")
        + f"<DETECTION_LIST>{detections}</DETECTION_LIST></HOST>"
    )


def detection(qid: str, status: str = "Active", severity: str = "5") -> str:
    return (
        f"<DETECTION><QID>{qid}</QID><TYPE>Confirmed</TYPE><SEVERITY>{severity}</SEVERITY>"
        f"<STATUS>{status}</STATUS></DETECTION>"
    )


# --- recognising the documents -------------------------------------------------------------------


def test_sniff_recognises_both_documents_and_zips_of_them() -> None:
    parser = QualysParser()
    assert parser.sniff(DETECTION[:65536], "d.xml")
    assert parser.sniff(KNOWLEDGE_BASE[:65536], "kb.xml")
    assert parser.sniff(listing()[:65536], "q.zip")
    # KnowledgeBase first, stored rather than deflated: still recognised.
    stored = zipped(("a_kb.xml", KNOWLEDGE_BASE), ("b.xml", DETECTION), method=zipfile.ZIP_STORED)
    assert parser.sniff(stored[:65536], "q.zip")
    # Written to a stream that cannot seek, the sizes follow the data: the first member decides.
    unseekable = io.BytesIO()
    with zipfile.ZipFile(_NoSeek(unseekable), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("host_detection.xml", DETECTION)
    assert parser.sniff(unseekable.getvalue()[:65536], "q.zip")
    # Zips of other things are left to their parsers (Defender zips hold machines/*.json).
    machines = zipped(("machines/page1.json", b'{"@odata.context": "x", "value": []}'))
    assert not parser.sniff(machines[:65536], "mde.zip")
    assert not parser.sniff(b"<HOST_LIST_OUTPUT><RESPONSE/></HOST_LIST_OUTPUT>", "hosts.xml")


class _NoSeek(io.RawIOBase):
    def __init__(self, target: io.BytesIO) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.target.write(data)


def test_registry_detects_the_zip_as_qualys(tmp_path: Path) -> None:
    path = tmp_path / "vmdr-export.zip"
    path.write_bytes(listing())
    assert registry.detect_parser(path).name == "qualys"


# --- field mapping -------------------------------------------------------------------------------


def test_hosts_become_devices_with_the_qualys_host_id_as_asset_id() -> None:
    info, records = parse(listing())
    assert (info.format, info.source, info.complete_scan) == ("qualys", "qualys", True)
    assert info.scanned_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    web, workstation, bare = of(records, DeviceRecord)
    assert (web.device_ref, web.asset_id, web.name, web.ip_address) == (
        "qualys:2973339",
        "qualys:2973339",
        "web-01.corp.example.test",  # DNS_DATA/FQDN before NETBIOS
        "10.20.0.5",
    )
    assert (web.os_platform, web.os_version) == ("Linux", "Ubuntu Linux 22.04.4 LTS")
    assert web.tags == ("Production", "Web Servers")
    assert web.last_seen == datetime(2024, 5, 31, 22, 5, tzinfo=UTC)  # LAST_VM_SCANNED_DATE
    assert (workstation.name, workstation.os_platform, workstation.asset_id) == (
        "WS-0006",
        "Windows10",
        "qualys:2973340",
    )
    assert (bare.name, bare.ip_address, bare.os_platform, bare.last_seen) == (
        "10.20.0.7",
        "10.20.0.7",
        "",
        None,
    )


def test_each_cve_of_a_detections_qid_is_a_finding_with_knowledge_base_facts() -> None:
    _info, records = parse(listing())
    findings = of(records, FindingRecord)
    assert [
        (f.device_ref, f.vulnerability_id, f.severity, f.vendor, f.product) for f in findings
    ] == [
        ("qualys:2973339", "CVE-2024-0100", "Critical", "openssl", "openssl"),
        ("qualys:2973339", "CVE-2024-0101", "Critical", "openssl", "openssl"),
        # Several products listed: the one the host's OS names.
        ("qualys:2973340", "CVE-2024-21001", "High", "microsoft", "windows_10"),
        ("qualys:2973340", "CVE-2024-21002", "High", "microsoft", "windows_10"),
        # The detection's SEVERITY (4) wins over the KnowledgeBase's level (5).
        ("qualys:2973341", "CVE-2024-0100", "High", "openssl", "openssl"),
        ("qualys:2973341", "CVE-2024-0101", "High", "openssl", "openssl"),
        # Several products and no OS to choose by: no product rather than a guess.
        ("qualys:2973341", "CVE-2024-21001", "High", "", ""),
        ("qualys:2973341", "CVE-2024-21002", "High", "", ""),
    ]
    tls = findings[0]
    assert tls.title == "Example TLS Library Multiple Vulnerabilities"
    assert (tls.cvss_v3_vector, tls.cvss_v3_score) == (
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        9.8,
    )
    # A vector without its prefix gets the KnowledgeBase's CVSS3_VERSION.
    assert findings[2].cvss_v3_vector == "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
    assert findings[2].cvss_v3_score == 7.8


def test_fixed_info_disabled_ignored_and_unmapped_detections_are_skipped_with_reasons() -> None:
    _info, records = parse(listing())
    assert [(s.reason, s.where) for s in of(records, SkippedRecord)] == [
        (
            "informational (information gathered)",
            "host_detection.xml: HOST qualys:2973339 / QID 6",
        ),
        ("fixed", "host_detection.xml: HOST qualys:2973339 / QID 38002"),
        ("no CVE", "host_detection.xml: HOST qualys:2973339 / QID 38003"),
        ("disabled in Qualys", "host_detection.xml: HOST qualys:2973339 / QID 38004"),
        (
            "QID not in the KnowledgeBase output",
            "host_detection.xml: HOST qualys:2973340 / QID 99999",
        ),
        ("ignored in Qualys", "host_detection.xml: HOST qualys:2973340 / QID 38001"),
    ]


def test_devices_come_before_their_findings_and_repeated_cves_are_one_finding() -> None:
    page = detection_page(
        host("7", ip="10.9.0.1", detections=detection("38001") + detection("38001"))
        + host("8", ip="10.9.0.2")
    )
    _info, records = parse(zipped(("d.xml", page), ("kb.xml", KNOWLEDGE_BASE)))
    assert [type(r).__name__ for r in records] == [
        "DeviceRecord",
        "FindingRecord",
        "FindingRecord",
        "DeviceRecord",  # a host without detections is still a device
    ]


# --- refusals ------------------------------------------------------------------------------------


def test_a_detection_file_alone_is_refused_asking_for_the_knowledge_base() -> None:
    with pytest.raises(ReportError) as refused:
        parse(DETECTION, "host_detection.xml")
    message = str(refused.value)
    assert message.startswith("host_detection.xml: ")
    assert "KnowledgeBase output" in message
    assert "zip both" in message
    assert NEEDS_KNOWLEDGE_BASE in message


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("d.xml", DETECTION)], NEEDS_KNOWLEDGE_BASE),
        ([("kb.xml", KNOWLEDGE_BASE)], "the zip holds no Qualys host detection output"),
        ([("readme.txt", b"hello")], "the zip holds no Qualys host detection output"),
    ],
)
def test_zips_missing_a_document_are_refused(
    members: list[tuple[str, bytes]], message: str
) -> None:
    with pytest.raises(ReportError, match=r"^export\.zip: ") as refused:
        parse(zipped(*members), "export.zip")
    assert message in str(refused.value)


def test_knowledge_base_alone_and_cve_based_output_are_refused_clearly() -> None:
    with pytest.raises(ReportError, match="describes QIDs, not hosts"):
        parse(KNOWLEDGE_BASE, "kb.xml")
    cve_based = (
        b"<HOST_LIST_CVE_VM_DETECTION_OUTPUT><RESPONSE/></HOST_LIST_CVE_VM_DETECTION_OUTPUT>"
    )
    with pytest.raises(ReportError, match=r"CVE-based host detection output .* is not read"):
        parse(cve_based, "cve.xml")


def test_a_broken_member_is_refused_with_the_member_and_place() -> None:
    broken = DETECTION.replace(b"</HOST_LIST>", b"</HOST_LIS>")
    with pytest.raises(
        ReportError,
        match=r"^q\.zip!host_detection\.xml: line \d+, column \d+: not well-formed XML",
    ):
        parse(zipped(("host_detection.xml", broken), ("kb.xml", KNOWLEDGE_BASE)), "q.zip")


def test_other_files_in_the_zip_are_skipped_with_a_reason() -> None:
    data = zipped(
        ("host_detection.xml", DETECTION),
        ("knowledge_base.xml", KNOWLEDGE_BASE),
        ("notes.txt", b"pulled by the nightly job"),
    )
    _info, records = parse(data)
    assert of(records, SkippedRecord)[-1] == SkippedRecord(
        "not a Qualys host detection or KnowledgeBase output", "notes.txt"
    )


# --- pages of one listing ------------------------------------------------------------------------


def test_pages_are_read_in_order_and_a_missing_last_page_is_reported() -> None:
    first = detection_page(host("1", ip="10.9.0.1", detections=detection("38001")), more=True)
    last = detection_page(
        host("9000", ip="10.9.0.2", detections=detection("38001")), when="2024-06-01T12:03:00Z"
    )
    info, records = parse(
        zipped(("page-1.xml", first), ("page-2.xml", last), ("kb.xml", KNOWLEDGE_BASE))
    )
    assert [d.device_ref for d in of(records, DeviceRecord)] == ["qualys:1", "qualys:9000"]
    assert not of(records, SkippedRecord)
    assert info.scanned_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # the earliest page

    _info, records = parse(zipped(("page-1.xml", first), ("kb.xml", KNOWLEDGE_BASE)))
    assert of(records, SkippedRecord) == [SkippedRecord(TRUNCATED, "page-1.xml")]


def test_a_stream_that_cannot_seek_is_spooled() -> None:
    class OneWay(io.BytesIO):
        def seekable(self) -> bool:
            return False

    _info, records = QualysParser().parse(OneWay(listing()), "piped.zip")
    assert sum(isinstance(r, FindingRecord) for r in records) == 8


def test_memory_stays_flat_as_the_listing_grows() -> None:
    def export(hosts: int) -> bytes:
        body = "".join(
            host(
                str(1000 + h),
                ip=f"10.{h // 250}.{h % 250}.1",
                dns=f"h{h}.example.test",
                detections="".join(
                    detection(qid).replace(
                        "</STATUS>", "</STATUS><RESULTS>" + "x" * 400 + "</RESULTS>"
                    )
                    for qid in ("38001", "91001", "38003", "6", "99999") * 4
                ),
            )
            for h in range(hosts)
        )
        return zipped(("d.xml", detection_page(body)), ("kb.xml", KNOWLEDGE_BASE))

    def peak(data: bytes) -> tuple[int, int]:
        tracemalloc.start()
        _info, records = QualysParser().parse(io.BytesIO(data), "big.zip")
        findings = sum(1 for r in records if isinstance(r, FindingRecord))
        _current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return findings, top

    small_findings, small_peak = peak(export(40))
    big_findings, big_peak = peak(export(400))  # ~4 MB of XML
    assert (small_findings, big_findings) == (40 * 4, 400 * 4)
    assert big_peak < small_peak * 2 + 1_000_000


# --- identity shared with the asset data report layout -------------------------------------------


def _asset_data_report(hosts: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<ASSET_DATA_REPORT><HEADER>'
        "<GENERATION_DATETIME>2024-05-01T08:00:00Z</GENERATION_DATETIME></HEADER>"
        f"<HOST_LIST>{hosts}</HOST_LIST><GLOSSARY><VULN_DETAILS_LIST/></GLOSSARY>"
        "</ASSET_DATA_REPORT>"
    ).encode()


def test_asset_data_report_host_id_gives_the_same_asset_id() -> None:
    report = _asset_data_report(
        "<HOST><IP>10.9.0.5</IP><HOST_ID>555</HOST_ID><DNS>old-name.example.test</DNS></HOST>"
    )
    _info, records = QualysParser().parse(io.BytesIO(report), "adr.xml")
    (device,) = of(list(records), DeviceRecord)
    assert device.asset_id == "qualys:555"


def test_a_host_is_the_same_device_in_both_layouts(session: Session, tmp_path: Path) -> None:
    # Known by its Qualys host id: the detection listing renamed it, the asset id decides.
    adr = tmp_path / "adr.xml"
    adr.write_bytes(
        _asset_data_report(
            "<HOST><IP>10.9.0.5</IP><HOST_ID>555</HOST_ID><DNS>old-name.example.test</DNS></HOST>"
        )
    )
    first = import_report(session, adr)
    assert first.devices_added == 1
    later = tmp_path / "later.zip"
    later.write_bytes(
        zipped(
            ("d.xml", detection_page(host("555", ip="10.9.0.9", dns="new-name.example.test"))),
            ("kb.xml", KNOWLEDGE_BASE),
        )
    )
    second = import_report(session, later)
    assert (second.devices_added, second.devices_updated) == (0, 1)
    (device,) = session.scalars(select(Device)).all()
    assert (device.identity_key, device.name, device.ip_address) == (
        "asset:qualys:555",
        "new-name.example.test",
        "10.9.0.9",
    )

    # Known by name only (the fixture's asset data report has no HOST_ID): the DNS name decides.
    session.rollback()
    import_report(session, FIXTURES / "asset_data_report.xml")
    before = session.scalar(select(func.count()).select_from(Device))
    page = tmp_path / "files.zip"
    page.write_bytes(
        zipped(
            ("d.xml", detection_page(host("777", ip="198.51.100.7", dns="files.example.test"))),
            ("kb.xml", KNOWLEDGE_BASE),
        )
    )
    assert import_report(session, page).devices_added == 0
    assert session.scalar(select(func.count()).select_from(Device)) == before


def test_detection_listing_of_the_corpus_asset_data_report_hosts_adds_no_device(
    corpus: Path, session: Session, tmp_path: Path
) -> None:
    report = corpus / "qualys" / "dd_qualys_Sample_Report.xml"
    hosts = [
        (h.findtext("IP") or "", h.findtext("DNS") or "", h.findtext("NETBIOS") or "")
        for h in ET.parse(report).getroot().iter("HOST")
    ]
    assert len(hosts) == 7  # counted with ElementTree, as PROVENANCE.md lists
    imported = import_report(session, report)
    assert imported.devices_added == 7
    body = "".join(
        host(str(4000 + n), ip=ip, dns=dns, detections=detection("38001"))
        for n, (ip, dns, _netbios) in enumerate(hosts)
    )
    listing_path = tmp_path / "vmdr.zip"
    listing_path.write_bytes(
        zipped(
            ("d.xml", detection_page(body, when="2026-01-01T00:00:00Z")),
            ("kb.xml", KNOWLEDGE_BASE),
        )
    )
    summary = import_report(session, listing_path)
    assert (summary.devices_added, summary.devices_seen) == (0, 7)
    assert session.scalar(select(func.count()).select_from(Device)) == 7
    # Two CVEs of QID 38001 on each of the seven known devices, through the openssl product.
    assert summary.findings_added == 14


# --- through the real pipeline -------------------------------------------------------------------


def _weaknesses(session: Session) -> set[tuple[str, str, str, str, bool]]:
    rows = session.execute(
        select(
            Device.name,
            Software.vendor,
            Software.product,
            Weakness.vulnerability_id,
            Weakness.fixed_at,
        )
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
    )
    return {(n, v, p, cve, fixed is not None) for n, v, p, cve, fixed in rows}


def test_import_through_the_pipeline_then_a_newer_listing_fixes(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "vmdr.zip"
    path.write_bytes(listing())
    summary = import_report(session, path)
    assert (summary.format, summary.source, summary.devices_added) == ("qualys", "qualys", 3)
    devices = {d.identity_key: d for d in session.scalars(select(Device))}
    assert set(devices) == {
        "asset:qualys:2973339",
        "asset:qualys:2973340",
        "asset:qualys:2973341",
    }
    web = devices["asset:qualys:2973339"]
    assert (web.name, web.os_platform, sorted(web.tags)) == (
        "web-01.corp.example.test",
        "Linux",
        ["Production", "Web Servers"],
    )
    assert _weaknesses(session) == {
        ("web-01.corp.example.test", "openssl", "openssl", "CVE-2024-0100", False),
        ("web-01.corp.example.test", "openssl", "openssl", "CVE-2024-0101", False),
        ("WS-0006", "microsoft", "windows_10", "CVE-2024-21001", False),
        ("WS-0006", "microsoft", "windows_10", "CVE-2024-21002", False),
        ("10.20.0.7", "openssl", "openssl", "CVE-2024-0100", False),
        ("10.20.0.7", "openssl", "openssl", "CVE-2024-0101", False),
        # The QID's CVEs name no product and no NVD record is stored: kept on the QID.
        (
            "10.20.0.7",
            "qualys_detection",
            "example_windows_security_update",
            "CVE-2024-21001",
            False,
        ),
        (
            "10.20.0.7",
            "qualys_detection",
            "example_windows_security_update",
            "CVE-2024-21002",
            False,
        ),
    }
    assert summary.findings_on_detection == 2
    assert {s["reason"]: s["count"] for s in summary.skipped} == {
        "informational (information gathered)": 1,
        "fixed": 1,
        "no CVE": 1,
        "disabled in Qualys": 1,
        "QID not in the KnowledgeBase output": 1,
        "ignored in Qualys": 1,
    }

    again = import_report(session, path)
    assert (again.devices_added, again.findings_added, again.findings_fixed) == (0, 0, 0)

    # The next day's listing: QID 38001 is fixed on web-01 (its first detection).
    newer = DETECTION.replace(b"2024-06-01T12:00:00Z", b"2024-06-02T12:00:00Z").replace(
        b"<STATUS>Active</STATUS>", b"<STATUS>Fixed</STATUS>", 1
    )
    path.write_bytes(zipped(("host_detection.xml", newer), ("kb.xml", KNOWLEDGE_BASE)))
    fixed = import_report(session, path)
    assert (fixed.findings_fixed, fixed.findings_added) == (2, 0)
    assert {w for w in _weaknesses(session) if w[4]} == {
        ("web-01.corp.example.test", "openssl", "openssl", "CVE-2024-0100", True),
        ("web-01.corp.example.test", "openssl", "openssl", "CVE-2024-0101", True),
    }


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_imports_the_zip_and_refuses_the_detection_file_alone(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    alone = tmp_path / "host_detection.xml"
    alone.write_bytes(DETECTION)
    refused = _run(database_url, "import", str(alone))
    assert refused.returncode != 0
    assert "host_detection.xml" in refused.stderr
    assert "KnowledgeBase output" in refused.stderr
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 0

    path = tmp_path / "vmdr.zip"
    path.write_bytes(listing())
    result = _run(database_url, "import", str(path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["devices_added"], summary["findings_added"]) == (3, 8)
    assert summary["findings_on_detection"] == 2
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Weakness)) == 8
