"""API shapes of remediation activities."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RemediationTypeName = Literal[
    "Update", "Upgrade", "Uninstall", "ConfigurationChange", "AttentionRequired"
]
PriorityName = Literal["High", "Medium", "Low"]


class ActivityRequest(BaseModel):
    """``POST /api/v1/remediation-activities``: ask IT to fix a recommendation."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: str = Field(max_length=440)
    remediation_type: RemediationTypeName
    # None (or omitted): every device group you may act on.
    device_group_ids: list[int] | None = None
    priority: PriorityName = "Medium"
    due_on: date | None = Field(None, description="Required unless AttentionRequired.")
    notes: str = Field("", max_length=4000)
    connector: str | None = Field(None, description="A switched-on ticketing connection.")


class PreviewRequest(BaseModel):
    """``POST /api/v1/remediation-activities/preview``: what a request would cover."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: str = Field(max_length=440)
    device_group_ids: list[int] | None = None


class PreviewOut(BaseModel):
    """Devices in scope, how many Intune can act on, and what the per-ticket cap leaves out."""

    recommendation_id: str
    title: str
    remediation_types: list[str]
    device_group_ids: list[int]
    devices_in_scope: int
    intune_eligible_devices: int
    max_devices_per_ticket: int
    devices_over_cap: int
    message: str


class TicketOut(BaseModel):
    """The activity's ticket: where remedium's delivery stands and what the system says."""

    connector: str | None
    delivery: str  # none | pending | delivered | failed
    external_id: str | None
    key: str | None
    url: str | None
    state: str | None  # the system's own word
    status: str | None  # normalised: pending, accepted, in_progress, completed, rejected
    last_synced: datetime | None
    last_error: str | None = None


class ActivityOut(BaseModel):
    """A remediation activity with its progress and ticket."""

    id: str
    recommendation_id: str
    title: str
    description: str
    category: str
    remediation_type: str
    priority: str
    due_on: date | None
    overdue: bool
    notes: str
    requester: str
    requester_email: str
    created_at: datetime
    status: str
    status_last_modified: datetime
    completion_method: str | None
    completed_by: str | None
    completed_at: datetime | None
    device_groups: list[str]
    all_device_groups: bool
    target_devices: int
    fixed_devices: int
    # None for "attention required", which has no progress.
    progress_percent: float | None
    devices_over_cap: int
    cap_message: str
    ticket: TicketOut


class ActivityPage(BaseModel):
    """One page of activities."""

    items: list[ActivityOut]
    total: int
    offset: int
    limit: int


class ActivityDeviceOut(BaseModel):
    """One target device and whether the inventory shows it fixed."""

    device_id: int
    machine_id: str
    name: str
    device_group: str
    os_platform: str
    status: Literal["Fixed", "Not fixed"]
    fixed_at: datetime | None


class ActivityDevicePage(BaseModel):
    """One page of target devices."""

    items: list[ActivityDeviceOut]
    total: int
    offset: int
    limit: int
