"""Filing an exception, and approving or rejecting one that waits for approval.

Every change adds an ``ExceptionEvent`` and an audit event in the caller's transaction; errors are
the ``ExceptionsError`` tree of :mod:`remedium.exceptions.service`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal, Right
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.exceptions import rules
from remedium.exceptions.effect import rescore, take_effect
from remedium.exceptions.models import (
    ACTIVE_STATUSES,
    IMPACTS,
    JUSTIFICATIONS,
    ExceptionDeviceGroup,
    RemediationException,
)
from remedium.exceptions.service import (
    DEFAULT_IMPACT,
    DURATIONS,
    ExceptionConflict,
    ExceptionInvalid,
    ExceptionNotAllowed,
    ExceptionNotFound,
    active_global,
    covered_groups,
    get_exception,
    log_change,
    refresh_status,
    require_right,
    target_of,
    threat_picture,
)
from remedium.intel.models import Vulnerability
from remedium.inventory.models import DeviceGroup
from remedium.recommendations.models import Recommendation
from remedium.settings import get_settings


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


def _checked_request(
    session: Session,
    *,
    recommendation_id: str | None,
    vulnerability_id: str | None,
    justification: str,
    impact: str | None,
    duration_days: int | None,
    expires_on: datetime | None,
    as_of: datetime,
) -> tuple[str, str, str, datetime]:
    """The target's type and id, the impact and the end date of a valid request, in that order."""
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
    return exception_type, target_id, impact, expiry


def _filed_groups(
    session: Session,
    principal: Principal,
    *,
    exception_type: str,
    target_id: str,
    is_global: bool,
    device_group_ids: Collection[int],
    all_groups: bool,
) -> list[int]:
    """The groups the new exception covers (none for a global one), once allowed and free."""
    if is_global:
        if not principal.has(Right.ADMIN):
            raise ExceptionNotAllowed("only administrators may file a global exception")
        if active_global(session, exception_type, target_id, statuses=ACTIVE_STATUSES):
            raise ExceptionConflict(f"this {exception_type} already has a global exception")
        return []
    return _chosen_groups(
        session,
        principal,
        exception_type=exception_type,
        target_id=target_id,
        device_group_ids=device_group_ids,
        all_groups=all_groups,
    )


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
    require_right(principal, Right.EXCEPTIONS)
    as_of = as_of or utcnow()
    exception_type, target_id, impact, expiry = _checked_request(
        session,
        recommendation_id=recommendation_id,
        vulnerability_id=vulnerability_id,
        justification=justification,
        impact=impact,
        duration_days=duration_days,
        expires_on=expires_on,
        as_of=as_of,
    )
    groups = _filed_groups(
        session,
        principal,
        exception_type=exception_type,
        target_id=target_id,
        is_global=is_global,
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
    _log_filing(session, exc, principal, groups, as_of=as_of)
    if not pending:
        _take_effect_now(session, exc, principal, as_of=as_of)
    return exc


def _log_filing(
    session: Session,
    exc: RemediationException,
    principal: Principal,
    groups: list[int],
    *,
    as_of: datetime,
) -> None:
    """The history and audit of a new exception, one per group (or one for a global one)."""
    log_change(
        session,
        exc,
        "file",
        actor=principal,
        as_of=as_of,
        groups=groups or [None],
        after="PendingApproval",
        detail={
            "justification": exc.justification,
            "impact": exc.impact,
            "scope": "global" if exc.is_global else "groups",
            "expires_on": exc.expires_on.isoformat(),
            "target": target_of(exc)[1],
        },
        reason=exc.context,
    )


def _take_effect_now(
    session: Session, exc: RemediationException, principal: Principal, *, as_of: datetime
) -> None:
    """Put a new exception that needs no approval in effect, and rescore what it covers."""
    take_effect(session, exc, actor=principal, as_of=as_of)
    if rescore(session, [exc], as_of=as_of):
        # The recompute may have refreshed stale derived figures (an intelligence change
        # not yet recomputed): the picture the exception accepts is the refreshed one.
        exception_type, target_id = target_of(exc)
        exc.snapshot = rules.snapshot_of(
            threat_picture(session, exception_type, target_id), as_of
        ).as_json()


def _decide(
    session: Session, principal: Principal, exception_id: int, as_of: datetime | None
) -> tuple[RemediationException, datetime]:
    require_right(principal, Right.EXCEPTIONS)
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
    log_change(
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
    take_effect(session, exc, actor=principal, as_of=as_of)
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
    refresh_status(exc, as_of)
    log_change(
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
