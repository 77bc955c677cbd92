"""Twistlock / Prisma Cloud Compute scan results (``twistcli images scan --output-file``,
the JSON of ``twistcli``); see ``docs/formats.md`` (Twistlock / Prisma Cloud)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import cve_or_own, cvss3_vector, facts, require, score
from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    as_dict,
    as_list,
    json_head_keys,
    json_items,
    looks_like_json,
    parse_time,
    severity,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

# "glibc (used in libc6, multiarch-support)": the source package and the binaries built from it.
_USED_IN = re.compile(r"^(?P<name>[^\s(]+)\s*\(used in [^)]*\)\s*$")
_FIXED_IN = re.compile(r"^fixed in\s+(?P<versions>.+)$", re.IGNORECASE)
# twistcli's package types -> the vendor remedium records for them (OS packages: the distro).
_TYPE_VENDORS = {
    "python": "pypi",
    "nodejs": "npm",
    "jar": "maven",
    "gem": "gem",
    "go": "golang",
    "nuget": "nuget",
    "binary": "",
}


class TwistlockParser:
    """twistcli JSON: ``{"results": [{id, name, distro, vulnerabilities: [...], packages}]}``."""

    name = "twistlock"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head) or "results" not in json_head_keys(head):
            return False
        return any(
            marker in head
            for marker in (
                b'"vulnerabilityDistribution"',
                b'"complianceDistribution"',
                b'"packageVersion"',
                b'"complianceScanPassed"',
            )
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a twistcli scan report (no results)")
        info = ReportInfo(format=self.name, source="twistlock")
        return info, self._records(json_items(stream, "results.item", filename))

    def _records(self, results: Iterator[Any]) -> Iterator[ImportRecord]:
        for index, raw in enumerate(results):
            result = as_dict(raw)
            yield from _result(index, result)


def _result(index: int, result: dict[str, Any]) -> Iterator[ImportRecord]:
    image_id = text(result.get("id"))
    name = text(result.get("name")) or image_id
    ref = f"results[{index}]"
    if not name:
        yield SkippedRecord("scan result naming no image", ref)
        return
    distro = text(result.get("distro"))
    distro_vendor = _distro_vendor(distro, text(result.get("distroRelease")))
    yield DeviceRecord(
        device_ref=ref,
        name=name,
        asset_id=text(result.get("digest")) or image_id or name,
        os_platform="Linux" if distro else "Other",
        os_version=distro,
        last_seen=parse_time(result.get("scanTime")),
    )
    types: dict[str, str] = {}
    for raw_package in as_list(result.get("packages")):
        package = as_dict(raw_package)
        package_name, version = text(package.get("name")), text(package.get("version"))
        kind = text(package.get("type"))
        vendor = distro_vendor if kind == "os" else type_vendor(kind)
        types[package_name] = vendor
        if package_name and version:
            yield SoftwareRecord(
                device_ref=ref, vendor=vendor, product=package_name, version=version
            )
    for compliance in as_list(result.get("compliances")):
        title = text(as_dict(compliance).get("title"))
        yield SkippedRecord("compliance check (not a vulnerability)", f"{ref} {title}".strip())
    for number, raw_vuln in enumerate(as_list(result.get("vulnerabilities"))):
        vuln = as_dict(raw_vuln)
        own = text(vuln.get("id")) or text(vuln.get("cve"))
        where = f"{ref}.vulnerabilities[{number}] {own}".strip()
        if not own:
            yield SkippedRecord("vulnerability without an id", where)
            continue
        package_name = text(vuln.get("packageName"))
        used_in = _USED_IN.match(package_name)
        product = used_in.group("name") if used_in else package_name
        vulnerability_id = cve_or_own(own, ())
        raw_severity = vuln.get("severity")
        rating = SEVERITY_SPELLINGS.get(raw_severity) if isinstance(raw_severity, str) else ""
        vector = cvss3_vector(vuln.get("vector"))
        description = text(vuln.get("description"))
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=vulnerability_id,
            vendor=types.get(product, types.get(package_name, distro_vendor if used_in else "")),
            product=product,
            installed_version=text(vuln.get("packageVersion")),
            fixed_version=fixed_from_status(text(vuln.get("status"))),
            severity=rating if rating is not None else severity(raw_severity),
            cvss_v3_vector=vector,
            cvss_v3_score=score(vuln.get("cvss")) if vector or not vuln.get("vector") else None,
            description=description,
        )
        record = facts(vulnerability_id, description=description, cvss_v3_vector=vector)
        if record is not None:
            yield record


def fixed_from_status(status: str) -> str:
    """The version of twistcli's ``status`` ("fixed in 2.24-11+deb9u5"; several versions are
    listed as "fixed in 1.2.3, 2.0.1", of which the first is kept only when it is the one)."""
    match = _FIXED_IN.match(status)
    if not match:
        return ""
    versions = [v.strip() for v in match.group("versions").split(",") if v.strip()]
    return versions[0] if len(versions) == 1 else ""


def type_vendor(kind: str) -> str:
    """The vendor of a twistcli package type other than "os" (python -> pypi, …)."""
    return _TYPE_VENDORS.get(kind, kind)


def _distro_vendor(distro: str, release: str) -> str:
    """The distribution as a vendor: "Debian GNU/Linux 9 (stretch)" -> "debian"."""
    words = distro.split() or release.split()
    return re.sub(r"[^a-z]", "", words[0].lower()) if words else ""
