"""CISA Known Exploited Vulnerabilities catalog, JSON and CSV.

Every entry becomes a :class:`VulnerabilityRecord` with ``kev_listed``, the date added, the due
date, known ransomware use (``Known`` -> True, ``Unknown`` -> False) and the CWE ids.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from remedium.importers.formats._jsonstream import objects
from remedium.importers.formats._xmlstream import peek
from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds._util import CVE_RE, CWE_RE, parse_datetime
from remedium.intel.feeds.records import FeedInfo, FeedRecord

_ENTRY = re.compile(rb'"cveID"\s*:\s*"')
_VERSION = re.compile(rb'"catalogVersion"\s*:\s*"([^"]*)"')
_RELEASED = re.compile(rb'"dateReleased"\s*:\s*"([^"]*)"')
CSV_HEADER = "cveID,vendorProject,product,vulnerabilityName,dateAdded"


def _record(entry: dict[str, Any], where: str) -> FeedRecord:
    cve = str(entry.get("cveID") or "").strip()
    if not CVE_RE.match(cve):
        return SkippedRecord(f"not a CVE id: {cve!r}", where)
    cwes = entry.get("cwes") or []
    if isinstance(cwes, str):
        cwes = cwes.split(",")
    return VulnerabilityRecord(
        vulnerability_id=cve,
        kev_listed=True,
        kev_date_added=parse_datetime(entry.get("dateAdded")),
        kev_due_date=parse_datetime(entry.get("dueDate")),
        kev_ransomware=str(entry.get("knownRansomwareCampaignUse") or "").strip().lower()
        == "known",
        cwe_ids=tuple(
            dict.fromkeys(c for c in (str(x).strip() for x in cwes) if CWE_RE.fullmatch(c))
        ),
    )


class KevJsonFeed:
    """The KEV catalog as JSON (``known_exploited_vulnerabilities.json``)."""

    name = "kev-json"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for a catalog with entries (the catalog's JSON schema is not one)."""
        return b'"catalogVersion"' in head and bool(_ENTRY.search(head))

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Stream the catalog's entries."""
        head, stream = peek(stream)
        if not self.sniff(head, filename):
            raise ReportError(
                "not a CISA KEV catalog (no catalogVersion and cveID entries)", filename=filename
            )
        version = _VERSION.search(head)
        released = _RELEASED.search(head)
        info = FeedInfo(
            feed=self.name,
            version=version.group(1).decode() if version else "",
            released_at=parse_datetime(released.group(1).decode()) if released else None,
        )
        return info, self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[FeedRecord]:
        entries = objects(stream, filename, lambda p: p == "vulnerabilities.item")
        for index, (_path, entry) in enumerate(entries):
            where = f"vulnerabilities[{index}]"
            if not isinstance(entry, dict):
                raise ReportError("an entry is not an object", where=where, filename=filename)
            yield _record(entry, where)


class KevCsvFeed:
    """The KEV catalog as CSV (``known_exploited_vulnerabilities.csv``)."""

    name = "kev-csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when the first line is the catalog's header."""
        return head.lstrip(b"\xef\xbb\xbf").startswith(CSV_HEADER.encode())

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Stream the catalog's rows."""
        head, stream = peek(stream)
        if not self.sniff(head, filename):
            raise ReportError(
                f"not a CISA KEV CSV: the header must start with {CSV_HEADER}", filename=filename
            )
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        return FeedInfo(feed=self.name), self._records(csv.DictReader(text), filename)

    def _records(self, rows: Iterable[dict[str, str]], filename: str) -> Iterator[FeedRecord]:
        try:
            for line, row in enumerate(rows, start=2):
                yield _record(dict(row), f"row {line - 1}")
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ReportError(f"broken CSV ({exc})", filename=filename) from None
