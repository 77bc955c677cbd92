"""Device groups: membership rules and ranks, and which group each device is in (core layer).

A group with rules has a rank; a device belongs to the first ranked group whose rules all match
it, else to the group imports gave it (``device.assigned_group_id``), else to "Ungrouped
devices", which is always last. Re-evaluation is set-based (one UPDATE per group that gains
devices); it returns the devices that moved, and the caller recomputes what they carry. This
module imports only the core (the inventory's tables); creating, changing and deleting groups,
which touches exceptions, activities and the audit history, is ``inventory/group_admin.py``.
docs/device-groups.md has the rules.
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
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from remedium.inventory.models import OS_PLATFORMS, Device, DeviceGroup

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


def evaluate(session: Session, device_ids: Collection[int] | None = None) -> list[int]:
    """Put each device (all, or ``device_ids``) in the group the rules give; returns the ids
    of the devices that moved (the caller recomputes what they carry)."""
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
    return moved


def release(session: Session, group_id: int) -> list[int]:
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
