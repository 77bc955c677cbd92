"""The record of each import: what came in, from whom, and what it changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime


class ImportRun(Base):
    """One import of one file (only successful imports are kept: a failed one changes nothing)."""

    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    format: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(100), default="")
    device_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_group.id", ondelete="SET NULL"), nullable=True
    )
    imported_by: Mapped[str] = mapped_column(String(200), default="cli")
    scanned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
