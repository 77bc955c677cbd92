"""The periodic jobs, as classes with a persisted run record (``jobs.models.JobRun``).

``remedium jobs run [--as-of TIME]`` runs each once, in this order; ``remedium worker`` (and
``remedium serve``, in a child process) runs them on their schedule and delivers the ticket outbox
in between (``jobs/scheduler.py``). Each job owns its transaction(s): a job that fails is recorded
as failed and rolled back, and the next one still runs.

Any number of processes may do this at once. A job marked ``exclusive`` runs only under its
lease (``jobs.models.JobLease``): one atomic ``UPDATE`` takes it, a heartbeat renews it while the
job runs, the end frees it and sets when the job is next due. A process that finds the lease
taken skips the job ("running elsewhere"). The outbox job is not exclusive: each message is
claimed on its own (``remediation/outbox.py``).

Order matters: recommendations are rebuilt first (devices may have aged out of activity), then
exceptions expire or resurface, then activities are measured against the fresh inventory, old
completed activities are removed, tickets are delivered and their states read back, and the day's
scores are copied into the history last, so the snapshot sees everything before it.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import Engine, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from remedium.changes import service as changes
from remedium.db.base import utcnow
from remedium.db.session import is_postgres, take_writer_lock, transaction
from remedium.exceptions.notify import deliver_notifications
from remedium.jobs.models import JobLease, JobRun
from remedium.remediation import outbox, ticket_sync
from remedium.remediation.outbox import ConnectorResolver
from remedium.remediation.service import purge_completed
from remedium.scoring.service import snapshot_scores
from remedium.settings import get_settings


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job runs with: the database, the time it runs as of, the connectors."""

    engine: Engine
    as_of: datetime
    resolve: ConnectorResolver


@contextmanager
def job_transaction(engine: Engine) -> Iterator[Session]:
    """A job's unit of work. On SQLite it takes the write lock before reading anything: a long
    transaction that reads first and writes later fails at once ("database is locked") when any
    other process committed in between, which leases, ticket claims and pages do all the time."""
    with transaction(engine) as session:
        if not is_postgres(engine):
            take_writer_lock(session, "remedium.job")
        yield session


class Job:
    """One periodic job: ``run`` does the work and returns figures for the run record."""

    name: ClassVar[str] = ""
    # One run at a time across every process (under the job's lease).
    exclusive: ClassVar[bool] = True

    def run(self, context: JobContext) -> dict[str, Any]:
        """Do the work; return JSON-serialisable figures."""
        raise NotImplementedError


class RecomputeJob(Job):
    """Full rebuild of recommendations and scores (devices age into inactivity by themselves)."""

    name = "recompute"

    def run(self, context: JobContext) -> dict[str, Any]:
        with job_transaction(context.engine) as session:
            stats = changes.rebuild_everything(session, as_of=context.as_of)
        return {"devices": stats.devices, "recommendations_touched": stats.recommendations_touched}


class ExceptionLifecycleJob(Job):
    """Exception expiry and resurfacing, then the expiring-soon flags (docs/exceptions.md)."""

    name = "exception_lifecycle"

    def run(self, context: JobContext) -> dict[str, Any]:
        with job_transaction(context.engine) as session:
            return changes.review_exceptions(session, as_of=context.as_of).as_json()


class ActivityProgressJob(Job):
    """Measure every active activity; complete those whose target devices are all fixed."""

    name = "activity_progress"

    def run(self, context: JobContext) -> dict[str, Any]:
        with job_transaction(context.engine) as session:
            completed = changes.measure_activities(session, now=context.as_of)
        return {"completed": len(completed), "completed_ids": completed[:50]}


class CompletedActivityRetentionJob(Job):
    """Remove activities completed more than ``completed_activity_retention_days`` ago."""

    name = "activity_retention"

    def run(self, context: JobContext) -> dict[str, Any]:
        days = get_settings().completed_activity_retention_days
        with job_transaction(context.engine) as session:
            removed = purge_completed(session, as_of=context.as_of, retention_days=days)
        return {"removed": removed, "retention_days": days}


class OutboxDeliveryJob(Job):
    """Deliver the pending tickets whose next attempt is due."""

    name = "ticket_outbox"
    exclusive = False  # every message is claimed on its own

    def run(self, context: JobContext) -> dict[str, Any]:
        stats = outbox.deliver_pending(context.engine, context.resolve, now=context.as_of)
        # Exception announcements (exception.expiring) go out with the tickets.
        notified = deliver_notifications(context.engine, context.resolve, now=context.as_of)
        return {**stats.as_dict(), **notified.as_dict()}


class TicketSyncJob(Job):
    """Read open tickets' states back from their systems."""

    name = "ticket_sync"

    def run(self, context: JobContext) -> dict[str, Any]:
        # Not job_transaction: it calls the ticketing systems, and must not hold SQLite's write
        # lock meanwhile. A run that meets a concurrent write fails and the next one reads again.
        with transaction(context.engine) as session:
            figures = ticket_sync.sync_ticket_states(session, context.resolve, now=context.as_of)
        return dict(figures)


class ScoreSnapshotJob(Job):
    """Copy the day's score sums into the history (replacing that day's row)."""

    name = "score_snapshot"

    def run(self, context: JobContext) -> dict[str, Any]:
        day = context.as_of.date()
        with job_transaction(context.engine) as session:
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


SKIPPED = "skipped"


def lease_holder() -> str:
    """This process, as named in a lease: host, process id and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _lease_length() -> timedelta:
    return timedelta(seconds=get_settings().job_lease_seconds)


def _ensure_lease_row(engine: Engine, job: str) -> None:
    insert = postgresql_insert if is_postgres(engine) else sqlite_insert
    with transaction(engine) as session:
        session.execute(insert(JobLease).values(job=job, holder="").on_conflict_do_nothing())


def acquire_lease(engine: Engine, job: str, holder: str, *, due_only: bool = False) -> bool:
    """Take ``job``'s lease for ``holder`` when it is free (and, with ``due_only``, due).

    One ``UPDATE ... WHERE`` in its own transaction: atomic on SQLite (write lock) and on
    PostgreSQL (the row lock, then the condition is checked again), so one process wins.
    """
    _ensure_lease_row(engine, job)
    wall = utcnow()
    conditions = [
        JobLease.job == job,
        or_(JobLease.leased_until.is_(None), JobLease.leased_until < wall),
    ]
    if due_only:
        conditions.append(or_(JobLease.next_due_at.is_(None), JobLease.next_due_at <= wall))
    with transaction(engine) as session:
        result = session.execute(
            update(JobLease)
            .where(*conditions)
            .values(holder=holder, leased_until=wall + _lease_length())
            .execution_options(synchronize_session=False)
        )
        taken: int = result.rowcount  # type: ignore[attr-defined]
    return taken == 1


def _renew_lease(engine: Engine, job: str, holder: str) -> None:
    with transaction(engine) as session:
        session.execute(
            update(JobLease)
            .where(JobLease.job == job, JobLease.holder == holder)
            .values(leased_until=utcnow() + _lease_length())
            .execution_options(synchronize_session=False)
        )


def note_pass(
    engine: Engine,
    job: str,
    status: str,
    error: str = "",
    *,
    holder: str | None = None,
    next_due_at: datetime | None = None,
) -> None:
    """Record the end of a pass on the job's row; with ``holder``, free its lease too."""
    values: dict[str, Any] = {
        "last_finished_at": utcnow(),
        "last_status": status,
        "last_error": error[:2000],
    }
    conditions = [JobLease.job == job]
    if holder is not None:
        values |= {"leased_until": None, "holder": ""}
        conditions.append(JobLease.holder == holder)
    if next_due_at is not None:
        values["next_due_at"] = next_due_at
    statement = (
        update(JobLease)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    with transaction(engine) as session:
        changed: int = session.execute(statement).rowcount  # type: ignore[attr-defined]
    if changed == 0 and holder is None:
        # The first pass of this job on this database: make its row, then note the pass.
        _ensure_lease_row(engine, job)
        with transaction(engine) as session:
            session.execute(statement)


class _Heartbeat:
    """Renews a lease every quarter of its length while the job runs (a daemon thread)."""

    def __init__(self, engine: Engine, job: str, holder: str) -> None:
        self._engine, self._job, self._holder = engine, job, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"lease-{job}")

    def _beat(self) -> None:
        interval = max(1.0, get_settings().job_lease_seconds / 4)
        while not self._stop.wait(interval):
            try:
                _renew_lease(self._engine, self._job, self._holder)
            except Exception:  # noqa: S112 - a busy database: try again at the next beat
                continue

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def run_job(
    job: Job,
    context: JobContext,
    *,
    scheduled: bool = False,
    every: timedelta | None = None,
    keep_record: bool = True,
) -> JobRun:
    """Run one job and keep its run record (committed, whether the job worked or not).

    An exclusive job runs only under its lease; when another process holds it (or, for the
    scheduler, the job is not due yet) nothing runs and the returned record, not stored, says
    ``skipped``. ``keep_record=False`` (the scheduler's frequent outbox passes) stores a
    ``job_run`` row only when the pass did something or failed.
    """
    holder = lease_holder()
    if job.exclusive and not acquire_lease(context.engine, job.name, holder, due_only=scheduled):
        return JobRun(
            job=job.name,
            as_of=context.as_of,
            started_at=utcnow(),
            finished_at=utcnow(),
            status=SKIPPED,
            result={},
            error="not due yet" if scheduled else "running in another process",
        )
    started = utcnow()
    # Until the job returns: what the row says if it is interrupted (Ctrl-C) on the way.
    status, result, error = "failed", {}, "interrupted"
    try:
        if job.exclusive:
            with _Heartbeat(context.engine, job.name, holder):
                result = job.run(context)
        else:
            result = job.run(context)
        status, error = "ok", ""
    except Exception as failure:
        error = "".join(traceback.format_exception_only(failure)).strip()[:2000]
    finally:
        finished = utcnow()  # before the lease is freed: runs of one job never overlap
        note_pass(
            context.engine,
            job.name,
            status,
            error,
            holder=holder if job.exclusive else None,
            next_due_at=utcnow() + every if every is not None else None,
        )
    run = JobRun(
        job=job.name,
        as_of=context.as_of,
        started_at=started,
        finished_at=finished,
        status=status,
        result=result,
        error=error,
    )
    if keep_record or status != "ok" or _did_something(result):
        with transaction(context.engine) as session:
            session.add(run)
    return run


def _did_something(result: dict[str, Any]) -> bool:
    return any(
        isinstance(value, int) and value > 0 and key not in ("skipped",)
        for key, value in result.items()
    )


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
