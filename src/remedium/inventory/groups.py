"""Device groups managed in remedium: membership rules, ranks, and what a change does.

A group with rules has a rank; a device belongs to the first ranked group whose rules all match
it, else to the group imports gave it (``device.assigned_group_id``), else to "Ungrouped
devices", which is always last. Re-evaluation is set-based (one UPDATE per group that gains
devices); the devices that moved are recomputed incrementally. docs/device-groups.md has the
rules, and what renaming, re-ranking and deleting do to exceptions and activities.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from remedium.audit.service import record
from remedium.auth.principal import Principal
from remedium.db.base import utcnow
from remedium.exceptions.models import ACTIVE_STATUSES, ExceptionDeviceGroup
from remedium.inventory.models import OS_PLATFORMS, Device, DeviceGroup
from remedium.remediation.models import ActivityGroup, RemediationActivity

UNGROUPED = "Ungrouped devices"
RULE_FIELDS = ("name", "domain", "os_platform", "tag")
OPERATORS = ("equals", "startsWith", "endsWith", "contains")
MAX_RULES = 20
MAX_VALUE = 200
# Above this many devices, evaluating every device costs less than naming them all.
_RESTRICT_UP_TO = 5000


class GroupError(ValueError):
    """A change that cannot be made; ``status`` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Rule:
    """One condition: ``field`` (name, domain, os_platform, tag) ``operator`` ``value``.

    All rules of a group must match (AND), as the conditions of Microsoft's device groups.
    Text compares without case; ``os_platform`` only takes ``equals``.
    """

    field: str
    operator: str
    value: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form stored in ``device_group.rules``."""
        return {"field": self.field, "operator": self.operator, "value": self.value}


def parse_rules(raw: Sequence[Any]) -> list[Rule]:
    """Validate rules given as dicts (API or form); raises :class:`GroupError`."""
    if len(raw) > MAX_RULES:
        raise GroupError(f"A group has at most {MAX_RULES} rules.")
    rules: list[Rule] = []
    for item in raw:
        if not isinstance(item, dict):
            raise GroupError("Each rule is an object with field, operator and value.")
        field = str(item.get("field", "")).strip()
        operator = str(item.get("operator", "equals")).strip() or "equals"
        value = str(item.get("value", "")).strip()
        if field not in RULE_FIELDS:
            raise GroupError(f"Unknown rule field '{field}': use one of {', '.join(RULE_FIELDS)}.")
        if operator not in OPERATORS:
            raise GroupError(f"Unknown operator '{operator}': use one of {', '.join(OPERATORS)}.")
        if not value or len(value) > MAX_VALUE:
            raise GroupError(f"A rule's value must hold 1 to {MAX_VALUE} characters.")
        if field == "os_platform":
            if operator != "equals":
                raise GroupError("An OS platform rule only takes 'equals'.")
            if value not in OS_PLATFORMS:
                raise GroupError(f"Unknown OS platform '{value}'.")
        rules.append(Rule(field, operator, value))
    return rules


# --- matching, in Python and in SQL (tests check both agree) ---------------------------------


def domain_of(name: str) -> str:
    """The DNS domain of a device name: what follows its first dot ("" for a short name)."""
    _, dot, rest = name.partition(".")
    return rest if dot else ""


def _text_matches(text: str, operator: str, value: str) -> bool:
    text, value = text.lower(), value.lower()
    if operator == "equals":
        return text == value
    if operator == "startsWith":
        return text.startswith(value)
    if operator == "endsWith":
        return text.endswith(value)
    return value in text


def rule_matches(rule: Rule, *, name: str, os_platform: str, tags: Sequence[str]) -> bool:
    """True when a device with these facts satisfies ``rule``."""
    if rule.field == "name":
        return _text_matches(name, rule.operator, rule.value)
    if rule.field == "domain":
        return _text_matches(domain_of(name), rule.operator, rule.value)
    if rule.field == "os_platform":
        return os_platform == rule.value
    return any(_text_matches(str(tag), rule.operator, rule.value) for tag in tags)


def matches(rules: Sequence[Rule], *, name: str, os_platform: str, tags: Sequence[str]) -> bool:
    """True when every rule matches (a group without rules matches nothing by rule)."""
    return bool(rules) and all(
        rule_matches(r, name=name, os_platform=os_platform, tags=tags) for r in rules
    )


class _DomainOf(FunctionElement[str]):
    """SQL for :func:`domain_of` (``instr`` on SQLite, ``strpos`` on PostgreSQL)."""

    type = String()
    inherit_cache = True


@compiles(_DomainOf, "sqlite")
def _domain_sqlite(element: _DomainOf, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(next(iter(element.clauses)), **kw)
    return (
        f"(CASE WHEN instr({arg}, '.') > 0 THEN substr({arg}, instr({arg}, '.') + 1) ELSE '' END)"
    )


@compiles(_DomainOf, "postgresql")
def _domain_postgresql(element: _DomainOf, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(next(iter(element.clauses)), **kw)
    return (
        f"(CASE WHEN strpos({arg}, '.') > 0 THEN substr({arg}, strpos({arg}, '.') + 1) ELSE '' END)"
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_condition(column: Any, operator: str, value: str) -> ColumnElement[bool]:
    lowered = func.lower(column)
    value = value.lower()
    if operator == "equals":
        return lowered == value
    pattern = {"startsWith": "{}%", "endsWith": "%{}", "contains": "%{}%"}[operator]
    return lowered.like(pattern.format(_escape(value)), escape="\\")


def tag_condition(operator: str, value: str) -> ColumnElement[bool]:
    # Tags are a JSON list of strings; its text holds each tag JSON-encoded ("tag"), so the
    # quotes anchor the start and end of one tag (portable across both databases).
    text = func.lower(cast(Device.tags, String))
    encoded = json.dumps(value.lower())[1:-1]
    pattern = {
        "equals": '%"{}"%',
        "startsWith": '%"{}%',
        "endsWith": '%{}"%',
        "contains": "%{}%",
    }[operator]
    return text.like(pattern.format(_escape(encoded)), escape="\\")


def rule_condition(rule: Rule) -> ColumnElement[bool]:
    """SQL over ``device`` that is true where ``rule`` matches."""
    if rule.field == "name":
        return _text_condition(Device.name, rule.operator, rule.value)
    if rule.field == "domain":
        return _text_condition(_DomainOf(Device.name), rule.operator, rule.value)
    if rule.field == "os_platform":
        return Device.os_platform == rule.value
    return tag_condition(rule.operator, rule.value)


def rules_of(group: DeviceGroup) -> list[Rule]:
    """The stored rules of ``group`` (already validated when saved)."""
    return [Rule(r["field"], r["operator"], r["value"]) for r in (group.rules or [])]


# --- evaluation -------------------------------------------------------------------------------


def ungrouped_id(session: Session) -> int:
    """The id of "Ungrouped devices", created on first use."""
    found = session.scalar(select(DeviceGroup.id).where(DeviceGroup.name == UNGROUPED))
    if found is not None:
        return int(found)
    group = DeviceGroup(name=UNGROUPED, description="Devices no other group takes.", rules=[])
    session.add(group)
    session.flush()
    return group.id


def ranked_groups(session: Session) -> list[DeviceGroup]:
    """Groups with rules, by rank."""
    return list(
        session.scalars(
            select(DeviceGroup).where(DeviceGroup.rank.is_not(None)).order_by(DeviceGroup.rank)
        )
    )


def target_group(session: Session) -> ColumnElement[int]:
    """SQL for the group each device belongs in, from the ranked rules."""
    fallback = func.coalesce(Device.assigned_group_id, ungrouped_id(session))
    whens = [
        (and_(*(rule_condition(r) for r in rules_of(g))), literal(g.id))
        for g in ranked_groups(session)
        if g.rules
    ]
    if not whens:
        return fallback
    return case(*whens, else_=fallback)


def evaluate(
    session: Session, device_ids: Collection[int] | None = None, *, recompute: bool = True
) -> list[int]:
    """Put each device (all, or ``device_ids``) in the group the rules give; returns the ids
    of the devices that moved (recomputed incrementally when ``recompute``)."""
    session.flush()
    if device_ids is not None and not device_ids:
        return []
    ranked = select(DeviceGroup.id).where(DeviceGroup.rank.is_not(None)).limit(1)
    if device_ids is not None and session.scalar(ranked) is None:
        # No rules anywhere: imports decide alone (a group's first rule re-evaluates everyone).
        return []
    restrict: Any = None
    if device_ids is not None and len(device_ids) <= _RESTRICT_UP_TO:
        restrict = Device.id.in_(sorted(device_ids))
    # What imports gave a device is kept while it sits in a group without rules.
    unranked = select(DeviceGroup.id).where(DeviceGroup.rank.is_(None))
    keep = update(Device).where(
        Device.device_group_id.in_(unranked),
        or_(Device.assigned_group_id.is_(None), Device.assigned_group_id != Device.device_group_id),
    )
    if restrict is not None:
        keep = keep.where(restrict)
    session.execute(
        keep.values(assigned_group_id=Device.device_group_id),
        execution_options={"synchronize_session": False},
    )
    target = target_group(session)
    moving = select(Device.id, target.label("target")).where(Device.device_group_id != target)
    if restrict is not None:
        moving = moving.where(restrict)
    moves = session.execute(moving).all()
    by_target: dict[int, list[int]] = {}
    for device_id, group_id in moves:
        by_target.setdefault(int(group_id), []).append(int(device_id))
    for group_id, ids in by_target.items():
        for start in range(0, len(ids), 5000):
            session.execute(
                update(Device)
                .where(Device.id.in_(ids[start : start + 5000]))
                .values(device_group_id=group_id),
                execution_options={"synchronize_session": False},
            )
    moved = sorted(device_id for ids in by_target.values() for device_id in ids)
    session.expire_all()
    if moved and recompute:
        from remedium.recommendations.service import recompute as recompute_derived

        recompute_derived(session, device_ids=moved)
    return moved


def _release(session: Session, group_id: int) -> list[int]:
    """Send the devices of ``group_id`` to the group imports gave them (or Ungrouped);
    returns their ids."""
    members = list(session.scalars(select(Device.id).where(Device.device_group_id == group_id)))
    fallback = ungrouped_id(session)
    session.execute(
        update(Device)
        .where(Device.device_group_id == group_id)
        .values(device_group_id=func.coalesce(Device.assigned_group_id, fallback))
        .execution_options(synchronize_session=False)
    )
    return [int(m) for m in members]


def _reevaluate(session: Session, released: Collection[int] = ()) -> int:
    """Evaluate every device; recompute those that moved (and ``released`` ones)."""
    moved = set(evaluate(session, recompute=False)) | set(released)
    if moved:
        from remedium.recommendations.service import recompute as recompute_derived

        recompute_derived(session, device_ids=sorted(moved))
    return len(moved)


# --- administration -----------------------------------------------------------------------------


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
            released = _release(session, group.id)
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
    members = _release(session, group_id)
    # Its rules stop applying before the others are evaluated; devices and the figures they
    # carry move first, then the group goes with its own per-group rows (score sums,
    # snapshots, user access).
    group.rank = None
    group.rules = []
    session.flush()
    moved = set(evaluate(session, members, recompute=False)) | set(members)
    if moved:
        from remedium.recommendations.service import recompute as recompute_derived

        recompute_derived(session, device_ids=sorted(moved))
    remaining = [g for g in ranked_groups(session) if g.id != group_id]
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
