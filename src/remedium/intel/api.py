"""``/api/v1/vulnerabilities``: vulnerabilities found on devices in scope."""

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
from remedium.intel import queries
from remedium.intel.schemas import (
    VulnerabilityPage,
    VulnerabilityView,
    VulnerableDevicePage,
    VulnerableSoftwareView,
)

router = APIRouter(prefix="/api/v1", tags=["vulnerabilities"], dependencies=[VIEW_RIGHT])


@router.get("/vulnerabilities", response_model=VulnerabilityPage)
def list_vulnerabilities(
    *,
    session: SessionDep,
    scope: ScopeDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
    device_group: DeviceGroupParam = None,
    severity: Literal["Low", "Medium", "High", "Critical"] | None = None,
    kev: Annotated[bool | None, Query(description="Listed in CISA KEV.")] = None,
    exploit: Annotated[bool | None, Query(description="A public exploit exists.")] = None,
    sort: Annotated[
        str,
        Query(description=f"One of {', '.join(queries.VULNERABILITY_SORTS)}; '-' for descending."),
    ] = "-exposed_devices",
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> VulnerabilityPage:
    """Vulnerabilities that expose at least one device in scope."""
    field, descending = sort_param(sort, queries.VULNERABILITY_SORTS)
    return queries.list_vulnerabilities(
        session,
        narrowed_scope(session, scope, device_group),
        search=search,
        severity=severity,
        kev=kev,
        exploit=exploit,
        sort=field,
        descending=descending,
        offset=offset,
        limit=limit,
    )


@router.get("/vulnerabilities/{vulnerability_id}", response_model=VulnerabilityView)
def get_vulnerability(
    session: SessionDep, scope: ScopeDep, vulnerability_id: str
) -> VulnerabilityView:
    """One vulnerability, with the devices it exposes in scope."""
    vulnerability = queries.get_vulnerability(session, scope, vulnerability_id)
    if vulnerability is None:
        not_found("vulnerability", vulnerability_id)
    return vulnerability


@router.get("/vulnerabilities/{vulnerability_id}/devices", response_model=VulnerableDevicePage)
def vulnerability_devices(
    session: SessionDep,
    scope: ScopeDep,
    vulnerability_id: str,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> VulnerableDevicePage:
    """Devices in scope with an open weakness of this vulnerability."""
    if queries.get_vulnerability(session, scope, vulnerability_id) is None:
        not_found("vulnerability", vulnerability_id)
    return queries.vulnerability_devices(session, scope, vulnerability_id, offset, limit)


@router.get(
    "/vulnerabilities/{vulnerability_id}/software", response_model=list[VulnerableSoftwareView]
)
def vulnerability_software(
    session: SessionDep, scope: ScopeDep, vulnerability_id: str
) -> list[VulnerableSoftwareView]:
    """Products through which this vulnerability reaches devices in scope."""
    if queries.get_vulnerability(session, scope, vulnerability_id) is None:
        not_found("vulnerability", vulnerability_id)
    return queries.vulnerability_software(session, scope, vulnerability_id)
