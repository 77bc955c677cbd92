"""Twistlock / Prisma Cloud Compute CSV exports of image vulnerabilities (the console's
Monitor > Vulnerabilities > Images "CSV" button); see ``docs/formats.md`` (Twistlock / Prisma
Cloud)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from remedium.importers.formats._advisory import cve_or_own, facts, score
from remedium.importers.formats._common import severity
from remedium.importers.formats._csvstream import CsvExport, Layout, Row, find_layout
from remedium.importers.formats.twistlock import fixed_from_status, type_vendor
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

PRISMA = Layout(
    name="Prisma Cloud images CSV",
    markers=("CVE ID", "Fix Status", "Package Version", "Packages"),
    required=(("Id",), ("Severity",), ("Type",), ("Distro",)),
)
_DISTRO = re.compile(r"^([a-z]+)", re.IGNORECASE)


class TwistlockCsvParser:
    """One row per (image, vulnerability): ``Registry``, ``Repository``, ``Tag``, ``Id``,
    ``Distro``, ``CVE ID``, ``Type``, ``Severity``, ``Packages``, ``Source Package``,
    ``Package Version``, ``CVSS``, ``Fix Status``, ``Description``, ``Discovered``, …"""

    name = "twistlock_csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        return find_layout(head, [PRISMA]) is not None

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        export = CsvExport(stream, filename, [PRISMA], what="Prisma Cloud images CSV export")
        # A CSV export cannot show that it is whole: it fixes nothing.
        info = ReportInfo(format=self.name, source="twistlock", complete_scan=False)
        return info, self._records(export, filename)

    def _records(self, export: CsvExport, filename: str) -> Iterator[ImportRecord]:
        devices: set[str] = set()
        rows = 0
        for row in export.rows():
            rows += 1
            yield from _row(row, devices)
        if rows == 0:
            raise ReportError("a header row and no data rows", filename=filename)


def _row(row: Row, devices: set[str]) -> Iterator[ImportRecord]:
    where = f"line {row.line}"
    repository = row.get("Repository")
    tag = row.get("Tag")
    image = "/".join(p for p in (row.get("Registry"), repository) if p)
    name = f"{image}:{tag}" if image and tag else image or row.get("Id")
    ref = row.get("Id") or name
    if not ref:
        yield SkippedRecord("row naming no image", where)
        return
    distro = row.get("Distro")
    if ref not in devices:
        devices.add(ref)
        yield DeviceRecord(
            device_ref=ref,
            name=name,
            asset_id=row.get("Id") or name,
            os_platform="Linux" if distro else "Other",
            os_version=distro,
        )
    own = row.get("CVE ID")
    if not own:
        yield SkippedRecord("compliance check (not a vulnerability)", where)
        return
    kind = row.get("Type").lower()
    distro_match = _DISTRO.match(distro)
    vendor = (
        (distro_match.group(1).lower() if distro_match else "")
        if kind == "os"
        else type_vendor(kind)
    )
    source = row.get("Source Package")
    packages = [source] if source else [p for p in re.split(r"[;,]", row.get("Packages")) if p]
    vulnerability_id = cve_or_own(own, ())
    description = row.get("Description")
    base = score(row.get("CVSS"))
    for package in packages:
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=vulnerability_id,
            vendor=vendor,
            product=package.strip(),
            installed_version=row.get("Package Version"),
            fixed_version=fixed_from_status(row.get("Fix Status")),
            severity=severity(row.get("Severity")),
            # The export gives the score without its vector: kept as the score it rates with.
            cvss_v3_score=base if base else None,
            description=description,
        )
    record = facts(vulnerability_id, description=description)
    if record is not None:
        yield record
