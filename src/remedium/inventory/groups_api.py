"""``/api/v1/device-groups``: managing device groups and their membership rules (admin).

Reading the list stays in ``inventory/api.py`` (view right, scoped); this module adds one group
by id (scoped) and the changes, which need the admin right. docs/device-groups.md.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, HTTPException, params
from pydantic import BaseModel, ConfigDict, Field

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep, require
from remedium.auth.principal import Right
from remedium.common.api import not_found
from remedium.inventory import group_admin, groups, queries
from remedium.inventory.models import DeviceGroup
from remedium.inventory.queries import DeviceGroupView

ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
router = APIRouter(prefix="/api/v1", tags=["inventory"])


class RuleIn(BaseModel):
    """One membership rule: ``field`` (name, domain, os_platform, tag), ``operator`` (equals,
    startsWith, endsWith, contains) and ``value``."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(max_length=20)
    operator: str = Field(default="equals", max_length=20)
    value: str = Field(max_length=groups.MAX_VALUE)


class GroupCreate(BaseModel):
    """A new device group. With rules it is ranked (last unless ``rank`` says where)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rules: list[RuleIn] = Field(default_factory=list, max_length=groups.MAX_RULES)
    rank: int | None = Field(default=None, ge=1, le=10_000)


class GroupUpdate(BaseModel):
    """Changes to a group; fields left out stay as they are. ``rules: []`` removes the rules
    (and the rank)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    rules: list[RuleIn] | None = Field(default=None, max_length=groups.MAX_RULES)
    rank: int | None = Field(default=None, ge=1, le=10_000)


class GroupChangeOut(BaseModel):
    """The group after a change (None once deleted) and how many devices moved."""

    group: DeviceGroupView | None
    devices_moved: int


def _view(session: SessionDep, scope: ScopeDep, group_id: int) -> DeviceGroupView:
    for view in queries.list_device_groups(session, scope):
        if view.id == group_id:
            return view
    not_found("device group", group_id)


def _group(session: SessionDep, group_id: int) -> DeviceGroup:
    group = session.get(DeviceGroup, group_id)
    if group is None:
        not_found("device group", group_id)
    return group


def _rules(rules: list[RuleIn] | None) -> list[dict[str, Any]] | None:
    return None if rules is None else [r.model_dump() for r in rules]


def _fail(error: groups.GroupError) -> HTTPException:
    return HTTPException(error.status, str(error))


@router.get("/device-groups/{group_id}", response_model=DeviceGroupView)
def get_device_group(session: SessionDep, scope: ScopeDep, group_id: int) -> DeviceGroupView:
    """One device group you can see, with its rules and rank."""
    return _view(session, scope, group_id)


@router.post(
    "/device-groups",
    response_model=GroupChangeOut,
    status_code=201,
    dependencies=[ADMIN_RIGHT],
)
def create_device_group(
    body: GroupCreate, session: SessionDep, scope: ScopeDep, principal: PrincipalDep
) -> GroupChangeOut:
    """Create a device group; devices are re-evaluated against the rules at once."""
    try:
        change = group_admin.create_group(
            session,
            actor=principal,
            name=body.name,
            description=body.description,
            rules=_rules(body.rules) or [],
            rank=body.rank,
        )
    except groups.GroupError as error:
        raise _fail(error) from None
    assert change.group is not None
    return GroupChangeOut(group=_view(session, scope, change.group.id), devices_moved=change.moved)


@router.patch(
    "/device-groups/{group_id}", response_model=GroupChangeOut, dependencies=[ADMIN_RIGHT]
)
def update_device_group(
    group_id: int,
    body: GroupUpdate,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> GroupChangeOut:
    """Rename, describe, change the rules of, or re-rank a group; devices follow at once."""
    group = _group(session, group_id)
    try:
        change = group_admin.update_group(
            session,
            group,
            actor=principal,
            name=body.name,
            description=body.description,
            rules=_rules(body.rules),
            rank=body.rank,
        )
    except groups.GroupError as error:
        raise _fail(error) from None
    return GroupChangeOut(group=_view(session, scope, group_id), devices_moved=change.moved)


@router.delete(
    "/device-groups/{group_id}", response_model=GroupChangeOut, dependencies=[ADMIN_RIGHT]
)
def delete_device_group(
    group_id: int, session: SessionDep, principal: PrincipalDep
) -> GroupChangeOut:
    """Delete a group (409 while exceptions in effect or active remediation activities are
    scoped to it, and for "Ungrouped devices"); its devices are re-evaluated."""
    group = _group(session, group_id)
    try:
        change = group_admin.delete_group(session, group, actor=principal)
    except groups.GroupError as error:
        raise _fail(error) from None
    return GroupChangeOut(group=None, devices_moved=change.moved)
