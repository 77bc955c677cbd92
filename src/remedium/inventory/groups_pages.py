"""Inventory administration pages.

``/settings/device-groups`` (admin): device groups in the order they are matched, with their
rules; create, edit (rename, rules), move up or down, delete. ``/devices/{id}/value`` and
``/devices/{id}/tags`` (inventory right): the device page's forms. docs/device-groups.md.
"""

from __future__ import annotations

from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, params
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Right
from remedium.inventory import group_admin, groups
from remedium.inventory.device_writes import DeviceWriteError, change_tag, set_device_value
from remedium.inventory.models import OS_PLATFORMS, Device, DeviceGroup
from remedium.web.templating import NavItem, PageContext, PageDep, register_navigation

ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
INVENTORY_RIGHT = cast(params.Depends, require(Right.INVENTORY))
router = APIRouter(include_in_schema=False)

register_navigation(
    NavItem(
        "device-groups",
        "Device groups",
        "/settings/device-groups",
        105,
        "device",
        Right.ADMIN,
        "admin",
    )
)

RULE_ROWS = 3  # empty rule rows offered by the forms, besides the group's own


async def _form_lists(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    found: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            found.setdefault(key, []).append(value)
    return found


FormLists = Annotated[dict[str, list[str]], Depends(_form_lists)]


def _one(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0]


def _rules_from(form: dict[str, list[str]]) -> list[dict[str, str]]:
    fields = form.get("rule_field", [])
    operators = form.get("rule_operator", [])
    values = form.get("rule_value", [])
    rules = []
    for index, field in enumerate(fields):
        value = values[index].strip() if index < len(values) else ""
        if not field or not value:
            continue  # an empty row
        operator = operators[index] if index < len(operators) else "equals"
        rules.append({"field": field, "operator": operator, "value": value})
    return rules


def _ordered(session: Session) -> list[tuple[DeviceGroup, int]]:
    counts = dict(
        session.execute(
            select(Device.device_group_id, func.count()).group_by(Device.device_group_id)
        )
        .tuples()
        .all()
    )
    rows = list(session.scalars(select(DeviceGroup)))

    def key(group: DeviceGroup) -> tuple[int, int, str]:
        if group.name == groups.UNGROUPED:
            return (2, 0, "")
        if group.rank is not None:
            return (0, group.rank, "")
        return (1, 0, group.name.lower())

    return [(g, int(counts.get(g.id, 0))) for g in sorted(rows, key=key)]


def _render(
    page: PageContext,
    session: Session,
    *,
    status_code: int = 200,
    error: str = "",
    editing: DeviceGroup | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    return page.render(
        "inventory/device_groups.html",
        {
            "title": "Device groups",
            "active": "device-groups",
            "rows": _ordered(session),
            "ranked": len(groups.ranked_groups(session)),
            "ungrouped": groups.UNGROUPED,
            "error": error,
            "notice": page.request.query_params.get("notice", "")[:300],
            "editing": editing,
            "form": form or {},
            "fields": groups.RULE_FIELDS,
            "field_labels": {
                "name": "Device name",
                "domain": "Domain",
                "os_platform": "OS platform",
                "tag": "Tag",
            },
            "operators": groups.OPERATORS,
            "platforms": OS_PLATFORMS,
            "rule_rows": RULE_ROWS,
        },
        status_code=status_code,
    )


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/settings/device-groups?notice={quote(notice)}", 303)


@router.get("/settings/device-groups", response_class=HTMLResponse, dependencies=[ADMIN_RIGHT])
def device_groups_page(page: PageDep, session: SessionDep) -> HTMLResponse:
    """Device groups in matching order, with a form to add one."""
    groups.ungrouped_id(session)
    return _render(page, session)


@router.get(
    "/settings/device-groups/{group_id}", response_class=HTMLResponse, dependencies=[ADMIN_RIGHT]
)
def edit_device_group_page(group_id: int, page: PageDep, session: SessionDep) -> HTMLResponse:
    """The page with one group's edit form open."""
    group = session.get(DeviceGroup, group_id)
    if group is None:
        raise HTTPException(404, "There is no such device group.")
    return _render(page, session, editing=group)


def _moved(count: int) -> str:
    return f"{count} device{'s' if count != 1 else ''} moved."


@router.post("/settings/device-groups", response_model=None, dependencies=[ADMIN_RIGHT])
def create_device_group(page: PageDep, session: SessionDep, form: FormLists) -> Response:
    """Create a group from the form."""
    assert page.principal is not None
    values = {"name": _one(form, "name"), "description": _one(form, "description")}
    try:
        change = group_admin.create_group(
            session,
            actor=page.principal,
            name=values["name"],
            description=values["description"],
            rules=_rules_from(form),
        )
    except groups.GroupError as error:
        session.rollback()
        return _render(page, session, status_code=422, error=str(error), form=values)
    assert change.group is not None
    return _done(f"Group '{change.group.name}' created. {_moved(change.moved)}")


@router.post("/settings/device-groups/{group_id}", response_model=None, dependencies=[ADMIN_RIGHT])
def update_device_group(
    group_id: int, page: PageDep, session: SessionDep, form: FormLists
) -> Response:
    """Save a group's name, description and rules."""
    assert page.principal is not None
    group = session.get(DeviceGroup, group_id)
    if group is None:
        raise HTTPException(404, "There is no such device group.")
    try:
        change = group_admin.update_group(
            session,
            group,
            actor=page.principal,
            name=_one(form, "name"),
            description=_one(form, "description"),
            rules=None if group.name == groups.UNGROUPED else _rules_from(form),
        )
    except groups.GroupError as error:
        session.rollback()
        group = session.get(DeviceGroup, group_id)
        return _render(page, session, status_code=422, error=str(error), editing=group)
    return _done(f"Group '{group.name}' saved. {_moved(change.moved)}")


@router.post(
    "/settings/device-groups/{group_id}/rank", response_model=None, dependencies=[ADMIN_RIGHT]
)
def rank_device_group(
    group_id: int, page: PageDep, session: SessionDep, form: FormLists
) -> Response:
    """Move a group up or down the matching order."""
    assert page.principal is not None
    group = session.get(DeviceGroup, group_id)
    if group is None:
        raise HTTPException(404, "There is no such device group.")
    try:
        rank = int(_one(form, "rank"))
    except ValueError:
        raise HTTPException(400, "rank must be a whole number") from None
    try:
        change = group_admin.update_group(
            session, group, actor=page.principal, rank=max(1, min(rank, 10_000))
        )
    except groups.GroupError as error:
        session.rollback()
        return _render(page, session, status_code=422, error=str(error))
    return _done(f"Group '{group.name}' is now rank {group.rank}. {_moved(change.moved)}")


@router.post(
    "/settings/device-groups/{group_id}/delete", response_model=None, dependencies=[ADMIN_RIGHT]
)
def delete_device_group(group_id: int, page: PageDep, session: SessionDep) -> Response:
    """Delete a group (refused while exceptions or activities are scoped to it)."""
    assert page.principal is not None
    group = session.get(DeviceGroup, group_id)
    if group is None:
        raise HTTPException(404, "There is no such device group.")
    name = group.name
    try:
        change = group_admin.delete_group(session, group, actor=page.principal)
    except groups.GroupError as error:
        session.rollback()
        return _render(page, session, status_code=409, error=str(error))
    return _done(f"Group '{name}' deleted. {_moved(change.moved)}")


# --- the device page's forms ---------------------------------------------------------------------


def _device(session: Session, page: PageContext, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if (
        device is None
        or not page.principal
        or not page.principal.scope.allows(device.device_group_id)
    ):
        raise HTTPException(404, "There is no such device in the device groups you can see.")
    return device


def _back(device_id: int, message: str) -> RedirectResponse:
    return RedirectResponse(f"/devices/{device_id}?notice={quote(message)}", 303)


@router.post("/devices/{device_id}/value", response_model=None, dependencies=[INVENTORY_RIGHT])
def device_value_form(
    device_id: int, page: PageDep, session: SessionDep, form: FormLists
) -> Response:
    """Set the device value from the device page."""
    assert page.principal is not None
    device = _device(session, page, device_id)
    try:
        changed = set_device_value(
            session, device, _one(form, "device_value"), actor=page.principal
        )
    except DeviceWriteError as error:
        raise HTTPException(400, str(error)) from None
    value = device.device_value
    return _back(device_id, f"Device value set to {value}." if changed else "Nothing changed.")


@router.post("/devices/{device_id}/tags", response_model=None, dependencies=[INVENTORY_RIGHT])
def device_tags_form(
    device_id: int, page: PageDep, session: SessionDep, form: FormLists
) -> Response:
    """Add or remove a tag from the device page."""
    assert page.principal is not None
    device = _device(session, page, device_id)
    action = _one(form, "action")
    tag = _one(form, "tag")
    try:
        changed = change_tag(session, device, tag, action, actor=page.principal)
    except DeviceWriteError as error:
        raise HTTPException(400, str(error)) from None
    verb = "added" if action == "Add" else "removed"
    return _back(device_id, f"Tag '{tag.strip()}' {verb}." if changed else "Nothing changed.")
