"""The persisted record of each periodic job run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime


class JobRun(Base):
    """One run of one periodic job: when, as of when, how it ended and what it did."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|ok|failed
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")


class JobLease(Base):
    """Who may run a periodic job now, and when it is next due (one row per job).

    A process runs a job only after an ``UPDATE`` that takes the lease: the row's lease is free
    (``leased_until`` empty or past) and, for the scheduler, the job is due. The update is atomic
    on both databases, so one run of a job happens at a time across every process. The holder
    renews the lease while it runs and frees it at the end; a process killed mid-run leaves the
    lease to expire (docs/remediation.md).
    """

    __tablename__ = "job_lease"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="")
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The last pass of any process (the frequent outbox passes keep no job_run row each).
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_status: Mapped[str] = mapped_column(String(10), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
