"""Qualys CSV exports: the VM scan report, the VMDR detection lists (CVE- and QID-based) and the
PCI scan report. See ``docs/formats.md`` (Qualys CSV).

Qualys writes metadata rows (report title and date, company, user, launch date) before the
header row, so the header is looked for among the first rows. Each row is one detection of a
QID on a host; the host becomes a device the first time a row names it, and the detection one
finding per CVE of its CVE cell. Devices, severities, CVSS and skip reasons follow the XML parser
(:mod:`remedium.importers.formats.qualys`), whose helpers are reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import IO
from xml.etree.ElementTree import Element, SubElement

from remedium.importers.formats._common import severity as severity_word
from remedium.importers.formats._csvstream import CsvExport, Layout, Row, find_layout, split_list
from remedium.importers.formats._xmlstream import CVE_RE
from remedium.importers.formats.qualys import _cvss3, _device
from remedium.importers.formats.qualys_detection import SEVERITY
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
)

# VMDR "Asset Vuln Datalist Report": "QID,Title,Severity,...,Status,Asset Id,Asset Name,
# Asset IPV4,Asset IPV6,...", CVE-based lists start with "CVE,CVE-Description,...".
VMDR = Layout(
    "Qualys VMDR",
    markers=("QID", "Asset Id"),
    required=(("QID",), ("Asset Id",), ("Severity",)),
)
# PCI scan report: "IP,HOSTNAME,LAST SCAN,QID,VULN TITLE,TYPE,SEVERITY,...,Q_SEVERITY,...,CVEID".
PCI = Layout(
    "Qualys PCI",
    markers=("QID", "VULN TITLE"),
    required=(("IP",), ("QID",), ("VULN TITLE",), ("Q_SEVERITY", "SEVERITY")),
)
# VM scan report: "IP,Network,DNS,NetBIOS,...,OS,...,QID,Title,Vuln Status,Type,Severity,...,
# CVE ID,...,CVSS3 Base,...".
SCAN = Layout(
    "Qualys scan report",
    markers=("IP", "QID", "Title"),
    required=(("IP",), ("QID",), ("Title",), ("Severity",)),
)
LAYOUTS = (VMDR, PCI, SCAN)
_SEARCH_ROWS = 40  # metadata rows Qualys may write before the header

_HOST_ID = ("Host ID",)
_AGENT_HOST_ID = ("QG HostID", "QG Host ID")
_IP = ("IP", "Asset IPV4", "Asset IPV6")
_DNS = ("DNS", "HOSTNAME", "Asset Name")
_OS = ("OS", "Operating System")
_CVE = ("CVE ID", "CVE", "CVEID")
_SEVERITY_COLUMNS = ("Q_SEVERITY", "Severity")  # PCI: Q_SEVERITY is Qualys' 1-5 level
_TITLE = ("Title", "VULN TITLE")
_TYPE = ("Type", "Type Detected")
_STATUS = ("Vuln Status", "Status")
_CVSS3 = ("CVSS3.1 Base", "CVSS3 Base", "CVSSv3.1 Base (nvd)")
_INFORMATIONAL = frozenset({"ig", "info", "information gathered", "informational"})
_YES = frozenset({"yes", "1", "true"})
_GMT = re.compile(r"\(?GMT\s*(?:([+-]\d{2}):?(\d{2}))?\)?")
_TIME_FORMATS = ("%d %b %Y %I:%M%p", "%d %b %Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")


class QualysCsvParser:
    """Qualys VM scan report, VMDR and PCI CSV exports."""

    name = "qualys_csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when one of the first rows is the header of a Qualys CSV layout."""
        return find_layout(head, LAYOUTS, search_rows=_SEARCH_ROWS) is not None

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Read the metadata and header rows, then stream devices and findings row by row."""
        export = CsvExport(
            stream, filename, LAYOUTS, what="Qualys CSV export", search_rows=_SEARCH_ROWS
        )
        notes: tuple[str, ...] = ()
        complete = export.header.has(*_CVE)
        if not complete:
            # A QID-based list: no detection can become a finding, and weaknesses it does not
            # list must not be marked fixed by it.
            notes = ("no CVE column (a QID-based export): detections are skipped, nothing fixed",)
        info = ReportInfo(
            format=self.name,
            source="qualys",
            scanned_at=_report_time(export.preamble),
            complete_scan=False,
            may_be_complete=complete,
            notes=notes,
        )
        return info, _records(export)


def _report_time(preamble: list[list[str]]) -> datetime | None:
    """When the report was made, from its metadata rows: the VMDR title row
    ("Asset Vuln Datalist Report","04 Feb 2026 10:00AM GMT-0500"), or the scan's "Launch Date"."""
    for index, values in enumerate(preamble):
        if values and values[0].strip().lower() == "launch date" and index + 1 < len(preamble):
            following = preamble[index + 1]
            return _time(following[0]) if following else None
    first = preamble[0] if preamble else []
    return _time(first[1]) if len(first) > 1 else None


def _time(value: str) -> datetime | None:
    """A Qualys metadata date ("04 Feb 2026 10:00AM GMT-0500", "01/04/2019 at 15:05:09
    (GMT-0800)"), in UTC; dates without a zone are taken as UTC. ``None`` for anything else."""
    text = value.strip()
    zone: tzinfo = UTC
    match = _GMT.search(text)
    if match:
        if match.group(1):
            zone = datetime.strptime(match.group(1) + match.group(2), "%z").tzinfo or UTC
        text = text[: match.start()]
    text = " ".join(text.replace(" at ", " ").split())
    for pattern in _TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    return None


def _records(export: CsvExport) -> Iterator[ImportRecord]:
    seen: set[str] = set()
    for row in export.rows():
        qid = row.get("QID") or "?"
        device = _row_device(row)
        if device is None:
            yield SkippedRecord("row names no host", f"line {row.line} (QID {qid})")
            continue
        if device.device_ref not in seen:
            seen.add(device.device_ref)
            yield device
        yield from _findings(
            row, device.device_ref, f"line {row.line} (host {device.device_ref}, QID {qid})"
        )


def _row_device(row: Row) -> DeviceRecord | None:
    """The row's host, mapped as the XML parser maps a HOST; ``None`` when the row names none.

    VMDR's "Asset Id" is Qualys's asset id, not the VM host id the XML layouts carry: it keeps
    its own prefix, ``qualys-asset:<id>``, so it can never be taken for another host's host id.
    """
    ips = split_list(row.get(*_IP))
    host = {
        "HOST_ID": row.get(*_HOST_ID),
        "QG_HOSTID": row.get(*_AGENT_HOST_ID),
        "IP": ips[0] if ips else "",
        "DNS": row.get(*_DNS),
        "NETBIOS": row.get("NetBIOS"),
        "OPERATING_SYSTEM": row.get(*_OS),
    }
    vmdr_asset = row.get("Asset Id")
    if not (host["HOST_ID"] or host["QG_HOSTID"] or host["IP"] or host["DNS"]):
        if not vmdr_asset:
            return None
        host["DNS"] = vmdr_asset  # a VMDR row naming its asset only: the id is its name too
    device = _device(host, row.line, "")
    if vmdr_asset and not device.asset_id:
        asset_id = f"qualys-asset:{vmdr_asset}"
        device = replace(device, device_ref=asset_id, asset_id=asset_id)
    return device


def _cvss3_of(value: str) -> tuple[str, float | None]:
    # The XML parser's reading of the same "8.1 (AV:N/AC:H/...)" text (CVSS3_BASE).
    details = Element("VULN_DETAILS")
    SubElement(details, "CVSS3_BASE").text = value
    return _cvss3(details)


def _findings(row: Row, ref: str, where: str) -> Iterator[ImportRecord]:
    if row.get(*_TYPE).lower() in _INFORMATIONAL:
        yield SkippedRecord("informational (information gathered)", where)
        return
    if row.get(*_STATUS).lower() == "fixed":
        yield SkippedRecord("fixed", where)
        return
    # VMDR lists say whether the detection is disabled or ignored in Qualys (as the host
    # detection XML's IS_DISABLED / IS_IGNORED): a decision taken in Qualys is not undone here.
    if row.get("Disabled").lower() in _YES:
        yield SkippedRecord("disabled in Qualys", where)
        return
    if row.get("Ignored").lower() in _YES:
        yield SkippedRecord("ignored in Qualys", where)
        return
    cves = [cve for cve in split_list(row.get(*_CVE)) if CVE_RE.match(cve)]
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    raw = row.get(*_SEVERITY_COLUMNS)
    vector, score = _cvss3_of(row.get(*_CVSS3))
    for cve in cves:
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=cve,
            severity=SEVERITY.get(raw) or severity_word(raw),
            cvss_v3_vector=vector,
            cvss_v3_score=score,
            title=row.get(*_TITLE),
        )
