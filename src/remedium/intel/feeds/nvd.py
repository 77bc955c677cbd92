"""NVD CVE API 2.0 responses (``/rest/json/cves/2.0`` pages, or files of them).

Each ``vulnerabilities[].cve`` becomes a :class:`VulnerabilityRecord` (English description, CVSS
v3.1/v3.0 and v4.0 vectors preferring NVD's primary score, severity, dates, CWE ids, KEV dates)
and every vulnerable ``cpeMatch`` of its configurations an :class:`AffectedRange`. Rejected CVEs
are skipped. The retired JSON 1.1 data feeds are refused with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._jsonstream import objects
from remedium.importers.formats._xmlstream import cpe_vendor_product, peek
from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds._util import CWE_RE, parse_datetime, title_severity
from remedium.intel.feeds.records import AffectedRange, FeedInfo, FeedRecord, version_range

_API2 = re.compile(rb'"format"\s*:\s*"NVD_CVE"')
_LEGACY = (b'"CVE_Items"', b'"CVE_data_format"')
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"([^"]*)"')
_VERSION = re.compile(rb'"version"\s*:\s*"([^"]*)"')


class NvdFeed:
    """NVD CVE API 2.0 JSON."""

    name = "nvd"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for an API 2.0 page, and for a legacy 1.1 feed (which ``parse`` refuses clearly)."""
        return bool(_API2.search(head)) or any(marker in head for marker in _LEGACY)

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Stream the CVEs of an API 2.0 response."""
        head, stream = peek(stream)
        if any(marker in head for marker in _LEGACY):
            raise ReportError(
                "this is an NVD JSON 1.1 data feed, retired by NVD in 2023; "
                "download the CVE API 2.0 (/rest/json/cves/2.0) instead",
                where="CVE_Items",
                filename=filename,
            )
        if not _API2.search(head):
            raise ReportError(
                'not an NVD CVE API 2.0 response (no "format": "NVD_CVE")', filename=filename
            )
        stamp = _TIMESTAMP.search(head)
        version = _VERSION.search(head)
        info = FeedInfo(
            feed=self.name,
            version=version.group(1).decode() if version else "",
            released_at=parse_datetime(stamp.group(1).decode()) if stamp else None,
        )
        return info, self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[FeedRecord]:
        items = objects(stream, filename, lambda p: p == "vulnerabilities.item")
        for index, (_path, item) in enumerate(items):
            cve = item.get("cve") if isinstance(item, dict) else None
            where = f"vulnerabilities[{index}]"
            if not isinstance(cve, dict) or not cve.get("id"):
                raise ReportError(
                    "an item has no cve object with an id", where=where, filename=filename
                )
            yield from _cve(cve, where)


def _cve(cve: dict[str, Any], where: str) -> Iterator[FeedRecord]:
    cve_id = str(cve["id"])
    if str(cve.get("vulnStatus", "")).lower() == "rejected":
        yield SkippedRecord("rejected CVE", f"{where} ({cve_id})")
        return
    metrics = cve.get("metrics") or {}
    v3 = _primary(metrics.get("cvssMetricV31") or metrics.get("cvssMetricV30") or [])
    v4 = _primary(metrics.get("cvssMetricV40") or [])
    v3_data = v3.get("cvssData") or {}
    v4_data = v4.get("cvssData") or {}
    yield VulnerabilityRecord(
        vulnerability_id=cve_id,
        description=_english(cve.get("descriptions") or []),
        severity=title_severity(v3_data.get("baseSeverity"))
        or title_severity(v4_data.get("baseSeverity")),
        cvss_v3_vector=v3_data.get("vectorString") or None,
        cvss_v4_vector=v4_data.get("vectorString") or None,
        published_on=parse_datetime(cve.get("published")),
        updated_on=parse_datetime(cve.get("lastModified")),
        kev_listed=True if cve.get("cisaExploitAdd") else None,
        kev_date_added=parse_datetime(cve.get("cisaExploitAdd")),
        kev_due_date=parse_datetime(cve.get("cisaActionDue")),
        cwe_ids=_cwes(cve.get("weaknesses") or []),
    )
    for configuration in cve.get("configurations") or []:
        for node in configuration.get("nodes") or []:
            yield from _node(cve_id, node)


def _node(cve_id: str, node: dict[str, Any]) -> Iterator[FeedRecord]:
    for match in node.get("cpeMatch") or []:
        if not match.get("vulnerable"):
            continue  # a platform the vulnerable product must run on, not affected itself
        criteria = str(match.get("criteria") or "")
        _vendor, product, version = cpe_vendor_product(criteria)
        introduced = str(match.get("versionStartIncluding") or "")
        start_excluding = str(match.get("versionStartExcluding") or "")
        fixed = str(match.get("versionEndExcluding") or "")
        last = str(match.get("versionEndIncluding") or "")
        if not (introduced or start_excluding or fixed or last) and version:
            # No bounds: the CPE names the one affected version.
            introduced = last = version
        yield AffectedRange(
            vulnerability_id=cve_id,
            ecosystem="",
            package=product,
            cpe=criteria,
            introduced=introduced,
            fixed=fixed,
            last_affected=last,
            version_range=f"={introduced}"
            if introduced == last and introduced
            else version_range(introduced, fixed, last, start_excluding),
        )
    # API 2.0 nodes are flat, but older exports nest children.
    for child in node.get("children") or []:
        yield from _node(cve_id, child)


def _primary(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    for metric in metrics:
        if metric.get("type") == "Primary":
            return metric
    return metrics[0] if metrics else {}


def _english(descriptions: list[dict[str, Any]]) -> str | None:
    for description in descriptions:
        if description.get("lang", "").startswith("en"):
            return str(description.get("value") or "") or None
    return None


def _cwes(weaknesses: list[dict[str, Any]]) -> tuple[str, ...]:
    found = [
        str(d.get("value") or "")
        for weakness in weaknesses
        for d in weakness.get("description") or []
        if CWE_RE.fullmatch(str(d.get("value") or ""))
    ]
    return tuple(dict.fromkeys(found))
