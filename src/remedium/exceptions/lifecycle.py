"""The end of an exception: canceling, expiring and resurfacing, and the periodic job.

:func:`run_exception_jobs` expires, then resurfaces (``rules.py``), then flags what expires soon;
the job runner and every import call it (docs/exceptions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, selectinload

from remedium.auth.principal import Principal, Right, Scope
from remedium.db.base import utcnow
from remedium.exceptions import rules
from remedium.exceptions.effect import rescore, resume_groups
from remedium.exceptions.models import ACTIVE_STATUSES, RemediationException
from remedium.exceptions.service import (
    ExceptionConflict,
    ExceptionInvalid,
    ExceptionNotAllowed,
    ExceptionNotFound,
    expiring_soon,
    get_exception,
    load_exception,
    log_change,
    refresh_status,
    require_right,
    target_of,
    threat_picture,
)
from remedium.settings import get_settings


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
    require_right(principal, Right.EXCEPTIONS)
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
        refresh_status(exc, as_of)
        log_change(
            session,
            exc,
            "cancel",
            actor=principal,
            as_of=as_of,
            before=before,
            after="Canceled",
            reason=reason,
        )
        exception_type, target_id = target_of(exc)
        resume_groups(session, exception_type, target_id, as_of=as_of)
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
    refresh_status(exc, as_of)
    log_change(
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
            ended_globals.add(target_of(exc))
        else:
            rows = [g for g in exc.groups if g.status in ACTIVE_STATUSES]
            for row in rows:
                row.status = "Expired"
                row.changed_at = as_of
            groups = [r.device_group_id for r in rows]
        refresh_status(exc, as_of)
        log_change(
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
        released = resume_groups(session, exception_type, target_id, as_of=as_of)
        if resumed is not None:
            resumed.extend(released)
    ended = [e for e in (load_exception(session, i) for i in expired) if e is not None]
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
        exception_type, target_id = target_of(exc)
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
        refresh_status(exc, as_of)
        log_change(
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
        released = resume_groups(session, exception_type, target_id, as_of=as_of)
        if resumed is not None:
            resumed.extend(released)
    voided = [e for e in (load_exception(session, i) for i in resurfaced) if e is not None]
    rescore(session, voided, as_of=as_of)
    return resurfaced


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
            log_change(
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
        # Lazy: the notifier loads the connectors and their HTTP client (~65 ms), which every
        # import would otherwise pay at start-up for the rare run that flags an exception.
        from remedium.exceptions.notify import enqueue_expiring  # noqa: PLC0415

        enqueue_expiring(session, flagged, as_of=as_of)
    session.flush()
    return result
