"""The plain records intelligence feeds yield, besides ``importers.records.VulnerabilityRecord``.

Feeds never touch the database: the intel service stores what they yield.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol

from remedium.importers.records import SkippedRecord, VulnerabilityRecord


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """One range of versions of one package (or CPE) that a vulnerability affects.

    Bounds follow OSV: ``introduced`` is the first affected version ("0" = from the start),
    ``fixed`` the first version no longer affected, ``last_affected`` the last affected one.
    ``version_range`` spells the same range for people (``>=1.0, <1.4.2``), or lists the
    exact versions when the source gives a list instead of bounds.
    """

    vulnerability_id: str
    ecosystem: str  # the OSV ecosystem ("Go", "PyPI", "Debian:12") or "" for CPE-based sources
    package: str
    purl: str = ""
    cpe: str = ""
    introduced: str = ""
    fixed: str = ""
    last_affected: str = ""
    version_range: str = ""


FeedRecord = VulnerabilityRecord | AffectedRange | SkippedRecord


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a feed file says about itself: which feed, which version or date of it."""

    feed: str
    version: str = ""
    released_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class FeedParser(Protocol):
    """One intelligence feed format. ``sniff`` looks at the first bytes; ``parse`` streams."""

    name: str

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when ``head`` (the first 64 KiB) looks like this feed."""
        ...

    def parse(self, stream: IO[bytes], filename: str) -> tuple[FeedInfo, Iterator[FeedRecord]]:
        """Return the feed's info and an iterator over its records (lazily, streaming)."""
        ...


def version_range(
    introduced: str, fixed: str, last_affected: str, start_excluding: str = ""
) -> str:
    """The human spelling of a range: ``>=1.0, <1.4.2`` ("" when unbounded on both sides)."""
    parts = []
    if start_excluding:
        parts.append(f">{start_excluding}")
    elif introduced and introduced != "0":
        parts.append(f">={introduced}")
    if fixed:
        parts.append(f"<{fixed}")
    elif last_affected:
        parts.append(f"<={last_affected}")
    return ", ".join(parts)
