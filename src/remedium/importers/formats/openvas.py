"""OpenVAS / Greenbone (GVM) XML reports (``<report>`` as exported by GSA or ``gvm-cli``).

Each ``<result>`` names its host (IP and host name) and an NVT; every CVE among the NVT's refs (or
the older ``<cve>`` element) becomes a finding on that host. Log, debug and false-positive results,
and results naming no CVE, are skipped with the reason.

The affected product is the one the scanner detected: the ``product`` CPE of the result's
``<detection>``. A result exported without ``<detection>`` is tied to its product the way gvmd ties
them, through the host details listed after the results (``detected_by`` names the detection NVT,
whose ``cpe:…``/``App`` details name the product); its findings wait for those details. A product
is never guessed from a title or a port.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import IO

from remedium.importers.formats._xmlstream import (
    CVE_RE,
    Element,
    child,
    child_text,
    children,
    cpe_part,
    cpe_vendor_product,
    detected_cpe,
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
# Findings held for the host details (results without <detection>) are at most this many: past
# it they are yielded as they are, so memory stays bounded however large the report is.
HOLD_LIMIT = 10_000


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
        held = _Held()
        count = 0
        for _event, element in walk(stream, filename, end_tags=frozenset({"result", "host"})):
            if local(element.tag) == "host":
                # The report's own <host> (with <ip> and <detail>s) follows the results.
                ip = child_text(element, "ip")
                if ip:
                    yield from held.release(ip, _HostDetails(element))
                continue
            result = element
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
            cpe = _detection_cpe(result)
            for record in _findings(host, result, where, cpe):
                if cpe or not isinstance(record, FindingRecord):
                    yield record
                else:
                    yield from held.hold(record, _detection_key(result))
        yield from held.release_all()


def _device(host: str, hostname: str) -> DeviceRecord:
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        ip = ""
    return DeviceRecord(device_ref=host, name=hostname or host, ip_address=ip)


def _findings(host: str, result: Element, where: str, cpe: str = "") -> Iterator[ImportRecord]:
    """The result's findings, one per CVE, on the product ``cpe`` names (none when "")."""
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
    title = child_text(nvt, "name") if nvt is not None else ""
    yield from result_findings(
        host, cves, child_text(result, "description"), cpe, severity=severity, title=title
    )


def result_findings(
    host: str, cves: list[str], text: str, cpe: str, *, severity: str, title: str
) -> Iterator[FindingRecord]:
    """One finding per CVE of a result: versions from its text (``Installed version:``,
    ``Fixed version:``), else the detected CPE's version; the product from that CPE.
    Shared with the CSV export's parser."""
    installed = _INSTALLED.search(text)
    fixed = _FIXED.search(text)
    vendor, product, version = cpe_vendor_product(cpe)
    for cve in cves:
        yield FindingRecord(
            device_ref=host,
            vulnerability_id=cve,
            vendor=vendor,
            product=product,
            installed_version=installed.group(1).strip() if installed else version,
            fixed_version=fixed.group(1).strip() if fixed else "",
            severity=severity,
            title=" ".join(title.split()),
        )


def _with_product(finding: FindingRecord, cpe: str) -> FindingRecord:
    """``finding`` on the product ``cpe`` names (as it is when ""); the CPE's version when the
    result gave none."""
    vendor, product, version = cpe_vendor_product(cpe)
    if not product:
        return finding
    return replace(
        finding,
        vendor=vendor,
        product=product,
        installed_version=finding.installed_version or version,
    )


def _detection_cpe(result: Element) -> str:
    """The ``product`` CPE of the result's ``<detection>`` (the result that found the product)."""
    detection = child(result, "detection")
    if detection is None:
        return ""
    for found in children(detection, "result"):
        details = child(found, "details")
        for detail in children(details, "detail") if details is not None else []:
            if child_text(detail, "name") == "product":
                return detected_cpe([child_text(detail, "value")])
    return ""


def _detection_key(result: Element) -> tuple[str, str]:
    """(NVT OID, location) by which the host details name the detection behind a result: the
    result's path, else its port unless it is ``general/…`` ("" then: ``detected_at`` tells)."""
    nvt = child(result, "nvt")
    oid = nvt.get("oid", "").strip() if nvt is not None else ""
    port = child_text(result, "port")
    location = child_text(result, "path") or ("" if port.startswith("general/") else port)
    return oid, location


class _HostDetails:
    """The ``<detail>`` list of a report's ``<host>``: (name, value, source NVT) triples."""

    def __init__(self, host: Element) -> None:
        self._details: list[tuple[str, str, str]] = []
        for detail in children(host, "detail"):
            source = child(detail, "source")
            source_name = child_text(source, "name") if source is not None else ""
            self._details.append(
                (child_text(detail, "name"), child_text(detail, "value"), source_name)
            )

    def product_cpe(self, oid: str, location: str) -> str:
        """The CPE of the product the NVT ``oid`` found vulnerable, as gvmd derives a result's
        ``<detection>``: ``detected_by`` (or ``detected_by@<location>``) names the detection NVT
        and ``detected_at`` the location when the result gives none; the detection NVT's
        ``cpe:…`` detail at that location is the product, else its one ``App`` CPE. "" when the
        details do not name exactly one application or OS product."""
        by: dict[str, str] = {}
        for name, value, source in self._details:
            if source == oid and (name == "detected_at" or name.startswith("detected_by")):
                by[name] = value
        location = location or by.get("detected_at", "")
        detection = by.get(f"detected_by@{location}") or by.get("detected_by", "")
        if not detection:
            return ""
        mine = [(name, value) for name, value, source in self._details if source == detection]
        at_location = {
            name for name, value in mine if name.startswith("cpe:") and value == location
        }
        apps = {value for name, value in mine if name == "App"}
        for found in (at_location, apps):
            products = {cpe for cpe in found if cpe_part(cpe) in ("a", "o")}
            if products:
                return products.pop() if len(products) == 1 else ""
        return ""


class _Held:
    """Findings of results without ``<detection>``, held per host until the host's details."""

    def __init__(self) -> None:
        self._by_host: dict[str, list[tuple[FindingRecord, tuple[str, str]]]] = {}
        self._count = 0
        self._full = False

    def hold(self, finding: FindingRecord, key: tuple[str, str]) -> Iterator[FindingRecord]:
        """Hold ``finding`` (of the NVT and location ``key``). Past :data:`HOLD_LIMIT`, what is
        held is yielded as it is, and so is every later finding: memory stays bounded."""
        if not self._full and self._count >= HOLD_LIMIT:
            self._full = True
            yield from self.release_all()
        if self._full:
            yield finding
            return
        self._by_host.setdefault(finding.device_ref, []).append((finding, key))
        self._count += 1

    def release(self, host: str, details: _HostDetails) -> Iterator[FindingRecord]:
        """The findings held for ``host``, on the product its details name for each."""
        for finding, (oid, location) in self._by_host.pop(host, []):
            yield _with_product(finding, details.product_cpe(oid, location))

    def release_all(self) -> Iterator[FindingRecord]:
        """Every finding still held (no host details came for them), as it is."""
        held, self._by_host = self._by_host, {}
        for findings in held.values():
            for finding, _key in findings:
                yield finding


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
