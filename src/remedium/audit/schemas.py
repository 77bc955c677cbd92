"""API shapes of the audit history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventOut(BaseModel):
    """One event of the history."""

    id: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_name: str
    action: str
    object_type: str
    object_id: str
    device_group_id: int | None
    device_group_ids: list[int]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str


class AuditEventPage(BaseModel):
    """A page of events, newest first."""

    total: int
    offset: int
    limit: int
    items: list[AuditEventOut]
