"""Web pages of the inventory: devices and software, as lists and one by one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.responses import HTMLResponse

from remedium.api.deps import SessionDep
from remedium.inventory.models import DEVICE_VALUES, OS_PLATFORMS
from remedium.inventory.queries import (
    DEVICE_SORTS,
    EXPOSURE_LEVELS,
    SOFTWARE_SORTS,
    device_recommendations,
    device_software,
    device_weaknesses,
    get_device,
    get_software,
    list_devices,
    list_software,
    software_versions,
)
from remedium.recommendations.queries import get_recommendation
from remedium.web.listing import clean, list_state
from remedium.web.templating import PageDep

router = APIRouter(include_in_schema=False)

DEVICE_TABS = ("recommendations", "weaknesses", "software")


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
    filters = {
        "q": clean(q),
        "exposure_level": exposure_level if exposure_level in EXPOSURE_LEVELS else None,
        "os_platform": os_platform if os_platform in OS_PLATFORMS else None,
        "device_value": device_value if device_value in DEVICE_VALUES else None,
    }
    result = list_devices(
        session,
        page.scope,
        search=filters["q"],
        exposure_level=filters["exposure_level"],
        os_platform=filters["os_platform"],
        device_value=filters["device_value"],
        sort=state.sort,
        descending=state.descending,
        offset=state.offset,
        limit=state.limit,
    )
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
