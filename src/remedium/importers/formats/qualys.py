"""Qualys VM XML: asset data reports (``<ASSET_DATA_REPORT>``) and VMDR host detection output.

Asset data reports: hosts come first (``HOST_LIST``), the QID definitions after them
(``GLOSSARY``), so the file is read twice: once for the glossary (one small entry per QID), then
for the hosts. A detection becomes one finding per CVE its QID maps to; information-gathered QIDs,
fixed detections and QIDs without a CVE are skipped with the reason.

The Host List Detection API's output (``<HOST_LIST_VM_DETECTION_OUTPUT>``, zipped with the
KnowledgeBase output that maps its QIDs to CVEs) is read by :mod:`.qualys_detection`; both
layouts give a host the same asset id, so either makes it the same device. A stream that cannot
seek is first spooled to a temporary file.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from remedium.importers.formats import qualys_detection
from remedium.importers.formats._xmlstream import (
    CVE_RE,
    Element,
    child,
    child_text,
    children,
    os_platform,
    parse_datetime,
    peek,
    walk,
)
from remedium.importers.formats.qualys_detection import SEVERITY, qualys_asset_id
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_GENERATED = re.compile(rb"<GENERATION_DATETIME>([^<]+)</GENERATION_DATETIME>")
# A scan report (``scan-1.dtd``): <SCAN value="scan/..."> with one <IP> per host scanned.
_SCAN_ROOT = re.compile(rb"<!DOCTYPE\s+SCAN\b|<SCAN\s+value=")
_SCAN_DATE = re.compile(rb'<KEY value="DATE">(?:<!\[CDATA\[)?([^<\]]+)')
# Its detections: confirmed (VULN), potential (PRACTICE), information gathered (INFO).
_SCAN_DETECTIONS = frozenset({"VULN", "PRACTICE", "INFO"})
_VECTOR = re.compile(r"\(([^)]+)\)")


@dataclass(frozen=True, slots=True)
class _Qid:
    title: str
    severity: str
    cves: tuple[str, ...]
    cvss_v3_vector: str
    cvss_v3_score: float | None


class QualysParser:
    """Qualys VM asset data reports and VMDR host detection output with its KnowledgeBase (XML)."""

    name = "qualys"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for an ASSET_DATA_REPORT, a scan report (SCAN), a host detection or KnowledgeBase
        output, or a zip."""
        return (
            b"<ASSET_DATA_REPORT" in head
            or _SCAN_ROOT.search(head) is not None
            or qualys_detection.sniff(head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Asset data report: read the QID glossary, then stream devices and findings host by
        host. Host detection output: see :func:`qualys_detection.parse`."""
        if not stream.seekable():
            # Closed with the returned iterator's stream by garbage collection; a context
            # manager would close it before the caller reads the records.
            spool = tempfile.TemporaryFile()  # noqa: SIM115
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            stream = spool
        start = stream.tell()
        head, replay = peek(stream)
        if b"<ASSET_DATA_REPORT" not in head and _SCAN_ROOT.search(head):
            dated = _SCAN_DATE.search(head)
            info = ReportInfo(
                format=self.name,
                source="qualys",
                scanned_at=parse_datetime(dated.group(1).decode("ascii", "replace"))
                if dated
                else None,
            )
            return info, _scan_records(replay, filename)
        if b"<ASSET_DATA_REPORT" not in head:
            if head.startswith(qualys_detection.ZIP_MAGIC) or qualys_detection.sniff(head):
                stream.seek(start)
                return qualys_detection.parse(stream, head, filename)
            raise ReportError(
                "not a Qualys report: no <ASSET_DATA_REPORT>, <SCAN> or "
                "<HOST_LIST_VM_DETECTION_OUTPUT> root, nor a zip of host detection and "
                "KnowledgeBase output",
                filename=filename,
            )
        match = _GENERATED.search(head)
        scanned_at = parse_datetime(match.group(1).decode("ascii", "replace")) if match else None
        glossary = _glossary(replay, filename)
        stream.seek(start)
        info = ReportInfo(format=self.name, source="qualys", scanned_at=scanned_at)
        return info, _records(stream, filename, glossary)


def _glossary(stream: IO[bytes], filename: str) -> dict[str, _Qid]:
    glossary: dict[str, _Qid] = {}
    for _event, details in walk(stream, filename, end_tags=frozenset({"VULN_DETAILS"})):
        qid = (details.get("id") or "qid_" + child_text(details, "QID")).strip()
        cve_list = child(details, "CVE_ID_LIST")
        cves = (
            tuple(child_text(cve, "ID") for cve in children(cve_list, "CVE_ID"))
            if cve_list is not None
            else ()
        )
        vector, score = _cvss3(details)
        glossary[qid] = _Qid(
            title=child_text(details, "TITLE"),
            severity=SEVERITY.get(child_text(details, "SEVERITY"), ""),
            cves=cves,
            cvss_v3_vector=vector,
            cvss_v3_score=score,
        )
    return glossary


def _cvss3(details: Element) -> tuple[str, float | None]:
    # "9.0 (AV:N/AC:H/...)": the score, then the vector without its "CVSS:3.x/" prefix.
    score = child(details, "CVSS3_SCORE")  # its parts when it has any, else details' own
    base = child_text(score if score is not None and len(score) else details, "CVSS3_BASE")
    if not base:
        return "", None
    score_text, _, _ = base.partition(" ")
    match = _VECTOR.search(base)
    vector = (
        f"CVSS:3.1/{match.group(1)}" if match and not match.group(1).startswith("CVSS:") else ""
    )
    try:
        return vector, float(score_text)
    except ValueError:
        return vector, None


def _records(stream: IO[bytes], filename: str, glossary: dict[str, _Qid]) -> Iterator[ImportRecord]:
    wanted = frozenset({"VULN_INFO"})
    host_tags = frozenset({"IP", "DNS", "NETBIOS", "OPERATING_SYSTEM", "HOST_ID", "QG_HOSTID"})
    host: dict[str, str] = {}
    in_host = False
    device_ref = ""
    hosts = 0
    for event, element in walk(
        stream, filename, end_tags=wanted | host_tags, start_tags=frozenset({"HOST"})
    ):
        if event == "start":
            if in_host and not device_ref:
                # The previous host had no detections: it is still a device the scan saw clean.
                yield _device(host, hosts, filename)
            in_host, host, device_ref = True, {}, ""
            hosts += 1
            continue
        name = element.tag.rsplit("}", 1)[-1]
        if name in host_tags:
            if in_host:
                host[name] = (element.text or "").strip()
            continue
        if not device_ref:
            device = _device(host, hosts, filename)
            device_ref = device.device_ref
            yield device
        yield from _findings(device_ref, element, glossary)
    if in_host and not device_ref:
        yield _device(host, hosts, filename)


def _device(host: dict[str, str], number: int, filename: str) -> DeviceRecord:
    asset_id = qualys_asset_id(host.get("HOST_ID", ""), host.get("QG_HOSTID", ""))
    ip = host.get("IP", "")
    ref = asset_id or ip or host.get("DNS", "")
    if not ref:
        raise ReportError(
            "HOST with neither IP, DNS name nor host id", where=f"HOST #{number}", filename=filename
        )
    os_name = host.get("OPERATING_SYSTEM", "")
    return DeviceRecord(
        device_ref=ref,
        name=host.get("DNS") or host.get("NETBIOS") or ip,
        ip_address=ip,
        asset_id=asset_id,
        os_platform=os_platform(os_name) if os_name else "",
        os_version=os_name,
    )


def _findings(device_ref: str, info: Element, glossary: dict[str, _Qid]) -> Iterator[ImportRecord]:
    qid_element = child(info, "QID")
    qid = (qid_element.get("id", "") if qid_element is not None else "") or "qid_" + child_text(
        info, "QID"
    )
    where = f"HOST {device_ref} / VULN_INFO {qid}"
    kind = child_text(info, "TYPE")
    if kind == "Ig":
        yield SkippedRecord("informational (information gathered)", where)
        return
    if child_text(info, "VULN_STATUS").lower() == "fixed":
        yield SkippedRecord("fixed", where)
        return
    details = glossary.get(qid)
    if details is None:
        yield SkippedRecord("QID not described in the report's glossary", where)
        return
    valid = [cve for cve in dict.fromkeys(details.cves) if CVE_RE.match(cve)]
    if not valid:
        yield SkippedRecord("no CVE", where)
        return
    for cve in valid:
        yield FindingRecord(
            device_ref=device_ref,
            vulnerability_id=cve,
            severity=details.severity,
            cvss_v3_vector=details.cvss_v3_vector,
            cvss_v3_score=details.cvss_v3_score,
            title=details.title,
        )


def _scan_records(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    """A Qualys scan report: each <IP> a device (``value`` = its address, ``name`` = its DNS
    name, <OS>), each confirmed (VULN) or potential (PRACTICE) detection one finding per CVE of
    its ``CVE_ID_LIST``; information gathered (INFO) and detections without a CVE are skipped.
    The scan date is the header's ``KEY value="DATE"``."""
    host: dict[str, str] = {}
    device_ref = ""
    hosts = 0
    for event, element in walk(
        stream,
        filename,
        end_tags=_SCAN_DETECTIONS | {"OS", "NETBIOS_HOSTNAME"},
        start_tags=frozenset({"IP"}),
        close_tags=frozenset({"IP"}),
    ):
        name = element.tag.rsplit("}", 1)[-1]
        if event == "start":
            hosts += 1
            host = {"IP": element.get("value", ""), "DNS": element.get("name", "")}
            device_ref = ""
            continue
        if event == "close":
            if not device_ref and host:
                yield _device(host, hosts, filename)  # a host the scan saw clean
            host, device_ref = {}, ""
            continue
        if name == "OS":
            host["OPERATING_SYSTEM"] = (element.text or "").strip()
            continue
        if name == "NETBIOS_HOSTNAME":
            host["NETBIOS"] = (element.text or "").strip()
            continue
        if not device_ref:
            device = _device(host, hosts, filename)
            device_ref = device.device_ref
            yield device
        yield from _scan_findings(device_ref, name, element)


def _scan_findings(device_ref: str, kind: str, element: Element) -> Iterator[ImportRecord]:
    qid = element.get("number", "")
    where = f"IP {device_ref} / {kind} {qid}"
    if kind == "INFO":
        yield SkippedRecord("informational (information gathered)", where)
        return
    cve_list = child(element, "CVE_ID_LIST")
    cves = (
        [
            cve
            for cve in dict.fromkeys(
                child_text(entry, "ID") for entry in children(cve_list, "CVE_ID")
            )
            if CVE_RE.match(cve)
        ]
        if cve_list is not None
        else []
    )
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    title = child_text(element, "TITLE")
    for cve in cves:
        yield FindingRecord(
            device_ref=device_ref,
            vulnerability_id=cve,
            severity=SEVERITY.get(element.get("severity", ""), ""),
            title=title or f"QID {qid}",
        )
