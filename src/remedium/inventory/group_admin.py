"""Managing device groups: create, change, rank and delete them, and what a change does to the
devices (re-evaluated, their figures recomputed), to exceptions and activities scoped to a group,
and to the audit history. The rules themselves and where each device belongs are the core's
(``inventory/groups.py``); docs/device-groups.md has what renaming, re-ranking and deleting do.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.principal import Principal
from remedium.db.base import utcnow
from remedium.exceptions.models import ACTIVE_STATUSES, ExceptionDeviceGroup
from remedium.inventory.groups import (
    UNGROUPED,
    GroupError,
    evaluate,
    parse_rules,
    ranked_groups,
    release,
    ungrouped_id,
)
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.service import forget_group, recompute
from remedium.remediation.models import ActivityGroup, RemediationActivity


def place(session: Session, device_ids: Collection[int]) -> list[int]:
    """Put ``device_ids`` in the group the rules give and recompute those that moved; returns
    their ids (a device whose tags or name changed)."""
    moved = evaluate(session, device_ids)
    if moved:
        recompute(session, device_ids=moved)
    return moved


def _reevaluate(session: Session, released: Collection[int] = ()) -> int:
    """Evaluate every device; recompute those that moved (and ``released`` ones)."""
    moved = set(evaluate(session)) | set(released)
    if moved:
        recompute(session, device_ids=sorted(moved))
    return len(moved)


@dataclass(frozen=True, slots=True)
class GroupChange:
    """The outcome of a change: the group (None once deleted) and how many devices moved."""

    group: DeviceGroup | None
    moved: int


def _name(session: Session, name: str, *, current: DeviceGroup | None = None) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > 200:
        raise GroupError("A group name must hold 1 to 200 characters.")
    clash = session.scalar(select(DeviceGroup).where(func.lower(DeviceGroup.name) == clean.lower()))
    if clash is not None and clash is not current:
        raise GroupError(f"A group called '{clean}' exists already.", 409)
    return clean


def _snapshot(group: DeviceGroup) -> dict[str, Any]:
    return {"name": group.name, "rank": group.rank, "rules": list(group.rules or [])}


def _renumber(session: Session, ordered: list[DeviceGroup]) -> None:
    # Ranks are 1..n without gaps, in the given order.
    for index, group in enumerate(ordered, start=1):
        group.rank = index
    session.flush()


def create_group(
    session: Session,
    *,
    actor: Principal,
    name: str,
    description: str = "",
    rules: Sequence[Any] = (),
    rank: int | None = None,
) -> GroupChange:
    """Create a group; with rules it is ranked (last unless ``rank`` says where)."""
    ungrouped_id(session)
    parsed = parse_rules(rules)
    group = DeviceGroup(
        name=_name(session, name),
        description=description.strip()[:2000],
        rules=[r.as_dict() for r in parsed],
    )
    session.add(group)
    session.flush()
    if parsed:
        ordered = ranked_groups(session)
        position = len(ordered) if rank is None else max(0, min(rank - 1, len(ordered)))
        ordered.insert(position, group)
        _renumber(session, ordered)
    record(
        session,
        actor=actor,
        action="device_group.create",
        object_type="device_group",
        object_id=group.id,
        device_group_id=group.id,
        after=_snapshot(group),
    )
    moved = _reevaluate(session) if parsed else 0
    return GroupChange(group, moved)


def update_group(
    session: Session,
    group: DeviceGroup,
    *,
    actor: Principal,
    name: str | None = None,
    description: str | None = None,
    rules: Sequence[Any] | None = None,
    rank: int | None = None,
) -> GroupChange:
    """Rename, describe, change rules or move a group in the ranking; re-evaluates devices
    when the rules or ranks changed."""
    before = _snapshot(group)
    released: list[int] = []
    if group.name == UNGROUPED and (rules or rank is not None):
        raise GroupError("'Ungrouped devices' has no rules and is always last.")
    if name is not None:
        if group.name == UNGROUPED and name.strip() != UNGROUPED:
            raise GroupError("'Ungrouped devices' keeps its name.")
        group.name = _name(session, name, current=group)
    if description is not None:
        group.description = description.strip()[:2000]
    reevaluate = False
    if rules is not None:
        parsed = [r.as_dict() for r in parse_rules(rules)]
        if parsed != list(group.rules or []):
            group.rules = parsed
            reevaluate = True
        ordered = [g for g in ranked_groups(session) if g.id != group.id]
        if parsed and group.rank is None:
            ordered.append(group)
            group.rank = len(ordered)
        elif not parsed and group.rank is not None:
            group.rank = None
            reevaluate = True
            # Its devices came by its rules: they go back where imports put them before the
            # group turns into one whose members imports decide.
            released = release(session, group.id)
        if parsed:
            ordered = [g for g in ranked_groups(session) if g.id != group.id]
            ordered.insert(min((group.rank or len(ordered) + 1) - 1, len(ordered)), group)
        _renumber(session, ordered)
    if rank is not None:
        if group.rank is None:
            raise GroupError("Only a group with rules has a rank.")
        ordered = [g for g in ranked_groups(session) if g.id != group.id]
        ordered.insert(max(0, min(rank - 1, len(ordered))), group)
        if [g.id for g in ordered] != [g.id for g in ranked_groups(session)]:
            reevaluate = True
        _renumber(session, ordered)
    session.flush()
    after = _snapshot(group)
    if after != before:
        record(
            session,
            actor=actor,
            action="device_group.update",
            object_type="device_group",
            object_id=group.id,
            device_group_id=group.id,
            before=before,
            after=after,
        )
    moved = _reevaluate(session, released) if reevaluate else 0
    return GroupChange(group, moved)


@dataclass(frozen=True, slots=True)
class Holders:
    """What still depends on a group: exceptions in effect (or pending/suspended) and active
    remediation activities scoped to it."""

    exceptions: list[int]
    activities: list[str]

    @property
    def any(self) -> bool:
        """True when something holds the group."""
        return bool(self.exceptions or self.activities)


def holders(session: Session, group_id: int) -> Holders:
    """Exceptions and activities that keep ``group_id`` from being deleted."""
    exceptions = session.scalars(
        select(ExceptionDeviceGroup.exception_id)
        .where(
            ExceptionDeviceGroup.device_group_id == group_id,
            ExceptionDeviceGroup.status.in_(ACTIVE_STATUSES),
        )
        .order_by(ExceptionDeviceGroup.exception_id)
    ).all()
    activities = session.scalars(
        select(ActivityGroup.activity_id)
        .join(RemediationActivity, RemediationActivity.id == ActivityGroup.activity_id)
        .where(ActivityGroup.device_group_id == group_id, RemediationActivity.status == "Active")
        .order_by(ActivityGroup.activity_id)
    ).all()
    return Holders([int(e) for e in exceptions], [str(a) for a in activities])


def delete_group(session: Session, group: DeviceGroup, *, actor: Principal) -> GroupChange:
    """Delete a group: refused (409) for "Ungrouped devices" and while exceptions in effect or
    active remediation activities are scoped to it; its devices are re-evaluated."""
    if group.name == UNGROUPED:
        raise GroupError("'Ungrouped devices' cannot be deleted.", 409)
    held = holders(session, group.id)
    if held.any:
        parts = []
        if held.exceptions:
            parts.append("exceptions " + ", ".join(f"#{e}" for e in held.exceptions))
        if held.activities:
            parts.append("remediation activities " + ", ".join(held.activities))
        raise GroupError(
            f"The group '{group.name}' is still in scope of {' and '.join(parts)}: cancel or "
            "complete them (or remove this group from them) first.",
            409,
        )
    session.execute(
        update(Device)
        .where(Device.assigned_group_id == group.id)
        .values(assigned_group_id=None)
        .execution_options(synchronize_session=False)
    )
    before = _snapshot(group)
    group_id = group.id
    members = release(session, group_id)
    # Its rules stop applying before the others are evaluated; devices and the figures they
    # carry move first, then the group goes with its own per-group rows (score sums,
    # snapshots, user access).
    group.rank = None
    group.rules = []
    session.flush()
    moved = set(evaluate(session, members)) | set(members)
    if moved:
        recompute(session, device_ids=sorted(moved))
    remaining = [g for g in ranked_groups(session) if g.id != group_id]
    forget_group(session, group_id)
    session.execute(delete(DeviceGroup).where(DeviceGroup.id == group_id))
    session.expire_all()
    _renumber(session, remaining)
    record(
        session,
        actor=actor,
        action="device_group.delete",
        object_type="device_group",
        object_id=group_id,
        before=before,
        after={"devices_moved": len(members), "at": utcnow().isoformat()},
    )
    return GroupChange(None, len(moved))
