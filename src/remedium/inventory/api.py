"""``/api/v1/devices``, ``/api/v1/device-groups`` and ``/api/v1/software``: the inventory."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from remedium.api.deps import ScopeDep, SessionDep
from remedium.common.api import (
    DEFAULT_PAGE,
    VIEW_RIGHT,
    DeviceGroupParam,
    LimitParam,
    OffsetParam,
    narrowed_scope,
    not_found,
    sort_param,
)
from remedium.inventory import queries, software_queries
from remedium.inventory.schemas import (
    DeviceGroupView,
    DevicePage,
    DeviceRecommendationView,
    DeviceSoftwareView,
    DeviceView,
    DeviceWeaknessView,
    SoftwarePage,
    SoftwareVersionView,
    SoftwareView,
)

router = APIRouter(prefix="/api/v1", tags=["inventory"], dependencies=[VIEW_RIGHT])

SearchParam = Annotated[str | None, Query(max_length=200, description="Text to look for.")]


@router.get("/device-groups", response_model=list[DeviceGroupView])
def list_device_groups(session: SessionDep, scope: ScopeDep) -> list[DeviceGroupView]:
    """The device groups you can see, with device counts and exposure score."""
    return queries.list_device_groups(session, scope)


@router.get("/devices", response_model=DevicePage)
def list_devices(
    *,
    session: SessionDep,
    scope: ScopeDep,
    search: SearchParam = None,
    device_group: DeviceGroupParam = None,
    exposure_level: Literal["None", "Low", "Medium", "High"] | None = None,
    os_platform: Annotated[str | None, Query(max_length=40)] = None,
    device_value: Literal["Low", "Normal", "High"] | None = None,
    sort: Annotated[
        str, Query(description=f"One of {', '.join(queries.DEVICE_SORTS)}; '-' for descending.")
    ] = "-exposure_score",
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> DevicePage:
    """Devices in scope, filtered, sorted and paged."""
    field, descending = sort_param(sort, queries.DEVICE_SORTS)
    return queries.list_devices(
        session,
        narrowed_scope(session, scope, device_group),
        search=search,
        exposure_level=exposure_level,
        os_platform=os_platform,
        device_value=device_value,
        sort=field,
        descending=descending,
        offset=offset,
        limit=limit,
    )


@router.get("/devices/{device_id}", response_model=DeviceView)
def get_device(session: SessionDep, scope: ScopeDep, device_id: int) -> DeviceView:
    """One device."""
    device = queries.get_device(session, scope, device_id)
    if device is None:
        not_found("device", device_id)
    return device


@router.get("/devices/{device_id}/software", response_model=list[DeviceSoftwareView])
def device_software(
    session: SessionDep, scope: ScopeDep, device_id: int
) -> list[DeviceSoftwareView]:
    """The software installed on a device."""
    if queries.get_device(session, scope, device_id) is None:
        not_found("device", device_id)
    return queries.device_software(session, scope, device_id)


@router.get("/devices/{device_id}/weaknesses", response_model=list[DeviceWeaknessView])
def device_weaknesses(
    session: SessionDep, scope: ScopeDep, device_id: int, include_fixed: bool = False
) -> list[DeviceWeaknessView]:
    """The vulnerabilities on a device (``include_fixed`` adds the ones fixed since)."""
    if queries.get_device(session, scope, device_id) is None:
        not_found("device", device_id)
    return queries.device_weaknesses(session, scope, device_id, include_fixed=include_fixed)


@router.get("/devices/{device_id}/recommendations", response_model=list[DeviceRecommendationView])
def device_recommendations(
    session: SessionDep, scope: ScopeDep, device_id: int
) -> list[DeviceRecommendationView]:
    """The security recommendations that apply to a device."""
    if queries.get_device(session, scope, device_id) is None:
        not_found("device", device_id)
    return queries.device_recommendations(session, scope, device_id)


@router.get("/software", response_model=SoftwarePage)
def list_software(
    *,
    session: SessionDep,
    scope: ScopeDep,
    search: SearchParam = None,
    device_group: DeviceGroupParam = None,
    vulnerable: Annotated[bool, Query(description="Only products with weaknesses.")] = False,
    sort: Annotated[
        str,
        Query(
            description=f"One of {', '.join(software_queries.SOFTWARE_SORTS)}; '-' for descending."
        ),
    ] = "name",
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> SoftwarePage:
    """Software installed on devices in scope, with installed and exposed devices."""
    field, descending = sort_param(sort, software_queries.SOFTWARE_SORTS)
    return software_queries.list_software(
        session,
        narrowed_scope(session, scope, device_group),
        search=search,
        sort=field,
        descending=descending,
        vulnerable_only=vulnerable,
        offset=offset,
        limit=limit,
    )


@router.get("/software/{software_id}", response_model=SoftwareView)
def get_software(session: SessionDep, scope: ScopeDep, software_id: int) -> SoftwareView:
    """One product."""
    software = software_queries.get_software(session, scope, software_id)
    if software is None:
        not_found("software", software_id)
    return software


@router.get("/software/{software_id}/versions", response_model=list[SoftwareVersionView])
def software_versions(
    session: SessionDep, scope: ScopeDep, software_id: int
) -> list[SoftwareVersionView]:
    """The installed versions of a product, newest first."""
    if software_queries.get_software(session, scope, software_id) is None:
        not_found("software", software_id)
    return software_queries.software_versions(session, scope, software_id)
