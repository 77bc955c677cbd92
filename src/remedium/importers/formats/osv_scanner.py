"""OSV-Scanner JSON reports (``osv-scanner --format json``); see ``docs/formats.md``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    ecosystem_vendor,
    json_head_keys,
    json_prefix_keys,
    json_values,
    looks_like_json,
    severity,
    severity_from_score,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)
from remedium.recommendations.engine import compare_versions, version_key


def _cve_of(group_ids: list[str], vulns: list[dict[str, Any]]) -> str:
    """The id a group of aliased advisories is recorded under: its CVE when it has one."""
    candidates = list(group_ids)
    for vuln in vulns:
        if text(vuln.get("id")) in group_ids:
            candidates += [text(a) for a in as_list(vuln.get("aliases"))]
    for candidate in candidates:
        if candidate.upper().startswith("CVE-"):
            return candidate
    return group_ids[0] if group_ids else ""


def _vector(vuln: dict[str, Any]) -> str:
    for raw_entry in as_list(vuln.get("severity")):
        entry = as_dict(raw_entry)
        if text(entry.get("type")) == "CVSS_V3":
            return text(entry.get("score"))
    return ""


def _fixed_version(vuln: dict[str, Any], name: str, installed: str) -> str:
    """The version that fixes ``name`` at ``installed``: the ``fixed`` event of the affected
    range that contains the installed version (an advisory lists one range per release line;
    the first ``fixed`` may be older than what is installed). Without an installed version, or
    when no range can be shown to contain it, the lowest fix newer than it, else none."""
    later: list[str] = []
    for raw_affected in as_list(vuln.get("affected")):
        affected = as_dict(raw_affected)
        if text(as_dict(affected.get("package")).get("name")) != name:
            continue
        for version_range in as_list(affected.get("ranges")):
            if text(as_dict(version_range).get("type")).upper() == "GIT":
                continue  # commits, not versions
            introduced = ""
            for raw_event in as_list(as_dict(version_range).get("events")):
                event = as_dict(raw_event)
                if "introduced" in event:
                    introduced = text(event.get("introduced"))
                    continue
                fixed = text(event.get("fixed"))
                if not fixed:
                    continue
                if not installed:
                    return fixed
                starts = introduced in ("", "0") or compare_versions(introduced, installed) <= 0
                if starts and compare_versions(installed, fixed) < 0:
                    return fixed
                if compare_versions(fixed, installed) > 0:
                    later.append(fixed)
    if later:
        return min(later, key=version_key)
    return ""


def _cwes(vuln: dict[str, Any]) -> tuple[str, ...]:
    """The CWE ids an advisory gives (GitHub's ``database_specific.cwe_ids``)."""
    found = [
        text(c).upper() for c in as_list(as_dict(vuln.get("database_specific")).get("cwe_ids"))
    ]
    return tuple(dict.fromkeys(c for c in found if c.startswith("CWE-")))


class OsvScannerParser:
    """OSV-Scanner results: each scanned source (lockfile, directory, image) is a device."""

    name = "osv_scanner"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        if "results" not in json_head_keys(head):
            return False
        # Other tools also have "results"; OSV-Scanner's each open with source and packages.
        result_keys = json_prefix_keys(head, "results.item")
        if not result_keys:
            return re.sub(rb"\s", b"", head).startswith(b'{"results":[]')
        return "packages" in result_keys and result_keys <= {"source", "packages"}

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        values = json_values(stream, ["results.item"], filename, markers=["results"])
        first = next(values, None)
        if first is None or first != ("results", None):
            raise ReportError(
                "not an OSV-Scanner report: no results list (or the file is empty)",
                filename=filename,
            )
        return ReportInfo(format=self.name, source="osv-scanner"), self._records(first, values)

    def _records(
        self, first: tuple[str, Any], rest: Iterator[tuple[str, Any]]
    ) -> Iterator[ImportRecord]:
        for index, (_prefix, value) in enumerate(rest):
            yield from self._result(as_dict(value), index)

    def _result(self, result: dict[str, Any], index: int) -> Iterator[ImportRecord]:
        source = as_dict(result.get("source"))
        path = text(source.get("path"))
        ref = path or f"results[{index}]"
        yield DeviceRecord(
            device_ref=ref,
            name=path or ref,
            asset_id=path or ref,
            os_platform="Linux" if text(source.get("type")) in ("docker", "image") else "Other",
        )
        for p_index, raw_entry in enumerate(as_list(result.get("packages"))):
            entry = as_dict(raw_entry)
            where = f"results[{index}].packages[{p_index}]"
            package = as_dict(entry.get("package"))
            name = text(package.get("name"))
            if not name:
                commit = text(package.get("commit"))
                reason = (
                    f"package known only by git commit {commit}"
                    if commit
                    else "package without a name"
                )
                yield SkippedRecord(reason + "; its advisories are not imported", where)
                continue
            vendor = ecosystem_vendor(text(package.get("ecosystem")))
            version = text(package.get("version"))
            purl = text(package.get("purl"))
            yield SoftwareRecord(
                device_ref=ref, vendor=vendor, product=name, version=version, purl=purl
            )
            vulns = [as_dict(v) for v in as_list(entry.get("vulnerabilities"))]
            groups = [
                [text(i) for i in as_list(as_dict(g).get("ids")) if text(i)]
                for g in as_list(entry.get("groups"))
            ]
            # OSV-Scanner groups advisories that are aliases of one another; each group is one
            # weakness. Reports without groups list one weakness per advisory.
            if not groups:
                groups = [[text(v.get("id"))] for v in vulns if text(v.get("id"))]
            by_id = {text(v.get("id")): v for v in vulns}
            max_severities = [as_dict(g).get("max_severity") for g in as_list(entry.get("groups"))]
            for g_index, ids in enumerate(groups):
                members = [by_id[i] for i in ids if i in by_id]
                vulnerability_id = _cve_of(ids, members)
                if not vulnerability_id:
                    yield SkippedRecord("vulnerability group without ids", where)
                    continue
                lead = members[0] if members else {}
                score = None
                raw = max_severities[g_index] if g_index < len(max_severities) else None
                try:
                    score = float(raw) if raw not in (None, "") else None
                except (TypeError, ValueError):
                    score = None
                sev = severity(as_dict(lead.get("database_specific")).get("severity"))
                vector = _vector(lead)
                yield FindingRecord(
                    device_ref=ref,
                    vulnerability_id=vulnerability_id,
                    vendor=vendor,
                    product=name,
                    installed_version=version,
                    fixed_version=_fixed_version(lead, name, version),
                    purl=purl,
                    severity=sev or severity_from_score(score),
                    cvss_v3_vector=vector,
                    cvss_v3_score=score,
                    title=text(lead.get("summary")),
                    description=text(lead.get("details")),
                )
                cwes = _cwes(lead)
                if vector or sev or cwes or text(lead.get("details")):
                    yield VulnerabilityRecord(
                        vulnerability_id=vulnerability_id,
                        description=text(lead.get("details")) or None,
                        severity=sev or None,
                        cvss_v3_vector=vector or None,
                        cwe_ids=cwes,
                    )
