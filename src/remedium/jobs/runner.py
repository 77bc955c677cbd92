"""The periodic jobs, as classes with a persisted run record (``jobs.models.JobRun``).

``remedium jobs run [--as-of TIME]`` runs each once, in this order; ``remedium worker`` runs them
on a timer and delivers the ticket outbox in between. Each job owns its transaction(s): a job that
fails is recorded as failed and rolled back, and the next one still runs.

Order matters: recommendations are rebuilt first (devices may have aged out of activity), then
exceptions expire or resurface, then activities are measured against the fresh inventory, old
completed activities are removed, tickets are delivered and their states read back, and the day's
scores are copied into the history last, so the snapshot sees everything before it.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Engine

from remedium.db.base import utcnow
from remedium.db.session import transaction
from remedium.jobs.models import JobRun
from remedium.remediation import outbox
from remedium.remediation.outbox import ConnectorResolver
from remedium.settings import get_settings


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job runs with: the database, the time it runs as of, the connectors."""

    engine: Engine
    as_of: datetime
    resolve: ConnectorResolver


class Job:
    """One periodic job: ``run`` does the work and returns figures for the run record."""

    name: ClassVar[str] = ""

    def run(self, context: JobContext) -> dict[str, Any]:
        """Do the work; return JSON-serialisable figures."""
        raise NotImplementedError


class RecomputeJob(Job):
    """Full rebuild of recommendations and scores (devices age into inactivity by themselves)."""

    name = "recompute"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.recommendations.service import recompute

        with transaction(context.engine) as session:
            stats = recompute(session, as_of=context.as_of)
        return {"devices": stats.devices, "recommendations_touched": stats.recommendations_touched}


class ExceptionLifecycleJob(Job):
    """Exception expiry and resurfacing, then the expiring-soon flags (docs/exceptions.md)."""

    name = "exception_lifecycle"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.exceptions.service import run_exception_jobs

        with transaction(context.engine) as session:
            return run_exception_jobs(session, context.as_of).as_json()


class ActivityProgressJob(Job):
    """Measure every active activity; complete those whose target devices are all fixed."""

    name = "activity_progress"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.remediation.progress import refresh_activity_progress

        with transaction(context.engine) as session:
            completed = refresh_activity_progress(session, now=context.as_of)
        return {"completed": len(completed), "completed_ids": completed[:50]}


class CompletedActivityRetentionJob(Job):
    """Remove activities completed more than ``completed_activity_retention_days`` ago."""

    name = "activity_retention"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.remediation.service import purge_completed

        days = get_settings().completed_activity_retention_days
        with transaction(context.engine) as session:
            removed = purge_completed(session, as_of=context.as_of, retention_days=days)
        return {"removed": removed, "retention_days": days}


class OutboxDeliveryJob(Job):
    """Deliver the pending tickets whose next attempt is due."""

    name = "ticket_outbox"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.exceptions.notify import deliver_notifications

        stats = outbox.deliver_pending(context.engine, context.resolve, now=context.as_of)
        # Exception announcements (exception.expiring) go out with the tickets.
        notified = deliver_notifications(context.engine, context.resolve, now=context.as_of)
        return {**stats.as_dict(), **notified.as_dict()}


class TicketSyncJob(Job):
    """Read open tickets' states back from their systems."""

    name = "ticket_sync"

    def run(self, context: JobContext) -> dict[str, Any]:
        with transaction(context.engine) as session:
            figures = outbox.sync_ticket_states(session, context.resolve, now=context.as_of)
        return dict(figures)


class ScoreSnapshotJob(Job):
    """Copy the day's score sums into the history (replacing that day's row)."""

    name = "score_snapshot"

    def run(self, context: JobContext) -> dict[str, Any]:
        from remedium.scoring.service import snapshot_scores

        day = context.as_of.date()
        with transaction(context.engine) as session:
            groups = snapshot_scores(session, day)
        return {"day": day.isoformat(), "groups": groups}


PERIODIC_JOBS: tuple[Job, ...] = (
    RecomputeJob(),
    ExceptionLifecycleJob(),
    ActivityProgressJob(),
    CompletedActivityRetentionJob(),
    OutboxDeliveryJob(),
    TicketSyncJob(),
    ScoreSnapshotJob(),
)


def run_job(job: Job, context: JobContext) -> JobRun:
    """Run one job and keep its run record (committed, whether the job worked or not)."""
    started = utcnow()
    status, result, error = "ok", {}, ""
    try:
        result = job.run(context)
    except Exception as failure:
        status = "failed"
        error = "".join(traceback.format_exception_only(failure)).strip()[:2000]
    with transaction(context.engine) as session:
        run = JobRun(
            job=job.name,
            as_of=context.as_of,
            started_at=started,
            finished_at=utcnow(),
            status=status,
            result=result,
            error=error,
        )
        session.add(run)
    return run


def run_jobs(
    engine: Engine,
    resolve: ConnectorResolver,
    *,
    as_of: datetime | None = None,
    jobs: Sequence[Job] = PERIODIC_JOBS,
) -> list[JobRun]:
    """Run ``jobs`` once each, in order, as of ``as_of`` (default now)."""
    context = JobContext(engine=engine, as_of=as_of or utcnow(), resolve=resolve)
    return [run_job(job, context) for job in jobs]
