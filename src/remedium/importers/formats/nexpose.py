"""Rapid7 Nexpose / InsightVM XML Export reports (1.0 and 2.0 share the layout read); see
``docs/formats.md`` (Nexpose).

The report lists the scanned ``nodes`` (each with its tests, and its endpoints' services with
their own tests) and, after them, the ``VulnerabilityDefinitions`` the tests refer to. The
definitions are read first, in a pass that skips the nodes, so each node's findings are built
as the node is read: memory holds the definitions and one node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from remedium.importers.formats import _xmlstream as xml
from remedium.importers.formats._advisory import facts
from remedium.importers.formats._common import seekable
from remedium.importers.formats._xmlstream import Element
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_ROOT = re.compile(rb"<NexposeReport\b")
_VULNERABLE = frozenset({"vulnerable-exploited", "vulnerable-version", "vulnerable-potential"})


@dataclass(frozen=True, slots=True)
class _Definition:
    title: str
    severity: str
    cves: tuple[str, ...]
    description: str


def _severity(value: str) -> str:
    """Nexpose's 1-10 severity by its own three ranks: Moderate (1-3, remedium's Medium),
    Severe (4-7, High) and Critical (8-10)."""
    try:
        number = int(float(value))
    except ValueError:
        return ""
    if number >= 8:
        return "Critical"
    if number >= 4:
        return "High"
    return "Medium" if number >= 1 else ""


class NexposeParser:
    """``<NexposeReport version="1.0|2.0">``: ``scans``, ``nodes``, ``VulnerabilityDefinitions``."""

    name = "nexpose"

    def sniff(self, head: bytes, filename: str) -> bool:
        return b"<NexposeReport" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = seekable(stream)
        head = stream.read(xml.HEAD_BYTES)
        stream.seek(0)
        root = _ROOT.search(head)
        if root is None:
            raise ReportError("not a Nexpose report: no <NexposeReport> root", filename=filename)
        definitions, scanned_at = _definitions(stream, filename)
        stream.seek(0)
        info = ReportInfo(format=self.name, source="nexpose", scanned_at=scanned_at)
        return info, self._records(stream, filename, definitions)

    def _records(
        self, stream: IO[bytes], filename: str, definitions: dict[str, _Definition]
    ) -> Iterator[ImportRecord]:
        given: set[str] = set()
        for _event, node in xml.walk(stream, filename, end_tags=frozenset({"node"})):
            yield from _node(node, definitions, given)


def _definitions(
    stream: IO[bytes], filename: str
) -> tuple[dict[str, _Definition], datetime | None]:
    found: dict[str, _Definition] = {}
    scanned_at: datetime | None = None
    for _event, element in xml.walk(
        stream, filename, end_tags=frozenset({"vulnerability", "scan"})
    ):
        if xml.local(element.tag) == "scan":
            end = _time(element.get("endTime", ""))
            if end and (scanned_at is None or end > scanned_at):
                scanned_at = end
            continue
        vuln_id = element.get("id", "").strip()
        if not vuln_id:
            continue
        cves = tuple(
            dict.fromkeys(
                xml.text(reference).upper()
                for references in xml.children(element, "references")
                for reference in xml.children(references, "reference")
                if reference.get("source", "").upper() == "CVE"
                and xml.CVE_RE.match(xml.text(reference).upper())
            )
        )
        description = xml.child(element, "description")
        found[vuln_id.lower()] = _Definition(
            title=element.get("title", "").strip(),
            severity=_severity(element.get("severity", "")),
            cves=cves,
            description=" ".join("".join(description.itertext()).split())
            if description is not None
            else "",
        )
    return found, scanned_at


def _time(value: str) -> datetime | None:
    """Nexpose's ``20210211T164705486`` (milliseconds; the zone is not given: UTC)."""
    try:
        return datetime.strptime(value.strip()[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _node(
    node: Element, definitions: dict[str, _Definition], given: set[str]
) -> Iterator[ImportRecord]:
    address = node.get("address", "").strip()
    names = [
        xml.text(n) for group in xml.children(node, "names") for n in xml.children(group, "name")
    ]
    ref = node.get("device-id", "").strip() or address
    if not ref:
        yield SkippedRecord("node without an address or device id", "nodes/node")
        return
    os_fingerprint = _first_fingerprint(node, "os")
    os_name = (
        " ".join(
            p
            for p in (os_fingerprint.get(k, "").strip() for k in ("vendor", "product", "version"))
            if p
        )
        if os_fingerprint is not None
        else ""
    )
    yield DeviceRecord(
        device_ref=ref,
        name=names[0] if names and names[0] else address,
        ip_address=address,
        asset_id=f"nexpose:{node.get('device-id')}" if node.get("device-id") else "",
        os_platform=xml.os_platform(os_name) if os_name else "",
        os_version=os_name,
    )
    for tests in xml.children(node, "tests"):
        yield from _tests(ref, address, tests, None, definitions, given)
    for endpoints in xml.children(node, "endpoints"):
        for endpoint in xml.children(endpoints, "endpoint"):
            for services in xml.children(endpoint, "services"):
                for service in xml.children(services, "service"):
                    fingerprint = _first_fingerprint(service, "fingerprint")
                    place = f"{address}:{endpoint.get('port', '')}/{service.get('name', '')}"
                    for tests in xml.children(service, "tests"):
                        yield from _tests(ref, place, tests, fingerprint, definitions, given)


def _first_fingerprint(element: Element, name: str) -> Element | None:
    for fingerprints in xml.children(element, "fingerprints"):
        for fingerprint in xml.children(fingerprints, name):
            return fingerprint
    return None


def _tests(  # noqa: PLR0917 (the place of the tests, then what they are checked against)
    ref: str,
    place: str,
    tests: Element,
    fingerprint: Element | None,
    definitions: dict[str, _Definition],
    given: set[str],
) -> Iterator[ImportRecord]:
    vendor = product = version = ""
    if fingerprint is not None:
        product = fingerprint.get("product", "").strip()
        vendor = fingerprint.get("vendor", "").strip()
        version = fingerprint.get("version", "").strip()
    for test in xml.children(tests, "test"):
        if test.get("status", "").strip() not in _VULNERABLE:
            continue
        test_id = test.get("id", "").strip()
        where = f"node {place} / test {test_id}"
        definition = definitions.get(test_id.lower())
        if definition is None:
            yield SkippedRecord("test with no vulnerability definition in the report", where)
            continue
        if not definition.cves:
            yield SkippedRecord("no CVE", where)
            continue
        for cve in definition.cves:
            yield FindingRecord(
                device_ref=ref,
                vulnerability_id=cve,
                vendor=vendor,
                product=product,
                installed_version=version if product else "",
                severity=definition.severity,
                title=f"{definition.title} ({test_id})",
                description=definition.description,
            )
            if cve not in given:
                given.add(cve)
                record = facts(cve, description=definition.description)
                if record is not None:
                    yield record
