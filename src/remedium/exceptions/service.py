"""Exceptions: the errors, the shared steps of every change, and reading them.

Filing and approval are in ``filing.py``, taking effect and rescoring in ``effect.py``,
canceling, expiry and resurfacing in ``lifecycle.py``, the score preview in ``preview.py``.

Services flush, never commit: the request, command or job owns the transaction. Every change
adds an :class:`ExceptionEvent` (dated with the ``as_of`` time it was made at) and an audit event
(``audit.service.record``, action ``exception.<kind>``), in the same transaction.

Errors form one small tree, each answered by the API with its own status::

    ExceptionsError
    ├── ExceptionNotAllowed   403  the right or the device group is missing
    ├── ExceptionNotFound     404  no such exception/target, or outside the caller's groups
    ├── ExceptionConflict     409  the state does not allow it (e.g. a group already excepted)
    └── ExceptionInvalid      422  the request itself is wrong (names the field)

Status rules (docs/exceptions.md): a group exception is ``Suspended`` while a global exception
on the same recommendation (or CVE) is in effect, and resumes when the global one ends before
its own expiry; expiry and resurfacing run in ``lifecycle.run_exception_jobs``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from remedium.audit.service import record
from remedium.auth.principal import Principal, Right, Scope
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.exceptions import rules
from remedium.exceptions.models import (
    ACTIVE_STATUSES,
    EXCEPTION_TYPES,
    ExceptionDeviceGroup,
    ExceptionEvent,
    RemediationException,
)
from remedium.intel.models import IntelEvent, Vulnerability
from remedium.inventory.models import DeviceGroup
from remedium.recommendations.models import Recommendation, RecommendationVulnerability
from remedium.settings import get_settings

DURATIONS = (30, 60, 90, 180)
# Mitigation-like only where something really mitigates; every other reason leaves the scores
# as they are (Defender: only compensating controls lower the exposure score).
DEFAULT_IMPACT = {
    "CompensatingControl": "MitigationLike",
    "BusinessNeed": "NoImpact",
    "AcceptRisk": "NoImpact",
    "PlannedRemediation": "NoImpact",
    "FalsePositive": "NoImpact",
}


class ExceptionsError(Exception):
    """Base of the errors the exception services raise."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ExceptionNotAllowed(ExceptionsError):  # noqa: N818 - reads as the product's words
    """The caller lacks the right, or a device group, the action needs (403)."""


class ExceptionNotFound(ExceptionsError):  # noqa: N818
    """No such exception or target, or one outside the caller's device groups (404)."""


class ExceptionConflict(ExceptionsError):  # noqa: N818
    """The exception's state does not allow the action (409)."""


class ExceptionInvalid(ExceptionsError):  # noqa: N818
    """The request is malformed (422); ``field`` names the culprit."""


@dataclass(frozen=True, slots=True)
class ExceptionFilter:
    """The list filters of the Exceptions tab and ``GET /api/v1/exceptions`` (all optional)."""

    justification: str | None = None
    exception_type: str | None = None
    status: str | None = None
    recommendation_id: str | None = None
    vulnerability_id: str | None = None


# --- shared steps of every change ------------------------------------------------------------


def require_right(principal: Principal, right: Right) -> None:
    """Raise :class:`ExceptionNotAllowed` unless ``principal`` holds ``right``."""
    if not principal.has(right):
        raise ExceptionNotAllowed(f"the '{right.value}' right is required")


def target_of(exc: RemediationException) -> tuple[str, str]:
    """The exception's target: its type and the recommendation or CVE id."""
    return (exc.exception_type, exc.recommendation_id or exc.vulnerability_id or "")


def same_target(exception_type: str, target_id: str) -> ColumnElement[bool]:
    """SQL condition: the exception is on this recommendation or CVE."""
    column = (
        RemediationException.recommendation_id
        if exception_type == "recommendation"
        else RemediationException.vulnerability_id
    )
    return (RemediationException.exception_type == exception_type) & (column == target_id)


def visible(scope: Scope) -> ColumnElement[bool]:
    """SQL condition: the exception is global, or covers a device group visible in ``scope``."""
    if scope.device_group_ids is None:
        return RemediationException.id.is_not(None)
    return or_(
        RemediationException.is_global.is_(True),
        exists().where(
            ExceptionDeviceGroup.exception_id == RemediationException.id,
            in_scope(ExceptionDeviceGroup.device_group_id, scope),
        ),
    )


def summary_status(exc: RemediationException) -> str:
    """The exception's overall status, from its group rows (a global one keeps its own)."""
    if exc.is_global or not exc.groups:
        return exc.status
    statuses = {g.status for g in exc.groups}
    for status in ("InEffect", "Suspended", "PendingApproval", "Resurfaced"):
        if status in statuses:
            return status
    for status in ("Expired", "Canceled", "Rejected"):
        if status in statuses:
            return status
    return exc.status


def refresh_status(exc: RemediationException, as_of: datetime) -> None:
    """Set the overall status from the group rows, and the end time once it has ended."""
    exc.status = summary_status(exc)
    if exc.status not in ACTIVE_STATUSES and exc.ended_at is None:
        exc.ended_at = min(as_of, exc.expires_on) if exc.status == "Expired" else as_of


def log_change(
    session: Session,
    exc: RemediationException,
    kind: str,
    *,
    actor: Principal | None,
    as_of: datetime,
    groups: Iterable[int | None] = (None,),
    before: str | None = None,
    after: str | None = None,
    detail: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """One history row and one audit event per group touched (None: the whole exception)."""
    name = actor.name if actor is not None else "system"
    for group_id in groups:
        payload = dict(detail or {})
        session.add(
            ExceptionEvent(
                exception_id=exc.id,
                device_group_id=group_id,
                kind=kind,
                actor=name,
                occurred_at=as_of,
                detail={**payload, **({"reason": reason} if reason else {})},
            )
        )
        record(
            session,
            actor=actor,
            action=f"exception.{kind}",
            object_type="exception",
            object_id=exc.id,
            device_group_id=group_id,
            before={"status": before} if before else None,
            after={"status": after, **payload} if after else payload or None,
            reason=reason,
        )
    session.flush()


def load_exception(session: Session, exception_id: int) -> RemediationException | None:
    """One exception with its groups, whatever the scope (for the jobs and internal steps)."""
    return session.scalars(
        select(RemediationException)
        .where(RemediationException.id == exception_id)
        .options(selectinload(RemediationException.groups))
    ).first()


def get_exception(session: Session, scope: Scope, exception_id: int) -> RemediationException | None:
    """One exception with its groups, or ``None`` when missing or outside ``scope``."""
    return session.scalars(
        select(RemediationException)
        .where(RemediationException.id == exception_id, visible(scope))
        .options(selectinload(RemediationException.groups))
    ).first()


def active_global(
    session: Session, exception_type: str, target_id: str, *, statuses: Collection[str]
) -> RemediationException | None:
    """The global exception on this target in one of ``statuses``, if any."""
    return session.scalars(
        select(RemediationException).where(
            same_target(exception_type, target_id),
            RemediationException.is_global.is_(True),
            RemediationException.status.in_(list(statuses)),
        )
    ).first()


def covered_groups(session: Session, exception_type: str, target_id: str) -> set[int]:
    """Groups already held by an active (pending, in effect or suspended) group exception."""
    return set(
        session.scalars(
            select(ExceptionDeviceGroup.device_group_id)
            .join(RemediationException)
            .where(
                same_target(exception_type, target_id),
                ExceptionDeviceGroup.status.in_(ACTIVE_STATUSES),
            )
        )
    )


# --- the threat picture ---------------------------------------------------------------------


def threat_picture(
    session: Session,
    exception_type: str,
    target_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> rules.ThreatPicture:
    """The threat picture of a recommendation or CVE now, with intel events in (since, until]."""
    if exception_type == "recommendation":
        ids = sorted(
            set(
                session.scalars(
                    select(RecommendationVulnerability.vulnerability_id).where(
                        RecommendationVulnerability.recommendation_id == target_id
                    )
                )
            )
        )
        recommendation = session.get(Recommendation, target_id)
        if recommendation is None:
            impact = 0.0
        elif recommendation.kind == "configuration":
            impact = float(recommendation.config_score_impact or 0.0)
        else:
            impact = float(recommendation.exposure_impact or 0.0)
    else:
        ids = [target_id]
        # A CVE has no exposure impact of its own: its exposed devices stand in for it.
        impact = float(
            session.scalar(
                select(
                    func.coalesce(func.sum(RecommendationVulnerability.exposed_devices), 0)
                ).where(RecommendationVulnerability.vulnerability_id == target_id)
            )
            or 0
        )
    facts = tuple(
        rules.VulnerabilityFacts(
            row.id, row.severity, bool(row.public_exploit), bool(row.kev_listed)
        )
        for row in session.execute(
            select(
                Vulnerability.id,
                Vulnerability.severity,
                Vulnerability.public_exploit,
                Vulnerability.kev_listed,
            ).where(Vulnerability.id.in_(ids))
        )
    )
    events: tuple[rules.IntelChange, ...] = ()
    if since is not None and ids:
        query = select(IntelEvent).where(
            IntelEvent.vulnerability_id.in_(ids), IntelEvent.occurred_at > since
        )
        if until is not None:
            query = query.where(IntelEvent.occurred_at <= until)
        events = tuple(
            rules.IntelChange(
                e.vulnerability_id, e.kind, e.old_value, e.new_value, e.occurred_at, e.source
            )
            for e in session.scalars(query)
        )
    return rules.ThreatPicture(facts, impact, events)


# --- reading --------------------------------------------------------------------------------


def expiring_soon(
    session: Session, scope: Scope, *, as_of: datetime | None = None, days: int | None = None
) -> Sequence[RemediationException]:
    """Exceptions in effect (or held) ending within ``days`` (a setting), soonest first."""
    as_of = as_of or utcnow()
    days = get_settings().exception_expiry_warning_days if days is None else days
    return session.scalars(
        select(RemediationException)
        .where(
            RemediationException.status.in_(("InEffect", "Suspended")),
            RemediationException.expires_on > as_of,
            RemediationException.expires_on <= as_of + timedelta(days=days),
            visible(scope),
        )
        .options(selectinload(RemediationException.groups))
        .order_by(RemediationException.expires_on, RemediationException.id)
    ).all()


def list_exceptions(
    session: Session,
    scope: Scope,
    filters: ExceptionFilter | None = None,
    *,
    offset: int = 0,
    limit: int = 25,
) -> tuple[Sequence[RemediationException], int]:
    """Exceptions visible in ``scope`` (newest first) matching ``filters``, and their count."""
    filters = filters or ExceptionFilter()
    query = select(RemediationException).where(visible(scope))
    if filters.justification:
        query = query.where(RemediationException.justification == filters.justification)
    if filters.exception_type:
        if filters.exception_type not in EXCEPTION_TYPES:
            raise ExceptionInvalid(f"unknown type {filters.exception_type!r}", "type")
        query = query.where(RemediationException.exception_type == filters.exception_type)
    if filters.status:
        query = query.where(RemediationException.status == filters.status)
    if filters.recommendation_id:
        query = query.where(RemediationException.recommendation_id == filters.recommendation_id)
    if filters.vulnerability_id:
        query = query.where(RemediationException.vulnerability_id == filters.vulnerability_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(RemediationException.groups))
        .order_by(RemediationException.created_at.desc(), RemediationException.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, total


def history(session: Session, scope: Scope, exc: RemediationException) -> Sequence[ExceptionEvent]:
    """The exception's history, oldest first, without events of groups outside ``scope``."""
    query = select(ExceptionEvent).where(ExceptionEvent.exception_id == exc.id)
    if scope.device_group_ids is not None:
        query = query.where(
            or_(
                ExceptionEvent.device_group_id.is_(None),
                in_scope(ExceptionEvent.device_group_id.cast(Integer), scope),
            )
        )
    return session.scalars(query.order_by(ExceptionEvent.occurred_at, ExceptionEvent.id)).all()


def group_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Names of the given device groups."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {
        row.id: row.name
        for row in session.execute(
            select(DeviceGroup.id, DeviceGroup.name).where(DeviceGroup.id.in_(wanted))
        )
    }
