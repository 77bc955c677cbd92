"""Filing, approving, canceling, expiring and resurfacing exceptions, and reading them.

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
its own expiry; expiry and resurfacing run in :func:`run_exception_jobs`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

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
    IMPACTS,
    JUSTIFICATIONS,
    ExceptionDeviceGroup,
    ExceptionEvent,
    RemediationException,
)
from remedium.intel.models import IntelEvent, Vulnerability
from remedium.inventory.models import Device, DeviceGroup, Weakness
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationVulnerability,
)
from remedium.recommendations.service import recompute
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
ImpactName = Literal["NoImpact", "MitigationLike", "Hybrid"]


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
class Coverage:
    """What one exception in effect covers, for the score integration (docs/exceptions.md).

    ``device_group_ids=None`` means every device group (a global exception, future groups too).
    Exactly one of ``recommendation_id`` (the whole recommendation and all its CVEs) and
    ``vulnerability_id`` (one CVE, on whichever recommendations carry it) is set.
    """

    recommendation_id: str | None
    vulnerability_id: str | None
    device_group_ids: frozenset[int] | None
    impact: ImpactName
    exception_id: int
    justification: str = ""


@dataclass(slots=True)
class ExceptionJobResult:
    """What one run of the exception jobs changed."""

    expired: list[int] = field(default_factory=list)
    resurfaced: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    expiring_soon: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The counts, for ``remedium jobs run --json``."""
        return {
            "exceptions_expired": len(self.expired),
            "exceptions_resurfaced": len(self.resurfaced),
            "exceptions_resumed": len(self.resumed),
            "exceptions_expiring_soon": len(self.expiring_soon),
        }


@dataclass(frozen=True, slots=True)
class ExceptionFilter:
    """The list filters of the Exceptions tab and ``GET /api/v1/exceptions`` (all optional)."""

    justification: str | None = None
    exception_type: str | None = None
    status: str | None = None
    recommendation_id: str | None = None
    vulnerability_id: str | None = None


# --- small helpers --------------------------------------------------------------------------


def _require(principal: Principal, right: Right) -> None:
    if not principal.has(right):
        raise ExceptionNotAllowed(f"the '{right.value}' right is required")


def _target(exc: RemediationException) -> tuple[str, str]:
    return (exc.exception_type, exc.recommendation_id or exc.vulnerability_id or "")


def _same_target(exception_type: str, target_id: str) -> ColumnElement[bool]:
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


def _refresh(exc: RemediationException, as_of: datetime) -> None:
    exc.status = summary_status(exc)
    if exc.status not in ACTIVE_STATUSES and exc.ended_at is None:
        exc.ended_at = min(as_of, exc.expires_on) if exc.status == "Expired" else as_of


def _log(
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


def _load(session: Session, exception_id: int) -> RemediationException | None:
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


def _active_global(
    session: Session, exception_type: str, target_id: str, *, statuses: Collection[str]
) -> RemediationException | None:
    return session.scalars(
        select(RemediationException).where(
            _same_target(exception_type, target_id),
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
                _same_target(exception_type, target_id),
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


# --- filing ---------------------------------------------------------------------------------


def _expiry(as_of: datetime, duration_days: int | None, expires_on: datetime | None) -> datetime:
    if (duration_days is None) == (expires_on is None):
        raise ExceptionInvalid("give either a duration or an end date", "duration_days")
    if duration_days is not None:
        if duration_days not in DURATIONS:
            raise ExceptionInvalid(
                f"the duration must be one of {', '.join(map(str, DURATIONS))} days",
                "duration_days",
            )
        return as_of + timedelta(days=duration_days)
    assert expires_on is not None
    if expires_on.tzinfo is None:
        expires_on = expires_on.replace(tzinfo=as_of.tzinfo)
    if expires_on <= as_of:
        raise ExceptionInvalid("the end date must be in the future", "expires_on")
    return expires_on


def _chosen_groups(
    session: Session,
    principal: Principal,
    *,
    exception_type: str,
    target_id: str,
    device_group_ids: Collection[int],
    all_groups: bool,
) -> list[int]:
    covered = covered_groups(session, exception_type, target_id)
    if all_groups:
        # "All current device groups": those the user may act on, less the ones excepted already.
        ids = [
            g
            for g in session.scalars(
                select(DeviceGroup.id)
                .where(in_scope(DeviceGroup.id, principal.scope))
                .order_by(DeviceGroup.id)
            )
            if g not in covered
        ]
        if not ids:
            raise ExceptionConflict("every device group you manage is already under an exception")
        return ids
    wanted = sorted(set(device_group_ids))
    if not wanted:
        raise ExceptionInvalid("choose at least one device group, or a global scope", "scope")
    known = {
        row.id: row.name
        for row in session.execute(
            select(DeviceGroup.id, DeviceGroup.name).where(
                DeviceGroup.id.in_(wanted), in_scope(DeviceGroup.id, principal.scope)
            )
        )
    }
    missing = [g for g in wanted if g not in known]
    if missing:
        raise ExceptionNotFound(
            f"unknown device group {', '.join(map(str, missing))}", "device_group_ids"
        )
    taken = [g for g in wanted if g in covered]
    if taken:
        names = ", ".join(known[g] for g in taken)
        raise ExceptionConflict(
            f"already under an exception for this {exception_type}: {names}", "device_group_ids"
        )
    return wanted


def rescore(
    session: Session, exceptions: Iterable[RemediationException], *, as_of: datetime
) -> int:
    """Recompute the scores of the devices exposed to these exceptions' targets.

    Called after every change of what is in effect (take effect, cancel, expire, resurface,
    resume), so that the after-exceptions scores follow at once. A global exception, or any
    exception whose change releases or holds others on the same target, touches the target's
    devices in every group; a group exception only its groups. Returns the devices recomputed.
    """
    everywhere: set[tuple[str, str]] = set()
    by_group: dict[tuple[str, str], set[int]] = {}
    for exc in exceptions:
        target = _target(exc)
        if exc.is_global:
            everywhere.add(target)
        else:
            by_group.setdefault(target, set()).update(g.device_group_id for g in exc.groups)
    devices: set[int] = set()
    for target in everywhere | set(by_group):
        groups = None if target in everywhere else by_group[target]
        devices |= _exposed_devices(session, *target, groups)
    if devices:
        recompute(session, device_ids=devices, as_of=as_of)
    return len(devices)


def _exposed_devices(
    session: Session, exception_type: str, target_id: str, groups: Collection[int] | None
) -> set[int]:
    """Devices with open weaknesses of the target (in ``groups``; ``None`` means all)."""
    if exception_type == "recommendation":
        query = (
            select(DeviceRecommendation.device_id)
            .join(Device, Device.id == DeviceRecommendation.device_id)
            .where(DeviceRecommendation.recommendation_id == target_id)
        )
    else:
        query = (
            select(Weakness.device_id)
            .join(Device, Device.id == Weakness.device_id)
            .where(Weakness.vulnerability_id == target_id, Weakness.fixed_at.is_(None))
        )
    if groups is not None:
        query = query.where(Device.device_group_id.in_(sorted(groups)))
    return set(session.scalars(query.distinct()))


def file_exception(
    session: Session,
    principal: Principal,
    *,
    justification: str,
    recommendation_id: str | None = None,
    vulnerability_id: str | None = None,
    context: str = "",
    impact: str | None = None,
    is_global: bool = False,
    device_group_ids: Collection[int] = (),
    all_groups: bool = False,
    duration_days: int | None = None,
    expires_on: datetime | None = None,
    as_of: datetime | None = None,
    require_approval: bool | None = None,
) -> RemediationException:
    """File an exception for a recommendation (all its CVEs) or for one CVE.

    ``require_approval`` overrides the ``exceptions_require_approval`` setting (the demo files
    one pending exception whatever the setting).

    Needs the exceptions right; a global exception (all groups, future ones too) needs an
    administrator. Device groups must be in the caller's scope and not already under an active
    exception for the same target. With ``exceptions_require_approval`` the exception waits in
    ``PendingApproval``; otherwise it takes effect at once (``Suspended`` for groups while a
    global exception on the same target is in effect).
    """
    _require(principal, Right.EXCEPTIONS)
    as_of = as_of or utcnow()
    if (recommendation_id is None) == (vulnerability_id is None):
        raise ExceptionInvalid("give either a recommendation or a vulnerability", "type")
    exception_type = "recommendation" if recommendation_id is not None else "cve"
    target_id = recommendation_id or vulnerability_id or ""
    if justification not in JUSTIFICATIONS:
        raise ExceptionInvalid(f"unknown justification {justification!r}", "justification")
    impact = impact or DEFAULT_IMPACT[justification]
    if impact not in IMPACTS:
        raise ExceptionInvalid(f"unknown impact {impact!r}", "impact")
    expiry = _expiry(as_of, duration_days, expires_on)
    target = (
        session.get(Recommendation, target_id)
        if exception_type == "recommendation"
        else session.get(Vulnerability, target_id)
    )
    if target is None:
        raise ExceptionNotFound(f"{exception_type} {target_id} not found")
    if is_global:
        if not principal.has(Right.ADMIN):
            raise ExceptionNotAllowed("only administrators may file a global exception")
        if _active_global(session, exception_type, target_id, statuses=ACTIVE_STATUSES):
            raise ExceptionConflict(f"this {exception_type} already has a global exception")
        groups: list[int] = []
    else:
        groups = _chosen_groups(
            session,
            principal,
            exception_type=exception_type,
            target_id=target_id,
            device_group_ids=device_group_ids,
            all_groups=all_groups,
        )
    picture = threat_picture(session, exception_type, target_id)
    pending = (
        get_settings().exceptions_require_approval if require_approval is None else require_approval
    )
    exc = RemediationException(
        exception_type=exception_type,
        recommendation_id=recommendation_id,
        vulnerability_id=vulnerability_id,
        justification=justification,
        context=context,
        impact=impact,
        is_global=is_global,
        status="PendingApproval",
        requested_by_user_id=principal.user_id,
        requested_by=principal.name,
        created_at=as_of,
        expires_on=expiry,
        snapshot=rules.snapshot_of(picture, as_of).as_json(),
    )
    exc.groups = [
        ExceptionDeviceGroup(device_group_id=g, status="PendingApproval", changed_at=as_of)
        for g in groups
    ]
    session.add(exc)
    session.flush()
    _log(
        session,
        exc,
        "file",
        actor=principal,
        as_of=as_of,
        groups=groups or [None],
        after="PendingApproval",
        detail={
            "justification": justification,
            "impact": impact,
            "scope": "global" if is_global else "groups",
            "expires_on": expiry.isoformat(),
            "target": target_id,
        },
        reason=context,
    )
    if not pending:
        _take_effect(session, exc, actor=principal, as_of=as_of)
        if rescore(session, [exc], as_of=as_of):
            # The recompute may have refreshed stale derived figures (an intelligence change
            # not yet recomputed): the picture the exception accepts is the refreshed one.
            exc.snapshot = rules.snapshot_of(
                threat_picture(session, exception_type, target_id), as_of
            ).as_json()
    return exc


def _take_effect(
    session: Session, exc: RemediationException, *, actor: Principal | None, as_of: datetime
) -> None:
    """Put an approved (or unapproved-by-policy) exception in effect, applying suspension."""
    exception_type, target_id = _target(exc)
    if exc.is_global:
        exc.status = "InEffect"
        _log(session, exc, "in_effect", actor=actor, as_of=as_of, after="InEffect")
        _suspend_groups(session, exc, actor=actor, as_of=as_of)
        return
    held_by = _active_global(session, exception_type, target_id, statuses=("InEffect",))
    status = "Suspended" if held_by is not None else "InEffect"
    for group in exc.groups:
        if group.status == "PendingApproval":
            group.status = status
            group.changed_at = as_of
    _refresh(exc, as_of)
    detail = {"held_by_exception": held_by.id} if held_by is not None else None
    _log(
        session,
        exc,
        "suspend" if held_by is not None else "in_effect",
        actor=actor,
        as_of=as_of,
        groups=[g.device_group_id for g in exc.groups],
        after=status,
        detail=detail,
    )


def _suspend_groups(
    session: Session, global_exc: RemediationException, *, actor: Principal | None, as_of: datetime
) -> None:
    """Hold every in-effect group exception on the global exception's target."""
    exception_type, target_id = _target(global_exc)
    rows = session.scalars(
        select(ExceptionDeviceGroup)
        .join(RemediationException)
        .where(_same_target(exception_type, target_id), ExceptionDeviceGroup.status == "InEffect")
    ).all()
    touched: dict[int, list[int]] = {}
    for row in rows:
        row.status = "Suspended"
        row.changed_at = as_of
        touched.setdefault(row.exception_id, []).append(row.device_group_id)
    for exception_id, group_ids in touched.items():
        exc = _load(session, exception_id)
        assert exc is not None
        _refresh(exc, as_of)
        _log(
            session,
            exc,
            "suspend",
            actor=actor,
            as_of=as_of,
            groups=group_ids,
            before="InEffect",
            after="Suspended",
            detail={"held_by_exception": global_exc.id},
        )


def _resume_groups(
    session: Session, exception_type: str, target_id: str, *, as_of: datetime
) -> list[int]:
    """Release group exceptions held by a global one that ended; expired ones expire instead."""
    if _active_global(session, exception_type, target_id, statuses=("InEffect",)) is not None:
        return []
    rows = session.scalars(
        select(ExceptionDeviceGroup)
        .join(RemediationException)
        .where(_same_target(exception_type, target_id), ExceptionDeviceGroup.status == "Suspended")
    ).all()
    by_exception: dict[int, list[ExceptionDeviceGroup]] = {}
    for row in rows:
        by_exception.setdefault(row.exception_id, []).append(row)
    resumed = []
    for exception_id, group_rows in by_exception.items():
        exc = _load(session, exception_id)
        assert exc is not None
        still_valid = exc.expires_on > as_of
        status = "InEffect" if still_valid else "Expired"
        for row in group_rows:
            row.status = status
            row.changed_at = as_of
        _refresh(exc, as_of)
        _log(
            session,
            exc,
            "resume" if still_valid else "expire",
            actor=None,
            as_of=as_of,
            groups=[r.device_group_id for r in group_rows],
            before="Suspended",
            after=status,
        )
        if still_valid:
            resumed.append(exception_id)
    return resumed


# --- approval -------------------------------------------------------------------------------


def _decide(
    session: Session, principal: Principal, exception_id: int, as_of: datetime | None
) -> tuple[RemediationException, datetime]:
    _require(principal, Right.EXCEPTIONS)
    as_of = as_of or utcnow()
    exc = get_exception(session, principal.scope, exception_id)
    if exc is None:
        raise ExceptionNotFound(f"exception {exception_id} not found")
    if exc.status != "PendingApproval":
        raise ExceptionConflict(f"exception {exception_id} is not pending approval")
    own = (
        exc.requested_by_user_id == principal.user_id
        if principal.user_id is not None and exc.requested_by_user_id is not None
        else exc.requested_by == principal.name
    )
    if own:
        raise ExceptionNotAllowed("you cannot approve or reject your own exception")
    if exc.is_global and not principal.has(Right.ADMIN):
        raise ExceptionNotAllowed("only administrators may decide on a global exception")
    outside = [
        g.device_group_id for g in exc.groups if not principal.scope.allows(g.device_group_id)
    ]
    if outside:
        raise ExceptionNotAllowed("the exception covers device groups you do not manage")
    return exc, as_of


def approve_exception(
    session: Session,
    principal: Principal,
    exception_id: int,
    *,
    comment: str = "",
    as_of: datetime | None = None,
) -> RemediationException:
    """Approve a pending exception (by someone other than its requester): it takes effect."""
    exc, as_of = _decide(session, principal, exception_id, as_of)
    if exc.expires_on <= as_of:
        raise ExceptionConflict(f"exception {exception_id} expired before it was approved")
    exc.decided_by, exc.decided_at, exc.decision_comment = principal.name, as_of, comment
    _log(
        session,
        exc,
        "approve",
        actor=principal,
        as_of=as_of,
        groups=[g.device_group_id for g in exc.groups] or [None],
        before="PendingApproval",
        after="Approved",
        reason=comment,
    )
    _take_effect(session, exc, actor=principal, as_of=as_of)
    rescore(session, [exc], as_of=as_of)
    return exc


def reject_exception(
    session: Session,
    principal: Principal,
    exception_id: int,
    *,
    comment: str = "",
    as_of: datetime | None = None,
) -> RemediationException:
    """Reject a pending exception (by someone other than its requester); it never takes effect."""
    exc, as_of = _decide(session, principal, exception_id, as_of)
    exc.decided_by, exc.decided_at, exc.decision_comment = principal.name, as_of, comment
    exc.status = "Rejected"
    for group in exc.groups:
        group.status = "Rejected"
        group.changed_at = as_of
    _refresh(exc, as_of)
    _log(
        session,
        exc,
        "reject",
        actor=principal,
        as_of=as_of,
        groups=[g.device_group_id for g in exc.groups] or [None],
        before="PendingApproval",
        after="Rejected",
        reason=comment,
    )
    return exc


# --- cancel ---------------------------------------------------------------------------------


def cancel_exception(
    session: Session,
    principal: Principal,
    exception_id: int,
    *,
    device_group_id: int | None = None,
    reason: str = "",
    as_of: datetime | None = None,
) -> RemediationException:
    """Cancel an exception for all its device groups, or for one (``device_group_id``).

    Only groups in the caller's scope are canceled ("all" means all of those); a global
    exception only by an administrator, after which the group exceptions it held resume.
    """
    _require(principal, Right.EXCEPTIONS)
    as_of = as_of or utcnow()
    exc = get_exception(session, principal.scope, exception_id)
    if exc is None:
        raise ExceptionNotFound(f"exception {exception_id} not found")
    if exc.is_global:
        if not principal.has(Right.ADMIN):
            raise ExceptionNotAllowed("only administrators may cancel a global exception")
        if device_group_id is not None:
            raise ExceptionInvalid("a global exception is canceled as a whole", "device_group_id")
        if exc.status not in ACTIVE_STATUSES:
            raise ExceptionConflict(f"exception {exception_id} is already {exc.status}")
        before = exc.status
        exc.status = "Canceled"
        _refresh(exc, as_of)
        _log(
            session,
            exc,
            "cancel",
            actor=principal,
            as_of=as_of,
            before=before,
            after="Canceled",
            reason=reason,
        )
        exception_type, target_id = _target(exc)
        _resume_groups(session, exception_type, target_id, as_of=as_of)
        rescore(session, [exc], as_of=as_of)
        return exc
    mine = [g for g in exc.groups if principal.scope.allows(g.device_group_id)]
    if device_group_id is not None:
        mine = [g for g in mine if g.device_group_id == device_group_id]
        if not mine:
            raise ExceptionNotFound(
                f"exception {exception_id} does not cover device group {device_group_id}",
                "device_group_id",
            )
    rows = [g for g in mine if g.status in ACTIVE_STATUSES]
    if not rows:
        raise ExceptionConflict(f"exception {exception_id} is no longer in effect there")
    before = exc.status
    for row in rows:
        row.status = "Canceled"
        row.changed_at = as_of
    _refresh(exc, as_of)
    _log(
        session,
        exc,
        "cancel",
        actor=principal,
        as_of=as_of,
        groups=[r.device_group_id for r in rows],
        before=before,
        after="Canceled",
        reason=reason,
    )
    rescore(session, [exc], as_of=as_of)
    return exc


# --- jobs -----------------------------------------------------------------------------------


def _active_exceptions(
    session: Session, *extra: ColumnElement[bool]
) -> Sequence[RemediationException]:
    return session.scalars(
        select(RemediationException)
        .where(RemediationException.status.in_(ACTIVE_STATUSES), *extra)
        .options(selectinload(RemediationException.groups))
        .order_by(RemediationException.id)
    ).all()


def expire_exceptions(
    session: Session, as_of: datetime | None = None, *, resumed: list[int] | None = None
) -> list[int]:
    """Expire every exception whose end date has passed; held group exceptions then resume."""
    as_of = as_of or utcnow()
    expired = []
    ended_globals: set[tuple[str, str]] = set()
    for exc in _active_exceptions(session, RemediationException.expires_on <= as_of):
        before = exc.status
        groups: list[int | None] = [None]
        if exc.is_global:
            exc.status = "Expired"
            ended_globals.add(_target(exc))
        else:
            rows = [g for g in exc.groups if g.status in ACTIVE_STATUSES]
            for row in rows:
                row.status = "Expired"
                row.changed_at = as_of
            groups = [r.device_group_id for r in rows]
        _refresh(exc, as_of)
        _log(
            session,
            exc,
            "expire",
            actor=None,
            as_of=as_of,
            groups=groups,
            before=before,
            after="Expired",
            detail={"expires_on": exc.expires_on.isoformat()},
        )
        expired.append(exc.id)
    for exception_type, target_id in sorted(ended_globals):
        released = _resume_groups(session, exception_type, target_id, as_of=as_of)
        if resumed is not None:
            resumed.extend(released)
    ended = [e for e in (_load(session, i) for i in expired) if e is not None]
    rescore(session, ended, as_of=as_of)
    return expired


def resurface_exceptions(
    session: Session, as_of: datetime | None = None, *, resumed: list[int] | None = None
) -> list[int]:
    """Void every exception whose threat picture got worse since filing (rules.py), with why."""
    as_of = as_of or utcnow()
    margin = get_settings().exception_resurface_impact_margin
    resurfaced = []
    ended_globals: set[tuple[str, str]] = set()
    for exc in _active_exceptions(session, RemediationException.created_at <= as_of):
        exception_type, target_id = _target(exc)
        snapshot = rules.ThreatSnapshot.from_json(exc.snapshot)
        # Every event since filing, later ones too: the rules need them to tell that a flag
        # seen now had not changed yet at ``as_of``.
        picture = threat_picture(session, exception_type, target_id, since=snapshot.filed_at)
        verdict = rules.resurfacing(snapshot, picture, impact_margin=margin, as_of=as_of)
        if verdict is None:
            continue
        before = exc.status
        groups: list[int | None] = [None]
        if exc.is_global:
            exc.status = "Resurfaced"
            ended_globals.add((exception_type, target_id))
        else:
            rows = [g for g in exc.groups if g.status in ACTIVE_STATUSES]
            for row in rows:
                row.status = "Resurfaced"
                row.changed_at = as_of
            groups = [r.device_group_id for r in rows]
        exc.resurfaced_rule = verdict.rule
        exc.resurfaced_evidence = verdict.evidence
        _refresh(exc, as_of)
        _log(
            session,
            exc,
            "resurface",
            actor=None,
            as_of=as_of,
            groups=groups,
            before=before,
            after="Resurfaced",
            detail={"rule": verdict.rule, "evidence": verdict.evidence},
            reason=verdict.label,
        )
        resurfaced.append(exc.id)
    for exception_type, target_id in sorted(ended_globals):
        released = _resume_groups(session, exception_type, target_id, as_of=as_of)
        if resumed is not None:
            resumed.extend(released)
    voided = [e for e in (_load(session, i) for i in resurfaced) if e is not None]
    rescore(session, voided, as_of=as_of)
    return resurfaced


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


def run_exception_jobs(session: Session, as_of: datetime | None = None) -> ExceptionJobResult:
    """The periodic exception job: expire, then resurface, then flag what expires soon.

    Called by the job runner (``remedium jobs run [--as-of]``) and right after an import.
    Expiring-soon exceptions are marked (``expiry_warned_at``) once and announced once through
    every enabled webhook connection (``exceptions.notify``); the ids returned are the newly
    flagged ones.
    """
    as_of = as_of or utcnow()
    result = ExceptionJobResult()
    result.expired = expire_exceptions(session, as_of, resumed=result.resumed)
    result.resurfaced = resurface_exceptions(session, as_of, resumed=result.resumed)
    flagged: list[RemediationException] = []
    for exc in expiring_soon(session, Scope(), as_of=as_of):
        if exc.expiry_warned_at is None:
            exc.expiry_warned_at = as_of
            _log(
                session,
                exc,
                "expiring_soon",
                actor=None,
                as_of=as_of,
                groups=[g.device_group_id for g in exc.groups if g.status in ACTIVE_STATUSES]
                or [None],
                detail={"expires_on": exc.expires_on.isoformat()},
            )
            result.expiring_soon.append(exc.id)
            flagged.append(exc)
    if flagged:
        # Imported here: the notifier reads connectors, which the rest of this module does not.
        from remedium.exceptions.notify import enqueue_expiring

        enqueue_expiring(session, flagged, as_of=as_of)
    session.flush()
    return result


# --- reading --------------------------------------------------------------------------------


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


def effective_coverage(session: Session, as_of: datetime | None = None) -> list[Coverage]:
    """What the exceptions in effect at ``as_of`` cover: the one input the scores need.

    Only ``InEffect`` exceptions and groups count (a ``Suspended`` group is covered by the global
    exception that holds it, which is in the list itself). An exception whose end date has passed
    is left out even before the job marks it expired, so scores never lag behind the calendar.
    See docs/exceptions.md for how the exposure score and Secure Score use it.
    """
    as_of = as_of or utcnow()
    result = []
    for exc in session.scalars(
        select(RemediationException)
        .where(
            RemediationException.status == "InEffect",
            RemediationException.expires_on > as_of,
            RemediationException.created_at <= as_of,
        )
        .options(selectinload(RemediationException.groups))
        .order_by(RemediationException.id)
    ):
        groups: frozenset[int] | None = None
        if not exc.is_global:
            groups = frozenset(g.device_group_id for g in exc.groups if g.status == "InEffect")
            if not groups:
                continue
        impact: ImpactName = exc.impact  # type: ignore[assignment]  # checked by a constraint
        result.append(
            Coverage(
                recommendation_id=exc.recommendation_id,
                vulnerability_id=exc.vulnerability_id,
                device_group_ids=groups,
                impact=impact,
                exception_id=exc.id,
                justification=exc.justification,
            )
        )
    return result


# --- score preview --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScorePreview:
    """The scope's scores now, after the exceptions in effect, and with one more exception."""

    exposure_score: float
    exposure_score_after_exceptions: float
    exposure_score_with_exception: float
    secure_score: float
    secure_score_after_exceptions: float
    secure_score_with_exception: float


def preview_exception(
    session: Session,
    scope: Scope,
    *,
    recommendation_id: str | None = None,
    vulnerability_id: str | None = None,
    impact: str = "MitigationLike",
    is_global: bool = False,
    device_group_ids: Collection[int] = (),
    as_of: datetime | None = None,
) -> ScorePreview:
    """What the scope's scores would be with this exception, without writing anything.

    Reads the scope's stored after-exceptions sums and the target's rows on the covered active
    devices (``device_recommendation`` for a recommendation, open weaknesses for a CVE), and
    applies ``scoring.service.preview_after_exceptions``. ``NoImpact`` changes nothing. For a
    CVE, points a recommendation exception already removes are not told apart (the preview can
    then overstate the fall on those devices).
    """
    # Imported here: scoring.queries reads only scoring tables, but keeps this module light.
    from remedium.common.scoping import active_since
    from remedium.scoring import engine as scoring_engine
    from remedium.scoring.models import GroupSecureStat
    from remedium.scoring.queries import exposure_sums_both
    from remedium.scoring.service import PreviewDevice, preview_after_exceptions

    if impact not in IMPACTS:
        raise ExceptionInvalid(f"unknown impact {impact!r}", "impact")
    if (recommendation_id is None) == (vulnerability_id is None):
        raise ExceptionInvalid("give either a recommendation or a vulnerability", "type")
    sums, sums_after = exposure_sums_both(session, scope)
    passed, passed_after, total = (
        float(v or 0.0)
        for v in session.execute(
            select(
                func.sum(GroupSecureStat.passed_weight),
                func.sum(GroupSecureStat.passed_weight_after),
                func.sum(GroupSecureStat.total_weight),
            ).where(in_scope(GroupSecureStat.device_group_id, scope))
        ).one()
    )
    devices: list[PreviewDevice] = []
    if impact != "NoImpact":
        conditions: list[ColumnElement[bool]] = [
            Device.last_seen >= active_since(as_of),
            in_scope(Device.device_group_id, scope),
        ]
        if not is_global:
            conditions.append(Device.device_group_id.in_(sorted(set(device_group_ids))))
        if recommendation_id is not None:
            dr = DeviceRecommendation
            devices = [
                PreviewDevice(
                    value,
                    float(points_after),
                    max(float(points) - float(covered), 0.0),
                    float(weight) if float(covered) <= 0 else 0.0,
                )
                for value, points_after, points, covered, weight in session.execute(
                    select(
                        Device.device_value,
                        Device.exposure_points_after,
                        dr.points,
                        dr.covered_points,
                        dr.config_weight,
                    )
                    .join(Device, Device.id == dr.device_id)
                    .where(dr.recommendation_id == recommendation_id, *conditions)
                )
            ]
        else:
            multiplier = scoring_engine.INTERNET_FACING
            devices = [
                PreviewDevice(
                    value,
                    float(points_after),
                    float(raw) * (multiplier if facing else 1.0),
                )
                for value, points_after, facing, raw in session.execute(
                    select(
                        Device.device_value,
                        Device.exposure_points_after,
                        Device.internet_facing,
                        func.sum(Vulnerability.exposure_points),
                    )
                    .join(Weakness, Weakness.device_id == Device.id)
                    .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
                    .where(
                        Weakness.vulnerability_id == vulnerability_id,
                        Weakness.fixed_at.is_(None),
                        *conditions,
                    )
                    .group_by(
                        Device.id,
                        Device.device_value,
                        Device.exposure_points_after,
                        Device.internet_facing,
                    )
                )
            ]
    exposure_with, secure_with = preview_after_exceptions(sums_after, passed_after, total, devices)
    return ScorePreview(
        exposure_score=round(sums.score(), 2),
        exposure_score_after_exceptions=round(sums_after.score(), 2),
        exposure_score_with_exception=round(exposure_with, 2),
        secure_score=round(scoring_engine.secure_score(passed, total), 2),
        secure_score_after_exceptions=round(scoring_engine.secure_score(passed_after, total), 2),
        secure_score_with_exception=round(secure_with, 2),
    )


def preview_groups(session: Session, scope: Scope) -> list[int]:
    """Every device group in ``scope`` (the "all groups" choice of the preview)."""
    return [
        int(g)
        for g in session.scalars(select(DeviceGroup.id).where(in_scope(DeviceGroup.id, scope)))
    ]
