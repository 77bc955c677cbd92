"""GitHub Dependabot alerts, as the REST API lists them (``GET /repos/{owner}/{repo}/
dependabot/alerts``, or the organization's and enterprise's lists, whose alerts name their
repository); see ``docs/formats.md`` (GitHub Dependabot alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.batches import UNNAMED
from remedium.importers.formats._advisory import (
    cve_or_own,
    cvss3_vector,
    cwe_ids,
    facts,
    require,
    score,
)
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    ecosystem_vendor,
    json_items,
    looks_like_json,
    severity,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
)

_ECOSYSTEM_VENDORS = {"pip": "pypi", "go": "golang", "rubygems": "gem", "rust": "cargo"}


class DependabotParser:
    """A JSON array of alerts: ``number``, ``state``, ``dependency`` (``package``,
    ``manifest_path``), ``security_advisory``, ``security_vulnerability``, ``repository``."""

    name = "dependabot"

    def sniff(self, head: bytes, filename: str) -> bool:
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return (
            looks_like_json(head)
            and stripped[:1] == b"["
            and b'"security_advisory"' in head
            and b'"security_vulnerability"' in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a list of Dependabot alerts")
        # A listing is filtered by state, severity, ecosystem...: it fixes nothing it omits.
        info = ReportInfo(format=self.name, source="dependabot", complete_scan=False)
        return info, self._records(json_items(stream, "item", filename))

    def _records(self, alerts: Iterator[Any]) -> Iterator[ImportRecord]:
        devices: set[str] = set()
        for index, raw in enumerate(alerts):
            alert = as_dict(raw)
            where = f"[{index}] alert {text(alert.get('number'))}"
            state = text(alert.get("state")).lower()
            if state == "fixed":
                yield SkippedRecord("alert fixed in GitHub", where)
                continue
            if state in ("dismissed", "auto_dismissed"):
                reason = text(alert.get("dismissed_reason")) or state
                yield SkippedRecord(f"alert dismissed in GitHub ({reason})", where)
                continue
            repository = as_dict(alert.get("repository"))
            device = text(repository.get("full_name")) or UNNAMED
            if device != UNNAMED and device not in devices:
                devices.add(device)
                yield DeviceRecord(
                    device_ref=device,
                    name=device,
                    asset_id=f"github:{text(repository.get('id')) or device}",
                    os_platform="Other",
                )
            yield from _finding(alert, device, where)


def _finding(alert: dict[str, Any], device: str, where: str) -> Iterator[ImportRecord]:
    advisory = as_dict(alert.get("security_advisory"))
    vulnerable = as_dict(alert.get("security_vulnerability"))
    package = as_dict(as_dict(alert.get("dependency")).get("package")) or as_dict(
        vulnerable.get("package")
    )
    ghsa = text(advisory.get("ghsa_id"))
    identifiers = [as_dict(i).get("value") for i in as_list(advisory.get("identifiers"))]
    vulnerability_id = cve_or_own(ghsa, [advisory.get("cve_id"), *identifiers])
    if not vulnerability_id:
        yield SkippedRecord("alert without an advisory id", where)
        return
    ecosystem = text(package.get("ecosystem")).lower()
    vector, base = _cvss(advisory)
    description = text(advisory.get("description"))
    epss = advisory.get("epss")
    epss_entry = as_dict(as_list(epss)[0] if isinstance(epss, list) and epss else epss)
    yield FindingRecord(
        device_ref=device,
        vulnerability_id=vulnerability_id,
        vendor=_ECOSYSTEM_VENDORS.get(ecosystem, ecosystem_vendor(ecosystem)),
        product=text(package.get("name")),
        # The alert gives the vulnerable range, not the installed version.
        fixed_version=text(as_dict(vulnerable.get("first_patched_version")).get("identifier")),
        severity=severity(vulnerable.get("severity") or advisory.get("severity")),
        cvss_v3_vector=vector,
        cvss_v3_score=base,
        title=f"{text(advisory.get('summary'))} ({ghsa})"
        if ghsa
        else text(advisory.get("summary")),
        description=description,
    )
    record = facts(
        vulnerability_id,
        description=description,
        cvss_v3_vector=vector,
        cvss_v4_vector=text(
            as_dict(as_dict(advisory.get("cvss_severities")).get("cvss_v4")).get("vector_string")
        ),
        epss=score(epss_entry.get("percentage")),
        epss_percentile=score(epss_entry.get("percentile")),
        cwes=cwe_ids(as_dict(c).get("cwe_id") for c in as_list(advisory.get("cwes"))),
    )
    if record is not None:
        yield record


def _cvss(advisory: dict[str, Any]) -> tuple[str, float | None]:
    """The advisory's CVSS v3: ``cvss_severities.cvss_v3``, else the older ``cvss``."""
    for entry in (
        as_dict(as_dict(advisory.get("cvss_severities")).get("cvss_v3")),
        as_dict(advisory.get("cvss")),
    ):
        vector = cvss3_vector(entry.get("vector_string"))
        if vector:
            return vector, score(entry.get("score"))
    return "", None
