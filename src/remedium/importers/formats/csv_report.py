"""remedium's own CSV: one row per installed package or per finding, for any tool's output.

Columns (header row required, names case-insensitive, any order; only ``device``/``ip``/
``asset_id`` (at least one) and ``product`` or ``cve`` are needed)::

    device,ip,asset_id,os_platform,os_version,device_group,vendor,product,version,cve,fixed_version,severity

A row with ``cve`` is a finding (on ``product`` when given); a row with ``product`` and no
``cve`` is an installed package. See ``docs/formats.md`` (remedium CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

from remedium.importers.formats._common import severity
from remedium.importers.formats._csvstream import HEADER_ONLY
from remedium.importers.limits import field_too_large, max_field_bytes
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

COLUMNS = (
    "device",
    "ip",
    "asset_id",
    "os_platform",
    "os_version",
    "device_group",
    "vendor",
    "product",
    "version",
    "cve",
    "fixed_version",
    "severity",
)
_DEVICE_KEYS = ("device", "ip", "asset_id")


def _header(line: str) -> list[str]:
    return [c.strip().lower() for c in next(csv.reader([line]), [])]


class CsvReportParser:
    """The documented remedium CSV (``device,...,product,version,cve,...`` header)."""

    name = "csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        first_line = head.decode("utf-8-sig", "replace").splitlines()[:1]
        if not first_line:
            return False
        columns = set(_header(first_line[0]))
        return (
            columns <= set(COLUMNS)
            and bool(columns & set(_DEVICE_KEYS))
            and bool(columns & {"product", "cve"})
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        text_stream = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        csv.field_size_limit(max_field_bytes())  # one cell, capped while read (limits.py)
        reader = csv.reader(text_stream)
        try:
            header = [c.strip().lower() for c in next(reader)]
        except StopIteration:
            raise ReportError("the file is empty", filename=filename) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            if "field limit" in str(exc):
                raise field_too_large(filename, "line 1") from None
            raise ReportError(
                f"unreadable CSV ({exc})", where="line 1", filename=filename
            ) from None
        unknown = [c for c in header if c not in COLUMNS]
        if unknown:
            raise ReportError(
                f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}",
                where="line 1",
                filename=filename,
            )
        if not set(header) & set(_DEVICE_KEYS) or not set(header) & {"product", "cve"}:
            raise ReportError(
                "the header needs a device, ip or asset_id column and a product or cve column",
                where="line 1",
                filename=filename,
            )
        info = ReportInfo(format=self.name, source="csv", complete_scan=False, may_be_complete=True)
        return info, self._records(reader, header, filename)

    def _records(
        self, reader: Iterator[list[str]], header: list[str], filename: str
    ) -> Iterator[ImportRecord]:
        devices: set[str] = set()
        packages: set[tuple[str, str, str, str]] = set()
        line = 1
        given = 0
        try:
            for values in reader:
                line += 1
                if not any(v.strip() for v in values):
                    continue
                where = f"line {line}"
                if len(values) != len(header):
                    raise ReportError(
                        f"{len(values)} values for {len(header)} columns",
                        where=where,
                        filename=filename,
                    )
                given += 1
                row = {k: v.strip() for k, v in zip(header, values, strict=True)}
                ref = row.get("asset_id") or row.get("device") or row.get("ip") or ""
                if not ref:
                    yield SkippedRecord("row names no device, ip or asset_id", where)
                    continue
                raw_severity = row.get("severity", "")
                if raw_severity and not severity(raw_severity):
                    yield SkippedRecord(
                        f"severity {raw_severity!r} is not Low, Medium, High or Critical", where
                    )
                    continue
                if ref not in devices:
                    devices.add(ref)
                    yield DeviceRecord(
                        device_ref=ref,
                        name=row.get("device") or row.get("ip") or ref,
                        ip_address=row.get("ip", ""),
                        asset_id=row.get("asset_id", ""),
                        os_platform=row.get("os_platform", ""),
                        os_version=row.get("os_version", ""),
                        device_group=row.get("device_group", ""),
                    )
                vendor, product = row.get("vendor", "").lower(), row.get("product", "")
                version = row.get("version", "")
                package = (ref, vendor, product, version)
                if product and package not in packages:
                    packages.add(package)
                    yield SoftwareRecord(
                        device_ref=ref, vendor=vendor, product=product, version=version
                    )
                cve = row.get("cve", "")
                if cve:
                    yield FindingRecord(
                        device_ref=ref,
                        vulnerability_id=cve,
                        vendor=vendor,
                        product=product,
                        installed_version=version,
                        fixed_version=row.get("fixed_version", ""),
                        severity=severity(raw_severity),
                    )
                elif not product:
                    yield SkippedRecord("row has neither product nor cve", where)
        except (csv.Error, UnicodeDecodeError) as exc:
            if "field limit" in str(exc):
                raise field_too_large(filename, f"line {line}") from None
            raise ReportError(
                f"unreadable CSV ({exc})", where=f"line {line}", filename=filename
            ) from None
        if not given:
            raise ReportError(HEADER_ONLY, where=f"line {line + 1}", filename=filename)
