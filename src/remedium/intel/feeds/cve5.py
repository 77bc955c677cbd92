"""CVE JSON 5 records (``dataType: CVE_RECORD``), as published by CVE.org and CNAs.

Each record becomes one :class:`VulnerabilityRecord`: the CNA's English description, CVSS v3.x
and v4 vectors from the CNA or ADP containers (CNA first), CWE ids and dates. Rejected records are
skipped. A JSON array of records is read too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._jsonstream import objects
from remedium.importers.formats._xmlstream import peek
from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds._util import CVE_RE, CWE_RE, parse_datetime, title_severity
from remedium.intel.feeds.records import FeedInfo, FeedRecord


class Cve5Feed:
    """CVE JSON 5.x records."""

    name = "cve5"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for a document declaring ``"dataType": "CVE_RECORD"``."""
        return b'"dataType"' in head and b'"CVE_RECORD"' in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Stream the record(s)."""
        head, stream = peek(stream)
        if not self.sniff(head, filename):
            raise ReportError(
                'not a CVE JSON 5 record (no "dataType": "CVE_RECORD")', filename=filename
            )
        return FeedInfo(feed=self.name), self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[FeedRecord]:
        for path, record in objects(stream, filename, lambda p: p in ("", "item")):
            where = path or "top level"
            if not isinstance(record, dict):
                raise ReportError("a CVE record must be an object", where=where, filename=filename)
            yield _record(record, where, filename)


def _record(record: dict[str, Any], where: str, filename: str) -> FeedRecord:
    metadata = record.get("cveMetadata") or {}
    cve = str(metadata.get("cveId") or "").strip()
    if not CVE_RE.match(cve):
        raise ReportError(
            f"cveMetadata.cveId is not a CVE id: {cve!r}", where=where, filename=filename
        )
    if str(metadata.get("state") or "").upper() == "REJECTED":
        return SkippedRecord("rejected CVE", cve)
    containers = record.get("containers") or {}
    cna = containers.get("cna") or {}
    if not isinstance(cna, dict):
        raise ReportError("containers.cna is not an object", where=cve, filename=filename)
    sources = [cna, *(a for a in containers.get("adp") or [] if isinstance(a, dict))]
    v3, v4 = _vectors(sources)
    return VulnerabilityRecord(
        vulnerability_id=cve,
        description=_english(cna.get("descriptions") or []),
        severity=v3[1] or v4[1],
        cvss_v3_vector=v3[0],
        cvss_v4_vector=v4[0],
        published_on=parse_datetime(metadata.get("datePublished") or cna.get("datePublic")),
        updated_on=parse_datetime(metadata.get("dateUpdated")),
        cwe_ids=_cwes(sources),
    )


def _vectors(
    sources: list[dict[str, Any]],
) -> tuple[tuple[str | None, str | None], tuple[str | None, str | None]]:
    v3: tuple[str | None, str | None] = (None, None)
    v4: tuple[str | None, str | None] = (None, None)
    for source in sources:
        for metric in source.get("metrics") or []:
            for key in ("cvssV3_1", "cvssV3_0"):
                data = metric.get(key)
                if isinstance(data, dict) and v3[0] is None and data.get("vectorString"):
                    v3 = (str(data["vectorString"]), title_severity(data.get("baseSeverity")))
            data = metric.get("cvssV4_0")
            if isinstance(data, dict) and v4[0] is None and data.get("vectorString"):
                v4 = (str(data["vectorString"]), title_severity(data.get("baseSeverity")))
    return v3, v4


def _english(descriptions: list[dict[str, Any]]) -> str | None:
    for description in descriptions:
        if str(description.get("lang", "")).startswith("en"):
            return str(description.get("value") or "") or None
    return None


def _cwes(sources: list[dict[str, Any]]) -> tuple[str, ...]:
    found: list[str] = []
    for source in sources:
        for problem in source.get("problemTypes") or []:
            for description in problem.get("descriptions") or []:
                cwe = str(description.get("cweId") or "")
                found += (
                    [cwe]
                    if CWE_RE.fullmatch(cwe)
                    else CWE_RE.findall(str(description.get("description") or ""))
                )
    return tuple(dict.fromkeys(found))
