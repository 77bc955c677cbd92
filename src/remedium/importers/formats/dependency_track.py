"""Dependency-Track findings export, the Finding Packaging Format (FPF: ``GET
/api/v1/finding/project/{uuid}/export``); see ``docs/formats.md`` (Dependency-Track)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import (
    cve_or_own,
    cvss3_vector,
    cwe_ids,
    facts,
    score,
)
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_first,
    json_head_keys,
    json_items,
    looks_like_json,
    parse_time,
    purl_vendor_product,
    seekable,
    severity,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_DEVICE_REF = "project"
# Dependency-Track's analysis states that say the component is not affected.
_NOT_AFFECTED = {"NOT_AFFECTED": "not_affected", "FALSE_POSITIVE": "false_positive"}


class DependencyTrackParser:
    """FPF: ``{"version", "meta": {application, version, timestamp}, "project": {...},
    "findings": [{component, vulnerability, analysis, attribution, matrix}]}``."""

    name = "dependency_track"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        return "findings" in keys and (
            b'"Dependency-Track"' in head or ("meta" in keys and b'"matrix"' in head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = seekable(stream)
        project = as_dict(json_first(stream, "project", filename))
        stream.seek(0)
        meta = as_dict(json_first(stream, "meta", filename))
        stream.seek(0)
        if not project:
            raise ReportError("not a Dependency-Track export: no project", filename=filename)
        # An export lists the project's current findings: those no longer listed are fixed.
        info = ReportInfo(
            format=self.name,
            source="dependency-track",
            scanned_at=parse_time(meta.get("timestamp")),
        )
        return info, self._records(project, json_items(stream, "findings.item", filename))

    def _records(self, project: dict[str, Any], findings: Iterator[Any]) -> Iterator[ImportRecord]:
        name = text(project.get("name"))
        version = text(project.get("version"))
        yield DeviceRecord(
            device_ref=_DEVICE_REF,
            name=f"{name} {version}".strip() if name else text(project.get("uuid")),
            asset_id=text(project.get("uuid")) or name,
            os_platform="Other",
        )
        for index, raw in enumerate(findings):
            finding = as_dict(raw)
            component = as_dict(finding.get("component"))
            vuln = as_dict(finding.get("vulnerability"))
            analysis = as_dict(finding.get("analysis"))
            own = text(vuln.get("vulnId"))
            where = f"findings[{index}] {own} {text(component.get('name'))}".strip()
            if not own:
                yield SkippedRecord("finding without a vulnerability id", where)
                continue
            if analysis.get("isSuppressed") is True:
                yield SkippedRecord("suppressed in Dependency-Track", where)
                continue
            aliases = [
                alias_id
                for alias in as_list(vuln.get("aliases"))
                for alias_id in as_dict(alias).values()
            ]
            vulnerability_id = cve_or_own(own, aliases)
            purl = text(component.get("purl"))
            vendor, product, _ = purl_vendor_product(purl)
            vector = cvss3_vector(vuln.get("cvssV3Vector"))
            description = text(vuln.get("description"))
            state = text(analysis.get("state")).upper()
            cwes = cwe_ids(
                [as_dict(c).get("cweId") for c in as_list(vuln.get("cwes"))] or [vuln.get("cweId")]
            )
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=vendor or text(component.get("group")),
                product=text(component.get("name")) or product,
                installed_version=text(component.get("version")),
                purl=purl,
                severity=severity(vuln.get("severity")),  # UNASSIGNED stays empty
                cvss_v3_vector=vector,
                cvss_v3_score=score(vuln.get("cvssV3BaseScore")),
                title=text(vuln.get("title")) or (own if own != vulnerability_id else ""),
                description=description,
                vex_state="not_affected" if state in _NOT_AFFECTED else "",
                vex_justification=_NOT_AFFECTED.get(state, ""),
            )
            record = facts(
                vulnerability_id,
                description=description,
                cvss_v3_vector=vector,
                cvss_v4_vector=text(vuln.get("cvssV4Vector")),
                epss=score(vuln.get("epssScore")),
                epss_percentile=score(vuln.get("epssPercentile")),
                cwes=cwes,
            )
            if record is not None:
                yield record
