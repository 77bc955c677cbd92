"""Putting exceptions in and out of effect, and rescoring what that changes.

A group exception is held (``Suspended``) while a global exception on the same recommendation or
CVE is in effect, and resumes when the global one ends before its own expiry (docs/exceptions.md).
:func:`rescore` recomputes the devices whose after-exceptions scores follow from a change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal
from remedium.exceptions.models import ExceptionDeviceGroup, RemediationException
from remedium.exceptions.service import (
    active_global,
    load_exception,
    log_change,
    refresh_status,
    same_target,
    target_of,
)
from remedium.inventory.models import Device, Weakness
from remedium.recommendations.models import DeviceRecommendation
from remedium.recommendations.service import recompute


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
        target = target_of(exc)
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


def take_effect(
    session: Session, exc: RemediationException, *, actor: Principal | None, as_of: datetime
) -> None:
    """Put an approved (or unapproved-by-policy) exception in effect, applying suspension."""
    exception_type, target_id = target_of(exc)
    if exc.is_global:
        exc.status = "InEffect"
        log_change(session, exc, "in_effect", actor=actor, as_of=as_of, after="InEffect")
        _suspend_groups(session, exc, actor=actor, as_of=as_of)
        return
    held_by = active_global(session, exception_type, target_id, statuses=("InEffect",))
    status = "Suspended" if held_by is not None else "InEffect"
    for group in exc.groups:
        if group.status == "PendingApproval":
            group.status = status
            group.changed_at = as_of
    refresh_status(exc, as_of)
    detail = {"held_by_exception": held_by.id} if held_by is not None else None
    log_change(
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
    exception_type, target_id = target_of(global_exc)
    rows = session.scalars(
        select(ExceptionDeviceGroup)
        .join(RemediationException)
        .where(same_target(exception_type, target_id), ExceptionDeviceGroup.status == "InEffect")
    ).all()
    touched: dict[int, list[int]] = {}
    for row in rows:
        row.status = "Suspended"
        row.changed_at = as_of
        touched.setdefault(row.exception_id, []).append(row.device_group_id)
    for exception_id, group_ids in touched.items():
        exc = load_exception(session, exception_id)
        assert exc is not None
        refresh_status(exc, as_of)
        log_change(
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


def resume_groups(
    session: Session, exception_type: str, target_id: str, *, as_of: datetime
) -> list[int]:
    """Release group exceptions held by a global one that ended; expired ones expire instead."""
    if active_global(session, exception_type, target_id, statuses=("InEffect",)) is not None:
        return []
    rows = session.scalars(
        select(ExceptionDeviceGroup)
        .join(RemediationException)
        .where(same_target(exception_type, target_id), ExceptionDeviceGroup.status == "Suspended")
    ).all()
    by_exception: dict[int, list[ExceptionDeviceGroup]] = {}
    for row in rows:
        by_exception.setdefault(row.exception_id, []).append(row)
    resumed = []
    for exception_id, group_rows in by_exception.items():
        exc = load_exception(session, exception_id)
        assert exc is not None
        still_valid = exc.expires_on > as_of
        status = "InEffect" if still_valid else "Expired"
        for row in group_rows:
            row.status = status
            row.changed_at = as_of
        refresh_status(exc, as_of)
        log_change(
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
