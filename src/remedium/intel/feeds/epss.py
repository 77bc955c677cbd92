"""FIRST EPSS scores (``epss_scores-YYYY-MM-DD.csv``).

The first line is a comment, ``#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000``,
then the header ``cve,epss,percentile``. Each row becomes a :class:`VulnerabilityRecord` with
``epss`` and ``epss_percentile`` (both 0-1). A file without the score date is read, with a note.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO

from remedium.importers.formats._xmlstream import peek
from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds._util import CVE_RE, parse_datetime
from remedium.intel.feeds.records import FeedInfo, FeedRecord

_HEADER = ["cve", "epss", "percentile"]


class EpssFeed:
    """FIRST EPSS daily scores, CSV."""

    name = "epss"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for the model comment line or the ``cve,epss,percentile`` header."""
        start = head.lstrip(b"\xef\xbb\xbf")
        return start.startswith(b"#model_version") or start.startswith(b"cve,epss,percentile")

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Check the comment and header lines, then stream the scores."""
        _head, stream = peek(stream)
        lines = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        number = 1
        first = lines.readline().strip()
        comment: dict[str, str] = {}
        if first.startswith("#"):
            for part in first[1:].split(","):
                key, _, value = part.partition(":")
                comment[key.strip()] = value.strip()
            header = lines.readline().strip()
            number = 2
        else:
            header = first
        if [h.strip().lower() for h in header.split(",")] != _HEADER:
            raise ReportError(
                f"the header must be 'cve,epss,percentile', not {header[:60]!r}",
                where=f"line {number}",
                filename=filename,
            )
        notes: tuple[str, ...] = ()
        if "score_date" not in comment:
            notes = ("the file does not give its score date (#model_version...,score_date:...)",)
        info = FeedInfo(
            feed=self.name,
            version=comment.get("model_version", ""),
            released_at=parse_datetime(comment.get("score_date", "")),
            notes=notes,
        )
        return info, self._records(lines, number, filename)

    def _records(self, lines: IO[str], number: int, filename: str) -> Iterator[FeedRecord]:
        for line in lines:
            number += 1
            if not line.strip():
                continue
            cells = [c.strip() for c in line.split(",")]
            where = f"line {number}"
            if len(cells) != 3:
                raise ReportError(
                    f"expected 3 cells, found {len(cells)}", where=where, filename=filename
                )
            cve, epss, percentile = cells
            if not CVE_RE.match(cve):
                yield SkippedRecord(f"not a CVE id: {cve!r}", where)
                continue
            try:
                score, rank = float(epss), float(percentile)
            except ValueError:
                raise ReportError(
                    f"not a number: {epss!r} / {percentile!r}", where=where, filename=filename
                ) from None
            if not (0.0 <= score <= 1.0 and 0.0 <= rank <= 1.0):
                raise ReportError(
                    "epss and percentile must lie between 0 and 1", where=where, filename=filename
                )
            yield VulnerabilityRecord(vulnerability_id=cve, epss=score, epss_percentile=rank)
