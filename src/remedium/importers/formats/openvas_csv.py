"""Greenbone / OpenVAS CSV results exports (GSA's "CSV Results" report format).
See ``docs/formats.md`` (OpenVAS / Greenbone CSV).

Each row is one result: a host (``IP``, ``Hostname``) and an NVT. A host becomes a device the
first time a row names it; a result becomes one finding per CVE (``CVEs``, or the ``NVT OID``
itself when a CVE scan wrote the CVE there). Severity, versions and skip reasons follow the XML
parser (:mod:`remedium.importers.formats.openvas`), whose helpers are reused. The affected product
is the CPE of ``Product Detection Result`` (the XML's ``<detection>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain
from typing import IO

from remedium.importers.formats._csvstream import CsvExport, Layout, Row, find_layout, split_list
from remedium.importers.formats._xmlstream import (
    CVE_RE,
    detected_cpe,
    parse_datetime,
    severity_from_score,
)
from remedium.importers.formats.openvas import _THREATS, _device, _float, result_findings
from remedium.importers.records import ImportRecord, ReportInfo, SkippedRecord

# "IP,Hostname,Port,Port Protocol,CVSS,Severity,QoD,Solution Type,NVT Name,Summary,
#  Specific Result,NVT OID,CVEs,Task ID,Task Name,Timestamp,Result ID,..."
OPENVAS = Layout(
    "OpenVAS",
    markers=("IP", "NVT OID"),
    required=(("IP",), ("NVT OID",), ("Severity", "CVSS"), ("CVEs",)),
)
LAYOUTS = (OPENVAS,)
# A CPE written in text: "Product: cpe:/a:apache:http_server:2.4.7\nMethod: …\n(OID: …)".
_CPE_IN_TEXT = re.compile(r"(?<![\w-])(?:cpe:/|cpe:2\.3:)[^\s,;|()<>\"']+")


class OpenVASCsvParser:
    """Greenbone / OpenVAS CSV results exports."""

    name = "openvas_csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when the first row is the header of a GVM CSV results export."""
        return find_layout(head, LAYOUTS) is not None

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Read the header and the first result (its timestamp), then stream row by row."""
        export = CsvExport(stream, filename, LAYOUTS, what="OpenVAS/Greenbone CSV export")
        rows = export.rows()
        first = next(rows, None)
        # Every result of a report carries the report's timestamp; the XML report's scan_start
        # plays that part there.
        scanned_at = parse_datetime(first.get("Timestamp")) if first is not None else None
        info = ReportInfo(
            format=self.name,
            source="openvas",
            scanned_at=scanned_at,
            complete_scan=False,
            may_be_complete=True,
        )
        return info, _records(first, rows)


def _records(first: Row | None, rows: Iterator[Row]) -> Iterator[ImportRecord]:
    if first is None:
        return
    seen: set[str] = set()
    for row in chain([first], rows):
        host = row.get("IP")
        result = row.get("Result ID") or row.get("NVT OID") or "?"
        if not host:
            yield SkippedRecord("row names no host", f"line {row.line} (result {result})")
            continue
        if host not in seen:
            seen.add(host)
            yield _device(host, row.get("Hostname"))
        yield from _findings(row, host, f"line {row.line} (result {result}, host {host})")


def _findings(row: Row, host: str, where: str) -> Iterator[ImportRecord]:
    threat = row.get("Severity")
    severity = _THREATS.get(threat.lower(), "")
    if not severity and not threat:
        severity = severity_from_score(_float(row.get("CVSS")) or 0.0)
    if not severity:
        yield SkippedRecord(f"informational ({threat or 'severity 0'})", where)
        return
    oid = row.get("NVT OID")
    listed = [*split_list(row.get("CVEs")), oid]
    cves = [cve for cve in dict.fromkeys(listed) if CVE_RE.match(cve)]
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    # The product detection the result depends on, as the XML's <detection> names it.
    cpe = detected_cpe(_CPE_IN_TEXT.findall(row.get("Product Detection Result")))
    yield from result_findings(
        host,
        cves,
        row.get("Specific Result"),
        cpe,
        severity=severity,
        title=row.get("NVT Name"),
    )
