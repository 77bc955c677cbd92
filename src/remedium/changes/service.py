"""What follows a change of inventory or intelligence: the one place that brings the derived
data in step (docs/architecture.md, docs/imports.md).

Whoever changed the inventory (a scanner import) or the intelligence (a feed import), or a job
that runs over the whole inventory, calls in here, and the follow-up always runs in this order:

1. devices are matched to the stored vulnerable ranges (``intel.matching``) and placed by the
   device-group rules (``inventory.groups``);
2. the exposure points of changed vulnerabilities are refreshed, and the devices that hold them
   are found (``scoring.service``, ``inventory.service``);
3. recommendations and scores are rebuilt for the affected devices only
   (``recommendations.service.recompute``);
4. exceptions react to the new threat picture (``exceptions.lifecycle.run_exception_jobs``);
5. remediation activities are measured against it (``remediation.progress``).

The caller owns the transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from remedium.exceptions import lifecycle as exceptions_lifecycle
from remedium.exceptions.lifecycle import ExceptionJobResult
from remedium.importers.detections import move_detections
from remedium.importers.summary import ImportSummary
from remedium.intel import matching
from remedium.inventory import groups
from remedium.inventory.service import devices_with_open_weaknesses
from remedium.recommendations import service as recommendations_service
from remedium.recommendations.recompute_runner import RecomputeStats
from remedium.remediation.progress import refresh_activity_progress
from remedium.scoring import service as scoring_service

# Devices settled at once (a few per cent of a large import's recompute each time).
_SETTLE_FROM = 1000


class Settler:
    """Rebuilds the own rows (points, ``device_recommendation``) of devices the import created
    once the report has moved past them, while the parser process reads on: the importing
    process would otherwise wait for the next batch, and the final recompute would do it after
    the last one. A device the report names again later is rebuilt again by the final recompute.
    """

    def __init__(self, session: Session, as_of: datetime) -> None:
        self.session = session
        self.as_of = as_of  # the final recompute's too
        self.pending: set[int] = set()  # created devices written since they were last settled
        self.settled: set[int] = set()

    def after(self, named: set[int], created: set[int]) -> None:
        """Called after each batch with the devices it wrote something of and those the import
        created: settles the pending devices this batch did not name, once there are enough of
        them for one set-based rebuild."""
        self.settled -= named
        ready = self.pending - named
        if len(ready) >= _SETTLE_FROM:
            recommendations_service.recompute_device_rows(self.session, ready, as_of=self.as_of)
            self.settled |= ready
            self.pending -= ready
        self.pending |= named & created


@dataclass(frozen=True, slots=True)
class IntelligenceFollowUp:
    """What followed an intelligence change: devices matched again and devices rebuilt."""

    devices_matched: int
    devices_recomputed: int


def after_report(
    session: Session,
    summary: ImportSummary,
    *,
    as_of: datetime | None = None,
    settled: Settler | None = None,
) -> None:
    """Bring the derived data in step with what a scanner import wrote (``summary``); sets
    ``summary.devices_matched``.

    ``settled``: the devices of the import whose own rows are already up to date (see
    :class:`Settler`); only what changed for them since is rebuilt again, as of its time.
    """
    done = settled.settled if settled is not None else set()
    touched = summary.touched_device_ids
    devices = set(touched) - done
    # Inventory-only files get their weaknesses by matching software to stored ranges.
    matched = matching.match_devices(session, touched, at=as_of or summary.scanned_at)
    summary.devices_matched = len(matched)
    devices |= matched
    # Device-group rules place the devices the import touched (docs/device-groups.md).
    devices |= set(groups.evaluate(session, touched))
    # A vulnerability the import created is held by its own devices only, so only the known
    # ones it updated are looked up elsewhere in the inventory.
    devices |= _changed_vulnerabilities(
        session, summary.changed_vulnerability_ids, held=summary.updated_vulnerability_ids
    )
    _rebuild(
        session,
        devices,
        as_of=as_of,
        recompute_as_of=settled.as_of if settled is not None else as_of,
        settled=done,
    )


def after_intelligence(
    session: Session,
    *,
    new_keys: Collection[str],
    changed_vulnerability_ids: Collection[str],
    at: datetime | None = None,
) -> IntelligenceFollowUp:
    """Bring the derived data in step after a feed import added vulnerable ranges (their match
    keys, ``new_keys``) and changed the facts of ``changed_vulnerability_ids``."""
    devices: set[int] = set()
    matched: set[int] = set()
    if new_keys:
        # Findings kept on a scanner's detection move onto the products the new records name.
        devices |= move_detections(session)
        holding = matching.devices_holding(session, new_keys)
        matched = matching.match_devices(session, holding, at=at)
        devices |= matched
    devices |= _changed_vulnerabilities(
        session, changed_vulnerability_ids, held=changed_vulnerability_ids
    )
    _rebuild(session, devices, as_of=at, recompute_as_of=at)
    return IntelligenceFollowUp(devices_matched=len(matched), devices_recomputed=len(devices))


def rebuild_everything(session: Session, *, as_of: datetime | None = None) -> RecomputeStats:
    """Rebuild every recommendation and score (the periodic job: devices age into inactivity
    by themselves, with no change to follow)."""
    return recommendations_service.recompute(session, as_of=as_of)


def review_exceptions(session: Session, *, as_of: datetime | None = None) -> ExceptionJobResult:
    """Expire and resurface exceptions, flag those expiring soon (docs/exceptions.md)."""
    return exceptions_lifecycle.run_exception_jobs(session, as_of)


def measure_activities(
    session: Session,
    *,
    device_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Measure the active activities (those targeting ``device_ids``, or all); returns the ids
    of the activities this completed."""
    return refresh_activity_progress(session, device_ids=device_ids, now=now)


def _changed_vulnerabilities(
    session: Session, changed: Collection[str], *, held: Collection[str]
) -> set[int]:
    """Refresh the points of ``changed`` vulnerabilities; returns the devices whose points moved
    and those holding an open weakness of one of ``held``.

    The upsert already stored the new points, so the refresh sees no change for a known
    vulnerability: who holds it is asked, not what changed.
    """
    if not changed:
        return set()
    devices = scoring_service.refresh_vulnerability_points(session, sorted(changed))
    if held:
        devices |= devices_with_open_weaknesses(session, sorted(held))
    return devices


def _rebuild(
    session: Session,
    devices: set[int],
    *,
    as_of: datetime | None,
    recompute_as_of: datetime | None,
    settled: Collection[int] = frozenset(),
) -> None:
    """Steps 3-5: recommendations and scores of ``devices`` (and what changed for the ``settled``
    ones) as of ``recompute_as_of``, exceptions, then the activities of every device that moved
    (as of ``as_of``)."""
    if devices or settled:
        recommendations_service.recompute(
            session, device_ids=sorted(devices), as_of=recompute_as_of, settled=settled
        )
    # Exceptions react to the new threat picture, then activities are measured against it.
    review_exceptions(session, as_of=as_of)
    moved = devices | set(settled)
    if moved:
        measure_activities(session, device_ids=sorted(moved), now=as_of)
