"""Importing intelligence feeds (KEV, EPSS, NVD, OSV, CVE JSON 5) into the database.

A feed file, folder or zip is read record by record (:func:`remedium.intel.feeds.read_feed`)
and written in batches: vulnerability facts through ``intel.service.upsert_vulnerabilities``
(which records the IntelEvents of worsening changes), affected ranges into ``affected_package``
(new ranges only: importing the same feed twice changes nothing). Then derived figures follow:
devices holding a package with new ranges are matched again (:mod:`remedium.intel.matching`),
exposure points of changed vulnerabilities are recomputed, and recommendations and scores of the
affected devices rebuilt. The caller owns the transaction: one file is all-or-nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.importers.models import ImportRun
from remedium.importers.records import SkippedRecord, VulnerabilityRecord
from remedium.intel import matching
from remedium.intel import service as intel_service
from remedium.intel.feeds import read_feed
from remedium.intel.feeds.records import AffectedRange
from remedium.intel.models import AffectedPackage, Vulnerability
from remedium.inventory.service import devices_with_open_weaknesses

BATCH = 5000  # records buffered before a batch is written
Progress = Callable[[int], None]
# Which source a feed's ranges are stored under.
_RANGE_SOURCE = {"osv": "osv", "nvd": "nvd", "cve5": "cve5"}
_RangeTuple = tuple[str, str, str, str, str, str, str]


@dataclass(slots=True)
class IntelImportSummary:
    """What one intelligence import added, updated and skipped."""

    feed: str
    filename: str
    version: str = ""
    released_at: datetime | None = None
    import_id: int | None = None
    records: int = 0
    vulnerabilities_added: int = 0
    vulnerabilities_updated: int = 0
    events: int = 0
    ranges_added: int = 0
    ranges_unmatchable: int = 0
    devices_matched: int = 0
    devices_recomputed: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    changed_vulnerability_ids: set[str] = field(default_factory=set)
    new_keys: set[str] = field(default_factory=set)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records not imported for ``reason``."""
        self.skipped_reasons[reason] += count

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Skipped records as ``[{"reason": ..., "count": ...}]``, most frequent first."""
        return [{"reason": r, "count": c} for r, c in self.skipped_reasons.most_common()]

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what ``--json`` prints and ``ImportRun`` keeps)."""
        return {
            "import_id": self.import_id,
            "format": self.feed,
            "feed": self.feed,
            "filename": self.filename,
            "version": self.version,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "records": self.records,
            "vulnerabilities_added": self.vulnerabilities_added,
            "vulnerabilities_updated": self.vulnerabilities_updated,
            "events": self.events,
            "ranges_added": self.ranges_added,
            "ranges_unmatchable": self.ranges_unmatchable,
            "devices_matched": self.devices_matched,
            "devices_recomputed": self.devices_recomputed,
            "skipped": self.skipped,
        }


def import_feed(
    session: Session,
    path: Path | str,
    *,
    feed: str | None = None,
    observed_at: datetime | None = None,
    imported_by: str = "cli",
    progress: Progress | None = None,
    filename: str | None = None,
) -> IntelImportSummary:
    """Import one intelligence feed file, folder or zip and record an ``ImportRun``.

    ``feed`` names the feed parser (detected when ``None``); events are dated ``observed_at``,
    by default the feed's own release date, else now; ``progress(records)`` is called after each
    batch. Raises ``ReportError`` on a file that cannot be read: the caller then rolls back and
    nothing has changed.
    """
    path = Path(path)
    started_at = utcnow()
    info, records = read_feed(path, feed)
    when = observed_at or info.released_at or started_at
    summary = IntelImportSummary(
        feed=info.feed,
        filename=filename or path.name,
        version=info.version,
        released_at=info.released_at,
    )
    source = f"intel:{info.feed}"
    writer = _FeedWriter(session, summary, source=source, observed_at=when)
    for record in records:
        summary.records += 1
        if isinstance(record, SkippedRecord):
            summary.skip(record.reason)
            continue
        writer.add(record)
        if writer.pending >= BATCH:
            writer.flush()
            if progress is not None:
                progress(summary.records)
    writer.flush()
    refresh_after_intel(session, summary, at=when)
    run = ImportRun(
        format=info.feed,
        filename=summary.filename,
        source=source,
        imported_by=imported_by,
        scanned_at=info.released_at,
        started_at=started_at,
        finished_at=utcnow(),
        summary={},
        sha256="" if path.is_dir() else _sha256(path),
        note="; ".join(info.notes),
    )
    session.add(run)
    session.flush()
    summary.import_id = run.id
    run.summary = summary.as_dict()
    session.flush()
    if progress is not None:
        progress(summary.records)
    return summary


def _sha256(path: Path) -> str:
    from remedium.importers.service import file_sha256

    return file_sha256(path)


def refresh_after_intel(
    session: Session, summary: IntelImportSummary, *, at: datetime | None = None
) -> None:
    """Match devices holding packages with new ranges, then bring vulnerability points,
    recommendations and scores in step for every device that changed."""
    from remedium.exceptions import lifecycle as exceptions_lifecycle
    from remedium.importers.detections import move_detections
    from remedium.recommendations import service as recommendations_service
    from remedium.remediation.progress import refresh_activity_progress
    from remedium.scoring import service as scoring_service

    devices: set[int] = set()
    if summary.new_keys:
        # Findings kept on a scanner's detection move onto the products the new records name.
        devices |= move_detections(session)
        holding = matching.devices_holding(session, summary.new_keys)
        matched = matching.match_devices(session, holding, at=at)
        summary.devices_matched = len(matched)
        devices |= matched
    if summary.changed_vulnerability_ids:
        changed = sorted(summary.changed_vulnerability_ids)
        devices |= scoring_service.refresh_vulnerability_points(session, changed)
        # upsert_vulnerabilities already stored the new points, so the refresh above sees no
        # change: the devices with open weaknesses of a changed vulnerability are found here.
        devices |= devices_with_open_weaknesses(session, changed)
    summary.devices_recomputed = len(devices)
    if devices:
        recommendations_service.recompute(session, device_ids=sorted(devices), as_of=at)
    # A KEV listing or a new exploit voids exceptions at once; fixed devices move activities.
    exceptions_lifecycle.run_exception_jobs(session, at)
    if devices:
        refresh_activity_progress(session, device_ids=sorted(devices), now=at)


class _FeedWriter:
    """Buffers one feed's records and writes them set-based, batch by batch."""

    def __init__(
        self, session: Session, summary: IntelImportSummary, *, source: str, observed_at: datetime
    ) -> None:
        self.session = session
        self.summary = summary
        self.source = source
        self.range_source = _RANGE_SOURCE.get(summary.feed, summary.feed)
        self.observed_at = observed_at
        self.vulnerabilities: list[VulnerabilityRecord] = []
        self.ranges: list[AffectedRange] = []
        self.known: set[str] = set()

    @property
    def pending(self) -> int:
        """Records buffered and not yet written."""
        return len(self.vulnerabilities) + len(self.ranges)

    def add(self, record: VulnerabilityRecord | AffectedRange) -> None:
        """Buffer one record."""
        if isinstance(record, AffectedRange):
            self.ranges.append(record)
        else:
            self.vulnerabilities.append(record)

    def flush(self) -> None:
        """Write what is buffered: facts first, so that ranges find their vulnerability."""
        if self.vulnerabilities:
            result = intel_service.upsert_vulnerabilities(
                self.session,
                self.vulnerabilities,
                source=self.source,
                observed_at=self.observed_at,
            )
            self.summary.vulnerabilities_added += result.added
            self.summary.vulnerabilities_updated += result.updated
            self.summary.events += result.events
            self.summary.changed_vulnerability_ids |= result.changed_ids
            self.known.update(r.vulnerability_id for r in self.vulnerabilities)
            self.vulnerabilities = []
        if self.ranges:
            self._write_ranges(self.ranges)
            self.ranges = []

    def _ensure_vulnerabilities(self, ids: Iterable[str]) -> None:
        """Create the vulnerabilities a range names that neither the feed nor the database has."""
        missing = sorted(set(ids) - self.known)
        if not missing:
            return
        for part in matching.chunks(missing):
            self.known.update(
                self.session.scalars(select(Vulnerability.id).where(Vulnerability.id.in_(part)))
            )
        unknown = [i for i in missing if i not in self.known]
        if unknown:
            result = intel_service.upsert_vulnerabilities(
                self.session,
                (VulnerabilityRecord(vulnerability_id=i) for i in unknown),
                source=self.source,
                observed_at=self.observed_at,
                create_only=True,
            )
            self.summary.vulnerabilities_added += result.added
            self.summary.changed_vulnerability_ids |= result.changed_ids
            self.known.update(unknown)

    def _write_ranges(self, records: list[AffectedRange]) -> None:
        wanted: dict[_RangeTuple, dict[str, Any]] = {}
        for record in records:
            key = matching.range_key(record)
            if key is None:
                self.summary.ranges_unmatchable += 1
                ecosystem = record.ecosystem or "no ecosystem"
                self.summary.skip(f"range of a package remedium cannot match ({ecosystem})")
                continue
            row = {
                "vulnerability_id": record.vulnerability_id[:100],
                "match_key": key[:400],
                "ecosystem": record.ecosystem[:100],
                "package": record.package[:300],
                "purl": record.purl[:400],
                "cpe": record.cpe[:400],
                "introduced": record.introduced[:100],
                "fixed": record.fixed[:100],
                "last_affected": record.last_affected[:100],
                "version_range": record.version_range[:300],
                "source": self.range_source,
                "created_at": self.observed_at,
            }
            wanted.setdefault(_identity(row), row)
        if not wanted:
            return
        self._ensure_vulnerabilities(row["vulnerability_id"] for row in wanted.values())
        table = matching.table_of(AffectedPackage)
        ids = sorted({row["vulnerability_id"] for row in wanted.values()})
        stored: set[_RangeTuple] = set()
        for part in matching.chunks(ids):
            for found in self.session.execute(
                select(
                    table.c.vulnerability_id,
                    table.c.match_key,
                    table.c.ecosystem,
                    table.c.introduced,
                    table.c.fixed,
                    table.c.last_affected,
                    table.c.version_range,
                ).where(table.c.vulnerability_id.in_(part), table.c.source == self.range_source)
            ):
                stored.add(tuple(found))
        new = [row for identity, row in wanted.items() if identity not in stored]
        if new:
            self.session.execute(insert(AffectedPackage), new)
            self.summary.ranges_added += len(new)
            self.summary.new_keys.update(row["match_key"] for row in new)


def _identity(row: dict[str, Any]) -> _RangeTuple:
    return (
        row["vulnerability_id"],
        row["match_key"],
        row["ecosystem"],
        row["introduced"],
        row["fixed"],
        row["last_affected"],
        row["version_range"],
    )
