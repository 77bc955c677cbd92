"""OpenVAS / Greenbone (GVM) XML reports (``<report>`` as exported by GSA or ``gvm-cli``).

Each ``<result>`` names its host (IP and host name) and an NVT; every CVE among the NVT's refs (or
the older ``<cve>`` element) becomes a finding on that host. Log, debug and false-positive results,
and results naming no CVE, are skipped with the reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import IO
from xml.etree.ElementTree import Element

from remedium.importers.formats._xmlstream import (
    CVE_RE,
    child,
    child_text,
    local,
    parse_datetime,
    peek,
    severity_from_score,
    text,
    walk,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_THREATS = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
_INSTALLED = re.compile(r"Installed version:\s*(\S+)", re.IGNORECASE)
_FIXED = re.compile(r"Fixed version:\s*([^\r\n]+)", re.IGNORECASE)
_SCAN_START = re.compile(rb"<scan_start>([^<]+)</scan_start>")


class OpenVASParser:
    """Greenbone / OpenVAS XML reports."""

    name = "openvas"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for a GVM ``<report>`` export (it names the GMP version or OpenVAS NVT results)."""
        start = head.lstrip()[:2048]
        return b"<report" in start and (
            b"<gmp>" in head or b"<omp>" in head or b"<nvt oid=" in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Stream devices and findings from a GVM report."""
        head, stream = peek(stream)
        if not self.sniff(head, filename):
            raise ReportError(
                "not an OpenVAS/Greenbone XML report: no <report> with GMP results",
                filename=filename,
            )
        match = _SCAN_START.search(head)
        scanned_at = parse_datetime(match.group(1).decode("utf-8", "replace")) if match else None
        info = ReportInfo(format=self.name, source="openvas", scanned_at=scanned_at)
        return info, self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        seen_hosts: set[str] = set()
        count = 0
        for _event, result in walk(stream, filename, end_tags=frozenset({"result"})):
            count += 1
            host_element = child(result, "host")
            if host_element is None:
                # A <result> nested in <detection> only points at the result that found a product.
                continue
            host = (host_element.text or "").strip()
            where = f"result {result.get('id', '#' + str(count))} (host {host})"
            if not host:
                raise ReportError("result with an empty <host>", where=where, filename=filename)
            if host not in seen_hosts:
                seen_hosts.add(host)
                yield _device(host, child_text(host_element, "hostname"))
            yield from _findings(host, result, where)


def _device(host: str, hostname: str) -> DeviceRecord:
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        ip = ""
    return DeviceRecord(device_ref=host, name=hostname or host, ip_address=ip)


def _findings(host: str, result: Element, where: str) -> Iterator[ImportRecord]:
    nvt = child(result, "nvt")
    threat = child_text(result, "threat")
    severity = _THREATS.get(threat.lower(), "")
    if not severity and not threat:
        severity = severity_from_score(_float(child_text(result, "severity")) or 0.0)
    if not severity:
        yield SkippedRecord(f"informational ({threat or 'severity 0'})", where)
        return
    cves = _cves(nvt) if nvt is not None else []
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    description = child_text(result, "description")
    installed = _INSTALLED.search(description)
    fixed = _FIXED.search(description)
    title = " ".join(child_text(nvt, "name").split()) if nvt is not None else ""
    for cve in cves:
        yield FindingRecord(
            device_ref=host,
            vulnerability_id=cve,
            installed_version=installed.group(1).strip() if installed else "",
            fixed_version=fixed.group(1).strip() if fixed else "",
            severity=severity,
            title=title,
        )


def _cves(nvt: Element) -> list[str]:
    found: list[str] = []
    refs = child(nvt, "refs")
    if refs is not None:
        found += [
            ref.get("id", "").strip()
            for ref in refs
            if local(ref.tag) == "ref" and ref.get("type") == "cve"
        ]
    # OpenVAS 8/9 put a comma-separated list (or "NOCVE") in <nvt><cve>.
    found += [part.strip() for part in text(child(nvt, "cve")).split(",")]
    return [cve for cve in dict.fromkeys(found) if CVE_RE.match(cve)]


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
