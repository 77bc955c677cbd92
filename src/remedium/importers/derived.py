"""What follows an import: inventory matched to the stored ranges, vulnerability points,
recommendations and scores rebuilt, then the exception jobs and the remediation activities'
progress (docs/imports.md). For a large report, :class:`Settler` does part of the rebuild while
the parser process is still reading (devices "settled" on the way).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from remedium.exceptions import lifecycle as exceptions_lifecycle
from remedium.intel.matching import match_devices
from remedium.inventory import service as inventory_service
from remedium.inventory.groups import evaluate as evaluate_groups
from remedium.recommendations import service as recommendations_service
from remedium.remediation.progress import refresh_activity_progress
from remedium.scoring import service as scoring_service

if TYPE_CHECKING:
    from remedium.importers.summary import ImportSummary


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


# Devices settled at once (a few per cent of a large import's recompute each time).
_SETTLE_FROM = 1000


def refresh_derived(
    session: Session,
    summary: ImportSummary,
    *,
    as_of: datetime | None = None,
    settled: Settler | None = None,
) -> None:
    """Bring vulnerability points, recommendations and scores in step with what was written.

    ``settled``: the devices of the import whose own rows are already up to date (see
    :class:`Settler`); only what changed for them since is rebuilt again, as of its time.
    """
    done = settled.settled if settled is not None else set()
    devices = set(summary.touched_device_ids) - done
    # Inventory-only files get their weaknesses by matching software to stored ranges.
    matched = match_devices(session, summary.touched_device_ids, at=as_of or summary.scanned_at)
    summary.devices_matched = len(matched)
    devices |= matched
    # Device-group rules place the devices the import touched (docs/device-groups.md).
    devices |= set(evaluate_groups(session, summary.touched_device_ids, recompute=False))
    if summary.changed_vulnerability_ids:
        changed = sorted(summary.changed_vulnerability_ids)
        devices |= scoring_service.refresh_vulnerability_points(session, changed)
        # Devices elsewhere in the inventory are affected when a known vulnerability's facts
        # change (the upsert already stored the new points, so ask who holds them, not what
        # changed). A vulnerability the import created is held by its own devices only.
        if summary.updated_vulnerability_ids:
            updated = sorted(summary.updated_vulnerability_ids)
            devices |= inventory_service.devices_with_open_weaknesses(session, updated)
    if devices or done:
        recommendations_service.recompute(
            session,
            device_ids=sorted(devices),
            as_of=settled.as_of if settled is not None else as_of,
            settled=done,
        )
    # Exceptions react to the new threat picture, then activities are measured against it.
    exceptions_lifecycle.run_exception_jobs(session, as_of)
    devices |= done
    if devices:
        refresh_activity_progress(session, device_ids=sorted(devices), now=as_of)
