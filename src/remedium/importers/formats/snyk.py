"""Snyk Open Source results (``snyk test --json``, one project or ``--all-projects``' list);
see ``docs/formats.md`` (Snyk)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import (
    cvss3_vector,
    cwe_ids,
    facts,
    fix_for_installed,
    is_cve,
    require,
    score,
)
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    ecosystem_vendor,
    json_items,
    looks_like_json,
    peek_first_byte,
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

# Snyk's packageManager -> the vendor remedium records for the ecosystem (and how its
# versions compare, for the fixed version).
_MANAGER_VENDORS = {
    "npm": "npm",
    "yarn": "npm",
    "pnpm": "npm",
    "pip": "pypi",
    "pipenv": "pypi",
    "poetry": "pypi",
    "maven": "maven",
    "gradle": "maven",
    "sbt": "maven",
    "gomodules": "golang",
    "golangdep": "golang",
    "govendor": "golang",
    "rubygems": "gem",
    "nuget": "nuget",
    "paket": "nuget",
    "composer": "composer",
    "cocoapods": "cocoapods",
    "hex": "hex",
    "cargo": "cargo",
}


class SnykParser:
    """``snyk test --json``: ``{vulnerabilities: [...], projectName, displayTargetFile, path,
    packageManager, dependencyCount, ok, ...}``, or a list of them (``--all-projects``)."""

    name = "snyk"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head) or b'"vulnerabilities"' not in head:
            return False
        return b'"dependencyCount"' in head or (
            b'"upgradePath"' in head and b'"packageManager"' in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a snyk test report")
        first, stream = peek_first_byte(stream)
        info = ReportInfo(format=self.name, source="snyk")
        if first == b"[":
            return info, self._projects(json_items(stream, "item", filename))
        return info, self._projects(json_items(stream, "", filename))

    def _projects(self, projects: Iterator[Any]) -> Iterator[ImportRecord]:
        for index, raw in enumerate(projects):
            yield from _project(index, as_dict(raw))


def _project(index: int, project: dict[str, Any]) -> Iterator[ImportRecord]:
    name = text(project.get("projectName"))
    target = text(project.get("displayTargetFile")) or text(project.get("targetFile"))
    ref = f"{index}:{name}:{target}"
    if not name:
        yield SkippedRecord("project without a name", f"[{index}]")
        return
    manager = text(project.get("packageManager")).lower()
    ecosystem = _MANAGER_VENDORS.get(manager, ecosystem_vendor(manager))
    yield DeviceRecord(
        device_ref=ref,
        name=f"{name} ({target})" if target else name,
        asset_id=f"snyk:{name}/{target}" if target else f"snyk:{name}",
        os_platform="Other",
    )
    seen: set[tuple[str, str, str]] = set()
    installed: set[tuple[str, str]] = set()
    for number, raw in enumerate(as_list(project.get("vulnerabilities"))):
        vuln = as_dict(raw)
        own = text(vuln.get("id"))
        package, version = text(vuln.get("packageName")), text(vuln.get("version"))
        where = f"[{index}].vulnerabilities[{number}] {own}".strip()
        if text(vuln.get("type")) == "license":
            yield SkippedRecord("license issue (not a vulnerability)", where)
            continue
        if not own or not package:
            yield SkippedRecord("vulnerability without an id or a package", where)
            continue
        # Snyk repeats a vulnerability once per dependency path ("from"): one finding.
        if (own, package, version) in seen:
            continue
        seen.add((own, package, version))
        if (package, version) not in installed:
            installed.add((package, version))
            yield SoftwareRecord(device_ref=ref, vendor=ecosystem, product=package, version=version)
        identifiers = as_dict(vuln.get("identifiers"))
        cves = [text(c) for c in as_list(identifiers.get("CVE")) if is_cve(text(c))]
        vector = cvss3_vector(vuln.get("CVSSv3"))
        base = score(vuln.get("cvssScore"))
        epss = as_dict(vuln.get("epssDetails"))
        description = text(vuln.get("description"))
        fixed = fix_for_installed(
            version, [text(v) for v in as_list(vuln.get("fixedIn"))], ecosystem
        )
        for vulnerability_id in cves or [own]:
            yield FindingRecord(
                device_ref=ref,
                vulnerability_id=vulnerability_id,
                vendor=ecosystem,
                product=package,
                installed_version=version,
                fixed_version=fixed,
                severity=severity(vuln.get("severity")),
                cvss_v3_vector=vector,
                cvss_v3_score=base if vector or not vuln.get("CVSSv3") else None,
                title=f"{text(vuln.get('title'))} ({own})" if vuln.get("title") else own,
                description=description,
            )
            record = facts(
                vulnerability_id,
                description=description,
                cvss_v3_vector=vector,
                epss=score(epss.get("probability")),
                epss_percentile=score(epss.get("percentile")),
                cwes=cwe_ids(as_list(identifiers.get("CWE"))),
            )
            if record is not None:
                yield record
