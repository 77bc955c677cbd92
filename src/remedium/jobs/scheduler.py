"""The scheduler behind ``remedium worker`` (and the worker ``remedium serve`` starts).

Every ``outbox_every`` seconds it delivers the ticket outbox (and the exception notifications);
each periodic job runs when it is due, as recorded in its lease row, so however many schedulers
run against one database, an hourly job runs about once an hour, once at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, select

from remedium.db.base import utcnow
from remedium.db.session import transaction
from remedium.jobs.models import JobLease, JobRun
from remedium.jobs.runner import (
    PERIODIC_JOBS,
    SKIPPED,
    JobContext,
    OutboxDeliveryJob,
    run_job,
)
from remedium.remediation.outbox import ConnectorResolver

OUTBOX_PASS = OutboxDeliveryJob()


def _due_jobs(engine: Engine) -> set[str]:
    """Names of the exclusive jobs that are due and free now (one read)."""
    now = utcnow()
    with transaction(engine) as session:
        rows = {row.job: row for row in session.scalars(select(JobLease))}
    due = set()
    for job in PERIODIC_JOBS:
        if not job.exclusive:
            continue
        row = rows.get(job.name)
        if row is None or (
            (row.next_due_at is None or row.next_due_at <= now)
            and (row.leased_until is None or row.leased_until < now)
        ):
            due.add(job.name)
    return due


def run_due_jobs(
    engine: Engine,
    resolve: ConnectorResolver,
    every: timedelta,
    say: Callable[[JobRun], None],
) -> None:
    """Run, in their order, the periodic jobs that are due and whose lease this process gets."""
    due = _due_jobs(engine)
    if not due:
        return
    for job in PERIODIC_JOBS:
        if job.name in due:
            context = JobContext(engine=engine, as_of=utcnow(), resolve=resolve)
            run = run_job(job, context, scheduled=True, every=every)
            if run.status != SKIPPED:
                say(run)


def outbox_pass(engine: Engine, resolve: ConnectorResolver) -> JobRun:
    """One delivery pass (a ``job_run`` row only when it delivered, retried or failed)."""
    context = JobContext(engine=engine, as_of=utcnow(), resolve=resolve)
    return run_job(OUTBOX_PASS, context, keep_record=False)


def run_scheduler(
    engine: Engine,
    resolve: ConnectorResolver,
    *,
    outbox_every: float,
    jobs_every: float,
    stop: threading.Event,
    say: Callable[[JobRun], None],
    parent_pid: int | None = None,
) -> None:
    """Deliver and run jobs until ``stop`` is set (or the parent process is gone)."""
    every = timedelta(seconds=jobs_every)
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            return  # ``remedium serve`` is gone: do not outlive it
        try:
            run_due_jobs(engine, resolve, every, say)
            run = outbox_pass(engine, resolve)
            if run.status != "ok" or any(
                run.result.get(k) for k in ("delivered", "retried", "failed")
            ):
                say(run)
        except Exception as error:  # the database is away: try again at the next pass
            say(JobRun(job="scheduler", status="failed", result={}, error=str(error)[:500]))
        stop.wait(outbox_every)
