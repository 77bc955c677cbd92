"""The related-entity endpoints of the Defender-compatible API.

Machines: ``/machines/{id}/vulnerabilities``, ``/software``, ``/recommendations``,
``/machines/findbyip(...)``, ``/machines/findbytag``; software: ``/Software/{id}/distributions``,
``/machineReferences``, ``/vulnerabilities``, ``/getmissingkbs``; vulnerabilities:
``/vulnerabilities/{id}/machineReferences``, ``/vulnerabilities/machinesVulnerabilities``.
Every query is restricted to the caller's device groups; docs/defender-api.md lists them.

This router is included before ``defender.api``'s, so that ``/machines/findbytag`` is not read
as the machine called "findbytag".
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from remedium.api.deps import ScopeDep, SessionDep
from remedium.auth.principal import Scope
from remedium.common.int32 import as_int32
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.defender import schemas, service
from remedium.defender import software as defender_software
from remedium.defender.api import (
    MAX_TOP,
    MAX_TOP_VULNERABILITIES,
    FilterParam,
    OrderByParam,
    ResourceNotFoundError,
    SelectParam,
    SkipParam,
    TopParam,
    _collection,
    _context,
    _paging,
    defender_router,
    get_registrar,
)
from remedium.defender.odata import Field, FieldSet, FieldType, ODataError, select_fields
from remedium.intel.models import Vulnerability
from remedium.inventory.groups import tag_condition
from remedium.inventory.models import Device, DeviceGroup, InstalledSoftware, Software, Weakness
from remedium.recommendations.models import DeviceRecommendation, Recommendation

router = defender_router()
_get = get_registrar(router)

MACHINE_VULNERABILITY_FIELDS = (
    "id",
    "cveId",
    "machineId",
    "fixingKbId",
    "productName",
    "productVendor",
    "productVersion",
    "severity",
)
DISTRIBUTION_FIELDS = ("version", "installations", "vulnerabilities")


def _device(session: Session, scope: Scope, machine_id: str) -> Device:
    key = machine_id.strip().lower()
    condition: Any = Device.machine_id == key
    number = as_int32(key)
    if number is not None:
        condition = condition | (Device.id == number)
    device = session.scalars(
        select(Device).where(condition, in_scope(Device.device_group_id, scope)).limit(1)
    ).first()
    if device is None:
        raise ResourceNotFoundError(f"Machine {machine_id} was not found")
    return device


def _software(session: Session, scope: Scope, software_id: str) -> Software:
    installed = (
        select(InstalledSoftware.software_id)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .where(in_scope(Device.device_group_id, scope))
    )
    found = session.scalars(
        select(Software).where(
            func.lower(Software.product_key) == software_id.strip().lower(),
            Software.id.in_(installed),
        )
    ).first()
    if found is None:
        raise ResourceNotFoundError(f"Software {software_id} was not found")
    return found


# --- machines -----------------------------------------------------------------------------------


@_get("/machines/{machine_id}/vulnerabilities", "/Machines/{machine_id}/vulnerabilities")
def machine_vulnerabilities(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    machine_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The vulnerabilities open on one machine (``exposedMachines`` counts the scope)."""
    device = _device(session, scope, machine_id)
    selected = select_fields(select_, schemas.VULNERABILITY_FIELDS)
    options = _paging(request, top, skip, MAX_TOP_VULNERABILITIES)
    page = service.list_vulnerabilities(
        session,
        scope,
        service.Query(filter_, orderby, options),
        where=Weakness.device_id == device.id,
    )
    return _collection(request, "Vulnerabilities", page, options, selected)


@_get("/machines/{machine_id}/software", "/Machines/{machine_id}/software")
def machine_software(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    machine_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The products installed on one machine (figures over the caller's scope)."""
    device = _device(session, scope, machine_id)
    selected = select_fields(select_, schemas.SOFTWARE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    on_device = select(InstalledSoftware.software_id).where(
        InstalledSoftware.device_id == device.id
    )
    page = defender_software.list_software(
        session,
        scope,
        service.Query(filter_, orderby, options),
        where=Software.id.in_(on_device),
    )
    return _collection(request, "Software", page, options, selected)


@_get("/machines/{machine_id}/recommendations", "/Machines/{machine_id}/recommendations")
def machine_recommendations(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    machine_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The security recommendations the machine is exposed to (figures over the scope)."""
    device = _device(session, scope, machine_id)
    selected = select_fields(select_, schemas.RECOMMENDATION_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    on_device = select(DeviceRecommendation.recommendation_id).where(
        DeviceRecommendation.device_id == device.id
    )
    page = service.list_recommendations(
        session,
        scope,
        service.Query(filter_, orderby, options),
        where=Recommendation.id.in_(on_device),
    )
    return _collection(request, "Recommendations", page, options, selected)


_FINDBYIP = re.compile(
    r"^\s*ip\s*=\s*'(?P<ip>[^']*)'\s*,\s*timestamp\s*=\s*'?(?P<ts>[0-9T:.\-+Z ]+?)'?\s*$",
    re.IGNORECASE,
)


@_get("/machines/findbyip({arguments})", "/Machines/findbyip({arguments})")
def find_by_ip(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    arguments: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """Machines whose last known IP address is ``ip`` (``timestamp`` is validated; remedium
    keeps one address per device, so it does not narrow the answer: docs/defender-api.md)."""
    match = _FINDBYIP.match(arguments)
    if match is None:
        raise ODataError("Use findbyip(ip='10.0.0.1',timestamp=2024-01-31T10:00:00Z).")
    try:
        address = str(ipaddress.ip_address(match.group("ip").strip()))
    except ValueError:
        raise ODataError(f"'{match.group('ip')}' is not an IP address.") from None
    try:
        datetime.fromisoformat(match.group("ts").strip().replace("Z", "+00:00"))
    except ValueError:
        raise ODataError(f"'{match.group('ts')}' is not a timestamp.") from None
    selected = select_fields(select_, schemas.MACHINE_FIELDS)
    options = _paging(request, None, None, MAX_TOP)
    page = service.list_machines(
        session,
        scope,
        service.Query(None, None, options),
        now=utcnow(),
        where=func.lower(Device.ip_address) == address.lower(),
    )
    return _collection(request, "Machines", page, options, selected)


@_get("/machines/findbytag", "/Machines/findbytag")
def find_by_tag(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    tag: Annotated[str, Query(min_length=1, max_length=200)],
    use_starts_with: Annotated[str, Query(alias="useStartsWithFilter")] = "false",
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Machines holding the tag (or a tag starting with it when ``useStartsWithFilter``)."""
    flag = use_starts_with.strip().lower()
    if flag not in ("true", "false"):
        raise ODataError("useStartsWithFilter must be true or false.")
    selected = select_fields(select_, schemas.MACHINE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    condition = tag_condition("startsWith" if flag == "true" else "equals", tag)
    # internetFacing is derived from the device's facts, as machineTags shows it.
    derived = "internetfacing"
    wanted = tag.strip().lower()
    if derived.startswith(wanted) if flag == "true" else derived == wanted:
        condition = condition | Device.internet_facing.is_(True)
    page = service.list_machines(
        session, scope, service.Query(None, None, options), now=utcnow(), where=condition
    )
    return _collection(request, "Machines", page, options, selected)


# --- software -----------------------------------------------------------------------------------


@_get("/Software/{software_id}/distributions", "/software/{software_id}/distributions")
def software_distributions(
    request: Request, *, session: SessionDep, scope: ScopeDep, software_id: str
) -> dict[str, Any]:
    """Versions of a product installed in scope: devices and open CVEs per version."""
    software = _software(session, scope, software_id)
    installs = session.execute(
        select(InstalledSoftware.version, func.count(distinct(InstalledSoftware.device_id)))
        .join(Device, Device.id == InstalledSoftware.device_id)
        .where(
            InstalledSoftware.software_id == software.id,
            in_scope(Device.device_group_id, scope),
        )
        .group_by(InstalledSoftware.version)
        .order_by(InstalledSoftware.version)
    ).all()
    cves = dict(
        session.execute(
            select(Weakness.installed_version, func.count(distinct(Weakness.vulnerability_id)))
            .join(Device, Device.id == Weakness.device_id)
            .where(
                Weakness.software_id == software.id,
                Weakness.fixed_at.is_(None),
                in_scope(Device.device_group_id, scope),
            )
            .group_by(Weakness.installed_version)
        )
        .tuples()
        .all()
    )
    return {
        "@odata.context": _context(
            request, "Collection(microsoft.windowsDefenderATP.api.Distribution)"
        ),
        "value": [
            {
                "version": version,
                "installations": int(count),
                "vulnerabilities": int(cves.get(version, 0)),
            }
            for version, count in installs
        ],
    }


@_get("/Software/{software_id}/machineReferences", "/software/{software_id}/machineReferences")
def software_machines(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    software_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Devices in scope with the product installed."""
    software = _software(session, scope, software_id)
    installed = select(InstalledSoftware.device_id).where(
        InstalledSoftware.software_id == software.id
    )
    return _machine_references(
        request,
        session,
        scope,
        Device.id.in_(installed),
        filter_=filter_,
        orderby=orderby,
        select_=select_,
        top=top,
        skip=skip,
    )


@_get("/Software/{software_id}/vulnerabilities", "/software/{software_id}/vulnerabilities")
def software_vulnerabilities(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    software_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Vulnerabilities open on the product on devices in scope."""
    software = _software(session, scope, software_id)
    selected = select_fields(select_, schemas.VULNERABILITY_FIELDS)
    options = _paging(request, top, skip, MAX_TOP_VULNERABILITIES)
    page = service.list_vulnerabilities(
        session,
        scope,
        service.Query(filter_, orderby, options),
        where=Weakness.software_id == software.id,
    )
    return _collection(request, "Vulnerabilities", page, options, selected)


@_get("/Software/{software_id}/getmissingkbs", "/software/{software_id}/getmissingkbs")
def software_missing_kbs(
    request: Request, *, session: SessionDep, scope: ScopeDep, software_id: str
) -> dict[str, Any]:
    """Missing security updates (KBs): always empty, remedium has no KB data."""
    _software(session, scope, software_id)
    return {
        "@odata.context": _context(
            request, "Collection(microsoft.windowsDefenderATP.api.PublicProductFixDto)"
        ),
        "value": [],
    }


# --- vulnerabilities ----------------------------------------------------------------------------


def _machine_references(
    request: Request,
    session: Session,
    scope: Scope,
    condition: Any,
    *,
    filter_: str | None,
    orderby: str | None,
    select_: str | None,
    top: str | None,
    skip: str | None,
) -> dict[str, Any]:
    selected = select_fields(select_, schemas.MACHINE_REFERENCE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    query = service.Query(filter_, orderby, options)
    statement = (
        select(Device, DeviceGroup.name)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(condition, in_scope(Device.device_group_id, scope))
    )
    statement = service.apply_query(statement, service.machine_reference_fields(), query, Device.id)
    rows, more = service.page_of(session, statement, query)
    page = service.Page([schemas.machine_reference(d, g) for d, g in rows], more)
    return _collection(request, "MachineReferences", page, options, selected)


@_get(
    "/vulnerabilities/machinesVulnerabilities",
    "/Vulnerabilities/machinesVulnerabilities",
    "/vulnerabilities/machinesvulnerabilities",
)
def machines_vulnerabilities(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Every (machine, CVE, product version) open in scope."""
    selected = select_fields(select_, MACHINE_VULNERABILITY_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    query = service.Query(filter_, orderby, options)
    fields = FieldSet(
        "PublicAssetVulnerabilityDto",
        [
            Field("cveId", Weakness.vulnerability_id),
            Field("machineId", Device.machine_id),
            Field("productName", Software.product),
            Field("productVendor", Software.vendor),
            Field("productVersion", Weakness.installed_version),
            Field("severity", Vulnerability.severity),
            Field("fixingKbId", Weakness.fixed_version, FieldType.STRING),
        ],
    )
    statement = (
        select(
            Weakness, Device.machine_id, Software.vendor, Software.product, Vulnerability.severity
        )
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
        .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
        .where(Weakness.fixed_at.is_(None), in_scope(Device.device_group_id, scope))
    )
    statement = service.apply_query(statement, fields, query, Weakness.id)
    rows, more = service.page_of(session, statement, query)
    items = [
        {
            "id": "-_-".join(
                (
                    machine,
                    weakness.vulnerability_id,
                    vendor,
                    product,
                    weakness.installed_version,
                    "",
                )
            ),
            "cveId": weakness.vulnerability_id,
            "machineId": machine,
            # remedium has no KB data (docs/defender-api.md).
            "fixingKbId": None,
            "productName": product,
            "productVendor": vendor,
            "productVersion": weakness.installed_version,
            "severity": severity,
        }
        for weakness, machine, vendor, product, severity in rows
    ]
    return _collection(
        request,
        "Collection(microsoft.windowsDefenderATP.api.PublicAssetVulnerabilityDto)",
        service.Page(items, more),
        options,
        selected,
    )


@_get(
    "/vulnerabilities/{cve_id}/machineReferences",
    "/Vulnerabilities/{cve_id}/machineReferences",
)
def vulnerability_machines(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    cve_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Devices in scope with the vulnerability open."""
    cve = session.scalar(
        select(Vulnerability.id).where(func.upper(Vulnerability.id) == cve_id.strip().upper())
    )
    if cve is None:
        raise ResourceNotFoundError(f"Vulnerability {cve_id} was not found")
    exposed = select(Weakness.device_id).where(
        Weakness.vulnerability_id == cve, Weakness.fixed_at.is_(None)
    )
    return _machine_references(
        request,
        session,
        scope,
        Device.id.in_(exposed),
        filter_=filter_,
        orderby=orderby,
        select_=select_,
        top=top,
        skip=skip,
    )
