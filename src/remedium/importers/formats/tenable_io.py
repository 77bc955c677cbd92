"""Tenable Vulnerability Management (Tenable.io) vulnerability export chunks (``GET
/vulns/export/{uuid}/chunks/{n}``: a JSON array of vulnerabilities); see ``docs/formats.md``
(Tenable.io)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import cvss3_vector, facts, is_cve, require, score
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_items,
    looks_like_json,
    parse_time,
    severity,
    text,
)
from remedium.importers.formats._xmlstream import (
    cpe_vendor_product,
    detected_cpe,
    os_platform,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
)

_INSTALLED = re.compile(r"Installed version\s*:\s*(\S+)", re.IGNORECASE)
_FIXED = re.compile(r"Fixed version\s*:\s*([^\r\n]+)", re.IGNORECASE)


class TenableIoParser:
    """One vulnerability per array item: ``asset``, ``plugin``, ``port``, ``scan``,
    ``severity``, ``state``, ``output``, ``first_found``, ``last_found``."""

    name = "tenable_io"

    def sniff(self, head: bytes, filename: str) -> bool:
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return (
            looks_like_json(head)
            and stripped[:1] == b"["
            and b'"plugin"' in head
            and b'"asset"' in head
            and (b'"severity_id"' in head or b'"first_found"' in head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a Tenable.io vulnerability export chunk")
        # One chunk of an export is a part of it: it fixes nothing it does not list.
        info = ReportInfo(format=self.name, source="tenable-io", complete_scan=False)
        return info, self._records(json_items(stream, "item", filename))

    def _records(self, items: Iterator[Any]) -> Iterator[ImportRecord]:
        devices: set[str] = set()
        given: set[str] = set()
        for index, raw in enumerate(items):
            item = as_dict(raw)
            asset = as_dict(item.get("asset"))
            plugin = as_dict(item.get("plugin"))
            where = f"[{index}] plugin {text(plugin.get('id'))}"
            ref = text(asset.get("uuid")) or text(asset.get("ipv4"))
            if not ref:
                yield SkippedRecord("vulnerability on an asset without a uuid or address", where)
                continue
            if ref not in devices:
                devices.add(ref)
                yield _device(ref, asset)
            if text(item.get("state")).upper() == "FIXED":
                yield SkippedRecord("fixed in Tenable", where)
                continue
            rating = severity(item.get("severity"))
            if not rating or text(item.get("severity")).lower() == "info":
                yield SkippedRecord("informational (severity info)", where)
                continue
            cves = list(dict.fromkeys(text(c) for c in as_list(plugin.get("cve"))))
            if not cves:
                yield SkippedRecord("no CVE", where)
                continue
            output = text(item.get("output"))
            vendor, product, _ = cpe_vendor_product(
                detected_cpe(text(c) for c in as_list(plugin.get("cpe")))
            )
            installed = _first(_INSTALLED, output)
            vector = _vector(text(as_dict(plugin.get("cvss3_vector")).get("raw")))
            description = text(plugin.get("synopsis"))
            for cve in cves:
                if not is_cve(cve):
                    yield SkippedRecord(f"not a CVE id: {cve!r}", where)
                    continue
                yield FindingRecord(
                    device_ref=ref,
                    vulnerability_id=cve,
                    vendor=vendor,
                    product=product,
                    installed_version=installed,
                    fixed_version=_first(_FIXED, output),
                    severity=rating,
                    cvss_v3_vector=vector,
                    cvss_v3_score=score(plugin.get("cvss3_base_score")),
                    title=text(plugin.get("name")),
                    description=description,
                )
                if cve not in given:
                    given.add(cve)
                    record = facts(cve, cvss_v3_vector=vector)
                    if record is not None:
                        yield record


def _device(ref: str, asset: dict[str, Any]) -> DeviceRecord:
    systems = [text(s) for s in as_list(asset.get("operating_system")) if text(s)]
    name = (
        text(asset.get("fqdn"))
        or text(asset.get("hostname"))
        or text(asset.get("netbios_name"))
        or text(asset.get("ipv4"))
        or ref
    )
    return DeviceRecord(
        device_ref=ref,
        name=name,
        ip_address=text(asset.get("ipv4")),
        asset_id=text(asset.get("uuid")),
        os_platform=os_platform(systems[0]) if systems else "",
        os_version=systems[0] if systems else "",
        last_seen=parse_time(
            asset.get("last_scan_time") or asset.get("last_authenticated_results")
        ),
    )


def _vector(raw: str) -> str:
    """The plugin's CVSS v3 vector. Tenable.io writes its base metrics without the
    ``CVSS:3.0/`` prefix; Nessus writes the same plugin's vector with it (Tenable scores
    plugins with CVSS 3.0), so the prefix is restored."""
    if raw and not raw.upper().startswith("CVSS:") and "/PR:" in raw and "/S:" in raw:
        raw = "CVSS:3.0/" + raw
    return cvss3_vector(raw)


def _first(pattern: re.Pattern[str], output: str) -> str:
    match = pattern.search(output)
    return match.group(1).strip() if match else ""
