"""API shapes of exceptions and inaccuracy reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from remedium.common.paging import Page

Justification = Literal[
    "CompensatingControl", "BusinessNeed", "AcceptRisk", "PlannedRemediation", "FalsePositive"
]
Impact = Literal["NoImpact", "MitigationLike", "Hybrid"]
ScopeKind = Literal["global", "groups", "all_groups"]
Duration = Literal[30, 60, 90, 180]
InaccuracyCategory = Literal[
    "SoftwareNotInstalled", "WrongVersion", "FalsePositive", "WrongDevice", "Other"
]


class ExceptionCreate(BaseModel):
    """A new exception: for a recommendation (all its CVEs) or one CVE.

    ``scope``: ``global`` (administrators; every group, future ones too), ``groups`` (the
    ``device_group_ids`` given) or ``all_groups`` (every group you manage that is not already
    under an exception). Give ``duration_days`` or ``expires_on``.
    """

    model_config = ConfigDict(extra="forbid")

    recommendation_id: str | None = Field(default=None, max_length=440)
    vulnerability_id: str | None = Field(default=None, max_length=100)
    justification: Justification
    context: str = Field(default="", max_length=4000)
    impact: Impact | None = Field(
        default=None,
        description="Default: MitigationLike for a compensating control, else NoImpact.",
    )
    scope: ScopeKind = "groups"
    device_group_ids: list[int] = Field(default_factory=list)
    duration_days: Duration | None = None
    expires_on: datetime | None = None


class CancelRequest(BaseModel):
    """Cancel for every group you manage, or for one (``device_group_id``)."""

    model_config = ConfigDict(extra="forbid")

    device_group_id: int | None = None
    reason: str = Field(default="", max_length=2000)


class DecisionRequest(BaseModel):
    """An approval or rejection, with an optional comment."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class ExceptionGroupView(BaseModel):
    """One covered device group and its status there."""

    device_group_id: int
    name: str
    status: str
    status_label: str
    changed_at: datetime


class ExceptionEventView(BaseModel):
    """One step of an exception's history."""

    kind: str
    actor: str
    occurred_at: datetime
    device_group_id: int | None
    device_group: str | None
    detail: dict[str, Any]


class ExceptionView(BaseModel):
    """An exception with everything the Exceptions tab and the exception view show."""

    id: int
    type: str
    recommendation_id: str | None
    vulnerability_id: str | None
    target_name: str
    justification: str
    justification_label: str
    context: str
    impact: str
    impact_label: str
    scope: Literal["global", "groups"]
    device_groups: list[ExceptionGroupView]
    requested_by: str
    created_at: datetime
    expires_on: datetime
    ended_at: datetime | None
    status: str
    status_label: str
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str
    resurfaced_rule: str | None
    resurfaced_reason: str | None
    resurfaced_evidence: dict[str, Any] | None
    snapshot: dict[str, Any]
    history: list[ExceptionEventView] | None = None


ExceptionPage = Page[ExceptionView]


class InaccuracyCreate(BaseModel):
    """A report that a recommendation or vulnerability is wrong."""

    model_config = ConfigDict(extra="forbid")

    object_type: Literal["recommendation", "vulnerability"]
    object_id: str = Field(max_length=440)
    category: InaccuracyCategory
    details: str = Field(default="", max_length=4000)


class InaccuracyResolve(BaseModel):
    """A confirmation or dismissal, with an optional comment."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class InaccuracyToException(BaseModel):
    """How the false-positive exception made from a confirmed report is scoped and how long."""

    model_config = ConfigDict(extra="forbid")

    scope: ScopeKind = "global"
    device_group_ids: list[int] = Field(default_factory=list)
    duration_days: Duration | None = None
    expires_on: datetime | None = None
    context: str | None = Field(default=None, max_length=4000)


class InaccuracyView(BaseModel):
    """One inaccuracy report."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    object_type: str
    object_id: str
    category: str
    category_label: str
    details: str
    reporter: str
    created_at: datetime
    status: str
    resolver: str | None
    resolved_at: datetime | None
    resolution_comment: str
    exception_id: int | None
    device_group_ids: list[int] = Field(
        default_factory=list, description="the device groups of its object the reporter saw"
    )


InaccuracyPage = Page[InaccuracyView]


class ExceptionPreviewRequest(BaseModel):
    """What an exception would cover, for ``POST /api/v1/exceptions/preview`` (nothing is
    written). ``scope`` as for filing; ``impact`` defaults from the justification, or to
    Mitigation-like when neither is given."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: str | None = Field(default=None, max_length=440)
    vulnerability_id: str | None = Field(default=None, max_length=100)
    justification: Justification | None = None
    impact: Impact | None = None
    scope: ScopeKind = "groups"
    device_group_ids: list[int] = Field(default_factory=list)


class ExceptionPreviewView(BaseModel):
    """The caller's scores now, after the exceptions in effect, and with this exception."""

    exposure_score: float
    exposure_score_after_exceptions: float
    exposure_score_with_exception: float
    secure_score: float
    secure_score_after_exceptions: float
    secure_score_with_exception: float
