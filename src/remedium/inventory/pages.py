"""Web pages of the inventory: devices and software, as lists and one by one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, StreamingResponse

from remedium.api.deps import SessionDep
from remedium.auth.principal import Scope
from remedium.common.paging import Page
from remedium.inventory.models import DEVICE_VALUES, OS_PLATFORMS
from remedium.inventory.queries import (
    DEVICE_SORTS,
    EXPOSURE_LEVELS,
    DeviceView,
    device_recommendations,
    device_software,
    device_weaknesses,
    get_device,
    list_devices,
)
from remedium.inventory.software_queries import (
    SOFTWARE_SORTS,
    get_software,
    list_software,
    software_versions,
)
from remedium.recommendations.queries import get_recommendation
from remedium.web.export import csv_response, export_url, fields_of
from remedium.web.listing import ListState, clean, list_state
from remedium.web.templating import PageDep

router = APIRouter(include_in_schema=False)

DEVICE_TABS = ("recommendations", "weaknesses", "software")


def _device_filters(
    q: str | None, exposure_level: str | None, os_platform: str | None, device_value: str | None
) -> dict[str, str | None]:
    return {
        "q": clean(q),
        "exposure_level": exposure_level if exposure_level in EXPOSURE_LEVELS else None,
        "os_platform": os_platform if os_platform in OS_PLATFORMS else None,
        "device_value": device_value if device_value in DEVICE_VALUES else None,
    }


def _devices(  # noqa: PLR0917 - the list's inputs, in the order the page reads them
    session: Session,
    scope: Scope,
    filters: dict[str, str | None],
    state: ListState,
    offset: int,
    limit: int,
) -> Page[DeviceView]:
    return list_devices(
        session,
        scope,
        search=filters["q"],
        exposure_level=filters["exposure_level"],
        os_platform=filters["os_platform"],
        device_value=filters["device_value"],
        sort=state.sort,
        descending=state.descending,
        offset=offset,
        limit=limit,
    )


DEVICE_FIELDS = (
    "id", "machine_id", "name", "device_group_name", "os_platform", "os_version",
    "ip_address", "device_value", "exposure_level", "exposure_score", "secure_score",
    "weaknesses", "internet_facing", "is_intune_managed", "is_aad_joined", "tags",
    "first_seen", "last_seen", "is_active",
)  # fmt: skip


@router.get("/devices/export.csv", response_class=StreamingResponse)
def devices_export(
    page: PageDep,
    *,
    q: str | None = None,
    exposure_level: str | None = None,
    os_platform: str | None = None,
    device_value: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
) -> StreamingResponse:
    """The device list as the page shows it (filters, sort, device groups), as CSV."""
    state = list_state(sort, dir, None, allowed=DEVICE_SORTS, default_sort="exposure_score")
    filters = _device_filters(q, exposure_level, os_platform, device_value)
    scope = page.scope

    def fetch(session: Session, offset: int, limit: int) -> list[list[Any]]:
        result = _devices(session, scope, filters, state, offset, limit)
        return [fields_of(item, DEVICE_FIELDS) for item in result.items]

    return csv_response(page.request, "devices", DEVICE_FIELDS, fetch)


@router.get("/devices", response_class=HTMLResponse)
def devices_list(
    page: PageDep,
    session: SessionDep,
    *,
    q: str | None = None,
    exposure_level: str | None = None,
    os_platform: str | None = None,
    device_value: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """Devices in scope, filtered, sorted and paged."""
    state = list_state(sort, dir, p, allowed=DEVICE_SORTS, default_sort="exposure_score")
    filters = _device_filters(q, exposure_level, os_platform, device_value)
    result = _devices(session, page.scope, filters, state, state.offset, state.limit)
    return page.render(
        "devices/list.html",
        {
            "title": "Devices",
            "active": "devices",
            "result": result,
            "state": state,
            "filters": filters,
            "levels": list(reversed(EXPOSURE_LEVELS)),
            "platforms": OS_PLATFORMS,
            "values": DEVICE_VALUES,
            "export_url": export_url("/devices/export.csv", page.request.url.query),
        },
    )


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_detail(
    device_id: int, page: PageDep, session: SessionDep, *, tab: str | None = None
) -> HTMLResponse:
    """One device: its facts, recommendations, weaknesses and installed software."""
    device = get_device(session, page.scope, device_id)
    if device is None:
        raise HTTPException(404, "There is no such device in the device groups you can see.")
    current = tab if tab in DEVICE_TABS else "recommendations"
    recommendations = device_recommendations(session, page.scope, device_id)
    context: dict[str, object] = {
        "title": device.name,
        "active": "devices",
        "device": device,
        "tab": current,
        "recommendations": recommendations,
    }
    if current == "weaknesses":
        context["weaknesses"] = device_weaknesses(session, page.scope, device_id)
    elif current == "software":
        context["software"] = device_software(session, page.scope, device_id)
    return page.render("devices/detail.html", context)


SOFTWARE_FIELDS = (
    "id", "name", "vendor", "product_key", "is_operating_system", "installed_devices",
    "exposed_devices", "weaknesses", "exposure_impact", "public_exploit", "active_alert",
    "end_of_support_on", "recommendation_id",
)  # fmt: skip


@router.get("/software/export.csv", response_class=StreamingResponse)
def software_export(
    page: PageDep,
    *,
    q: str | None = None,
    vulnerable: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
) -> StreamingResponse:
    """The software list as the page shows it (filters, sort, device groups), as CSV."""
    state = list_state(sort, dir, None, allowed=SOFTWARE_SORTS, default_sort="exposed_devices")
    search, only_vulnerable, scope = clean(q), vulnerable == "1", page.scope

    def fetch(session: Session, offset: int, limit: int) -> list[list[Any]]:
        result = list_software(
            session,
            scope,
            search=search,
            vulnerable_only=only_vulnerable,
            sort=state.sort,
            descending=state.descending,
            offset=offset,
            limit=limit,
        )
        return [fields_of(item, SOFTWARE_FIELDS) for item in result.items]

    return csv_response(page.request, "software-inventory", SOFTWARE_FIELDS, fetch)


@router.get("/software", response_class=HTMLResponse)
def software_list(
    page: PageDep,
    session: SessionDep,
    *,
    q: str | None = None,
    vulnerable: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """Software installed in scope, filtered, sorted and paged."""
    state = list_state(sort, dir, p, allowed=SOFTWARE_SORTS, default_sort="exposed_devices")
    search = clean(q)
    only_vulnerable = vulnerable == "1"
    filters = {"q": search, "vulnerable": only_vulnerable}
    result = list_software(
        session,
        page.scope,
        search=search,
        vulnerable_only=only_vulnerable,
        sort=state.sort,
        descending=state.descending,
        offset=state.offset,
        limit=state.limit,
    )
    return page.render(
        "software/list.html",
        {
            "title": "Software inventory",
            "active": "software",
            "result": result,
            "state": state,
            "filters": filters,
            "export_url": export_url("/software/export.csv", page.request.url.query),
        },
    )


@router.get("/software/{software_id}", response_class=HTMLResponse)
def software_detail(software_id: int, page: PageDep, session: SessionDep) -> HTMLResponse:
    """One product: its versions in scope and its security recommendation."""
    software = get_software(session, page.scope, software_id)
    if software is None:
        raise HTTPException(404, "There is no such software in the device groups you can see.")
    recommendation = (
        get_recommendation(session, page.scope, software.recommendation_id)
        if software.recommendation_id
        else None
    )
    return page.render(
        "software/detail.html",
        {
            "title": software.name,
            "active": "software",
            "software": software,
            "versions": software_versions(session, page.scope, software_id),
            "recommendation": recommendation,
        },
    )
