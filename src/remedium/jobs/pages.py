"""``/settings/jobs``: when each background job last ran, whether it failed, when it runs next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from fastapi import APIRouter, params
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Right
from remedium.db.base import utcnow
from remedium.jobs.models import JobLease, JobRun
from remedium.jobs.runner import PERIODIC_JOBS
from remedium.remediation.models import OutboxMessage
from remedium.settings import get_settings
from remedium.web.templating import NavItem, PageDep, register_navigation

ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
router = APIRouter(include_in_schema=False, dependencies=[ADMIN_RIGHT])

register_navigation(
    NavItem("jobs", "Background jobs", "/settings/jobs", 125, "settings", Right.ADMIN, "admin")
)

DESCRIPTIONS = {
    "recompute": "Rebuilds recommendations and scores (devices age into inactivity).",
    "exception_lifecycle": "Expires and resurfaces exceptions; flags those expiring soon.",
    "activity_progress": "Measures remediation activities; completes the fixed ones.",
    "activity_retention": "Removes activities completed long ago.",
    "ticket_outbox": "Delivers pending tickets and exception notifications.",
    "ticket_sync": "Reads open tickets' states back from their systems.",
    "score_snapshot": "Copies the day's scores into the history.",
}


@dataclass(frozen=True, slots=True)
class JobRow:
    """One line of the table."""

    name: str
    description: str
    every_seconds: float
    last_finished_at: datetime | None
    last_status: str
    last_error: str
    next_due_at: datetime | None
    running_on: str
    failures_24h: int


def job_rows(session: Session, now: datetime) -> list[JobRow]:
    """Every periodic job with its lease row and its recent failures."""
    settings = get_settings()
    leases = {row.job: row for row in session.scalars(select(JobLease))}
    failures: dict[str, int] = {
        job: int(count)
        for job, count in session.execute(
            select(JobRun.job, func.count())
            .where(JobRun.status == "failed", JobRun.started_at >= now - timedelta(days=1))
            .group_by(JobRun.job)
        )
    }
    rows = []
    for job in PERIODIC_JOBS:
        lease = leases.get(job.name)
        running = lease is not None and lease.leased_until is not None and lease.leased_until > now
        every = settings.jobs_every_seconds if job.exclusive else settings.outbox_every_seconds
        rows.append(
            JobRow(
                name=job.name,
                description=DESCRIPTIONS.get(job.name, ""),
                every_seconds=every,
                last_finished_at=lease.last_finished_at if lease else None,
                last_status=lease.last_status if lease else "",
                last_error=lease.last_error if lease else "",
                next_due_at=lease.next_due_at if lease and job.exclusive else None,
                running_on=(lease.holder.rsplit(":", 1)[0] if running and lease else ""),
                failures_24h=int(failures.get(job.name, 0)),
            )
        )
    return rows


def worker_seen(rows: list[JobRow], now: datetime) -> bool:
    """Whether some worker delivered the outbox lately (three of its intervals)."""
    outbox = next((r for r in rows if r.name == "ticket_outbox"), None)
    if outbox is None or outbox.last_finished_at is None:
        return False
    slack = max(60.0, 3 * outbox.every_seconds)
    return outbox.last_finished_at >= now - timedelta(seconds=slack)


@router.get("/settings/jobs", response_class=HTMLResponse)
def jobs_page(page: PageDep, session: SessionDep) -> HTMLResponse:
    """Background jobs: last run, result, failures, next run; pending tickets."""
    now = utcnow()
    rows = job_rows(session, now)
    recent_failures = session.scalars(
        select(JobRun).where(JobRun.status == "failed").order_by(JobRun.id.desc()).limit(10)
    ).all()
    pending = session.execute(
        select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.state == "pending"
        )
    ).one()
    return page.render(
        "jobs/jobs.html",
        {
            "title": "Background jobs",
            "active": "jobs",
            "rows": rows,
            "now": now,
            "worker_seen": worker_seen(rows, now),
            "recent_failures": recent_failures,
            "pending_tickets": int(pending[0] or 0),
            "next_ticket_attempt": pending[1],
        },
    )
