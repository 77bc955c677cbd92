"""OSV records (https://ossf.github.io/osv-schema/): one record per file, or a JSON array of them.

Each record becomes a :class:`VulnerabilityRecord` under each CVE it is known as (``aliases``,
``upstream``, or its own id) — under its own id when it names no CVE — with its CVSS vectors,
details and dates; and every affected package range an :class:`AffectedRange` per such id.
Withdrawn records and GIT commit ranges are skipped with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._jsonstream import objects
from remedium.importers.formats._xmlstream import peek
from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds._util import CVE_RE, CWE_RE, parse_datetime
from remedium.intel.feeds.records import AffectedRange, FeedInfo, FeedRecord, version_range

_ID = re.compile(rb'"id"\s*:\s*"')
_MODIFIED = re.compile(rb'"modified"\s*:\s*"')
# purl types for OSV ecosystems (the part before ":" — "Debian:12" is Debian).
_PURL_TYPES = {
    "Go": "golang", "npm": "npm", "PyPI": "pypi", "crates.io": "cargo", "RubyGems": "gem",
    "NuGet": "nuget", "Packagist": "composer", "Hex": "hex", "Pub": "pub", "Maven": "maven",
    "Debian": "deb/debian", "Ubuntu": "deb/ubuntu", "Alpine": "apk/alpine",
    "AlmaLinux": "rpm/almalinux", "Rocky Linux": "rpm/rocky-linux", "Red Hat": "rpm/redhat",
    "openSUSE": "rpm/opensuse", "SUSE": "rpm/suse", "Wolfi": "apk/wolfi",
    "Chainguard": "apk/chainguard",
}  # fmt: skip


class OsvFeed:
    """OSV JSON records (Go vulndb, GHSA, PyPA, distributions...)."""

    name = "osv"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for an object (or array of objects) with an ``id`` and a ``modified`` date."""
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        return (
            start in (b"{", b"[")
            and bool(_ID.search(head))
            and bool(_MODIFIED.search(head))
            and b'"results"' not in head  # osv-scanner output embeds records: another format
            and b'"dataType"' not in head  # CVE JSON 5
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Stream the record(s)."""
        head, stream = peek(stream)
        if not self.sniff(head, filename):
            raise ReportError(
                "not an OSV record (an object with id and modified)", filename=filename
            )
        return FeedInfo(feed=self.name), self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[FeedRecord]:
        for path, record in objects(stream, filename, lambda p: p in ("", "item")):
            if not isinstance(record, dict):
                raise ReportError(
                    "an OSV record must be an object", where=path or "top level", filename=filename
                )
            yield from _record(record, filename)


def _record(record: dict[str, Any], filename: str) -> Iterator[FeedRecord]:
    osv_id = str(record.get("id") or "").strip()
    if not osv_id:
        raise ReportError("OSV record without an id", where="id", filename=filename)
    if record.get("withdrawn"):
        yield SkippedRecord(f"withdrawn on {record['withdrawn']}", osv_id)
        return
    related = [osv_id, *(record.get("aliases") or []), *(record.get("upstream") or [])]
    cves = [str(x) for x in dict.fromkeys(related) if CVE_RE.match(str(x))]
    ids = cves or [osv_id]
    severity = {str(s.get("type")): str(s.get("score")) for s in record.get("severity") or []}
    cwes = (record.get("database_specific") or {}).get("cwe_ids") or []
    for vulnerability_id in ids:
        yield VulnerabilityRecord(
            vulnerability_id=vulnerability_id,
            description=str(record.get("details") or record.get("summary") or "") or None,
            cvss_v3_vector=severity.get("CVSS_V3"),
            cvss_v4_vector=severity.get("CVSS_V4"),
            published_on=parse_datetime(record.get("published")),
            updated_on=parse_datetime(record.get("modified")),
            cwe_ids=tuple(str(c) for c in cwes if CWE_RE.fullmatch(str(c))),
        )
    for index, affected in enumerate(record.get("affected") or []):
        where = f"{osv_id} affected[{index}]"
        for vulnerability_id in ids:
            yield from _affected(vulnerability_id, affected, where)


def _affected(vulnerability_id: str, affected: dict[str, Any], where: str) -> Iterator[FeedRecord]:
    package = affected.get("package") or {}
    ecosystem = str(package.get("ecosystem") or "")
    name = str(package.get("name") or "")
    purl = str(package.get("purl") or "") or _purl(ecosystem, name)
    ranges = affected.get("ranges") or []
    base = {
        "vulnerability_id": vulnerability_id,
        "ecosystem": ecosystem,
        "package": name,
        "purl": purl,
    }
    for range_ in ranges:
        if range_.get("type") == "GIT":
            yield SkippedRecord("GIT commit range: cannot be matched to installed versions", where)
            continue
        for introduced, fixed, last in _segments(range_.get("events") or []):
            yield AffectedRange(
                **base,
                introduced=introduced,
                fixed=fixed,
                last_affected=last,
                version_range=version_range(introduced, fixed, last),
            )
    if not ranges:
        for version in affected.get("versions") or []:
            yield AffectedRange(
                **base,
                introduced=str(version),
                last_affected=str(version),
                version_range=f"={version}",
            )


def _segments(events: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(introduced, fixed, last_affected) for each span the events open and close."""
    introduced: str | None = None
    for event in events:
        if "introduced" in event:
            if introduced is not None:
                yield introduced, "", ""
            introduced = str(event["introduced"])
        elif "fixed" in event or "last_affected" in event:
            yield (
                introduced or "0",
                str(event.get("fixed") or ""),
                str(event.get("last_affected") or ""),
            )
            introduced = None
    if introduced is not None:
        yield introduced, "", ""


def _purl(ecosystem: str, name: str) -> str:
    kind = _PURL_TYPES.get(ecosystem.split(":", 1)[0])
    if not kind or not name:
        return ""
    if kind == "maven" and ":" in name:
        group, _, artifact = name.partition(":")
        return f"pkg:maven/{group}/{artifact}"
    return f"pkg:{kind}/{name}"
