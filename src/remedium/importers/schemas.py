"""API shapes of the imports resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ImportRunOut(BaseModel):
    """One import: the file, who imported it, when, and what it changed."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    format: str
    filename: str
    source: str
    device_group_id: int | None
    imported_by: str
    scanned_at: datetime | None
    started_at: datetime
    finished_at: datetime | None
    sha256: str
    summary: dict[str, Any]
