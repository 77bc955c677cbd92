"""The write side of the Defender-compatible API that belongs to inventory administration:
``POST /api/machines/{id}/setDeviceValue`` and ``POST /api/machines/{id}/tags``.

Both need the ``inventory`` right (or admin), are audited, and answer the machine as Microsoft
does; the device's scores are recomputed at once (docs/defender-api.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from fastapi import APIRouter, Request, params
from pydantic import BaseModel, ConfigDict, Field

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep, require
from remedium.auth.principal import Right
from remedium.db.base import utcnow
from remedium.defender import service
from remedium.defender.api import ODataRoute, ResourceNotFoundError, _entity
from remedium.defender.odata import ODataError
from remedium.defender.relations import _device
from remedium.inventory.device_writes import DeviceWriteError, change_tag, set_device_value

router = APIRouter(
    prefix="/api",
    tags=["Defender-compatible API"],
    route_class=ODataRoute,
    dependencies=[cast(params.Depends, require(Right.INVENTORY))],
)


class DeviceValueBody(BaseModel):
    """``{"DeviceValue": "High"}`` (Low, Normal or High)."""

    model_config = ConfigDict(populate_by_name=True)
    device_value: str = Field(alias="DeviceValue", max_length=20)


class TagBody(BaseModel):
    """``{"Value": "tag", "Action": "Add"}`` (or "Remove")."""

    model_config = ConfigDict(populate_by_name=True)
    value: str = Field(alias="Value", max_length=200)
    action: str = Field(alias="Action", max_length=20)


def _post(*paths: str) -> Callable[[Any], Any]:
    def register(handler: Any) -> Any:
        for index, path in enumerate(paths):
            router.add_api_route(path, handler, methods=["POST"], include_in_schema=index == 0)
        return handler

    return register


def _machine(request: Request, session: SessionDep, scope: ScopeDep, machine_id: str) -> Any:
    session.flush()
    item = service.get_machine(session, scope, machine_id, now=utcnow())
    if item is None:
        raise ResourceNotFoundError(f"Machine {machine_id} was not found")
    return _entity(request, "Machines", item)


@_post("/machines/{machine_id}/setDeviceValue", "/Machines/{machine_id}/setDeviceValue")
def set_value(
    request: Request,
    body: DeviceValueBody,
    *,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    machine_id: str,
) -> Any:
    """Set a machine's value (Low, Normal, High); its exposure figures follow at once."""
    device = _device(session, scope, machine_id)
    try:
        set_device_value(session, device, body.device_value, actor=principal)
    except DeviceWriteError as error:
        raise ODataError(str(error), "InvalidRequestBody") from None
    return _machine(request, session, scope, device.machine_id)


@_post("/machines/{machine_id}/tags", "/Machines/{machine_id}/tags")
def machine_tags(
    request: Request,
    body: TagBody,
    *,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    machine_id: str,
) -> Any:
    """Add or remove one tag of a machine; device-group rules on tags apply at once."""
    device = _device(session, scope, machine_id)
    try:
        change_tag(session, device, body.value, body.action, actor=principal)
    except DeviceWriteError as error:
        raise ODataError(str(error), "InvalidRequestBody") from None
    # The device may have moved to a group outside the caller's scope: then it is gone for them.
    item = service.get_machine(session, scope, device.machine_id, now=utcnow())
    if item is None:
        raise ResourceNotFoundError(f"Machine {machine_id} is no longer in your device groups")
    return _entity(request, "Machines", item)
