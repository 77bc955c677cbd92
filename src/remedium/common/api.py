"""Request parameters and errors shared by the native REST API's list and detail routes."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn, cast

from fastapi import HTTPException, Query, status
from fastapi import params as fastapi_params
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.api.deps import require
from remedium.auth.principal import Right, Scope
from remedium.common.paging import DEFAULT_LIMIT, MAX_LIMIT
from remedium.common.scoping import in_scope
from remedium.inventory.models import DeviceGroup

# Every read route needs the "view" right; routers list this in their dependencies.
VIEW_RIGHT = cast(fastapi_params.Depends, require(Right.VIEW))

LimitParam = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")
]
OffsetParam = Annotated[int, Query(ge=0, description="Rows to skip before the page.")]
DeviceGroupParam = Annotated[
    list[int] | None,
    Query(
        alias="device_group",
        description="Limit figures to these device group ids (repeat the parameter for several).",
    ),
]
DEFAULT_PAGE = DEFAULT_LIMIT


def invalid(parameter: str, message: str) -> NoReturn:
    """Answer 422 naming the query parameter, in the same shape as FastAPI's own errors."""
    raise HTTPException(
        422,
        detail=[{"loc": ["query", parameter], "msg": message, "type": "value_error"}],
    )


def not_found(kind: str, identifier: Any) -> NoReturn:
    """Answer 404 for an object that does not exist or is outside the caller's scope."""
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{kind} {identifier!s} not found")


def sort_param(value: str, allowed: tuple[str, ...]) -> tuple[str, bool]:
    """Parse ``field`` (ascending) or ``-field`` (descending) against a whitelist."""
    descending = value.startswith("-")
    field = value.removeprefix("-").removeprefix("+")
    if field not in allowed:
        invalid("sort", f"unknown sort field {field!r}; use one of: {', '.join(allowed)}")
    return field, descending


def narrowed_scope(session: Session, scope: Scope, device_groups: list[int] | None) -> Scope:
    """The caller's scope cut down to the ``device_group`` filter; unknown groups answer 422.

    A group outside the caller's scope gets the same answer as one that does not exist.
    """
    if not device_groups:
        return scope
    wanted = frozenset(device_groups)
    visible = set(
        session.execute(
            select(DeviceGroup.id).where(
                DeviceGroup.id.in_(sorted(wanted)), in_scope(DeviceGroup.id, scope)
            )
        ).scalars()
    )
    missing = sorted(wanted - visible)
    if missing:
        invalid("device_group", f"unknown device group {', '.join(map(str, missing))}")
    return scope.narrowed(wanted)
