"""Scoped read side of vulnerabilities (the organisation's "Weaknesses" page).

A vulnerability's exposed-device count in a scope comes from ``recommendation_vulnerability``
(per recommendation and group); the device and software lists read open weaknesses directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import case, desc, func, or_, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.paging import Page, clamp_limit, make_page
from remedium.common.scoping import in_scope, is_empty
from remedium.intel.models import SEVERITIES, Vulnerability
from remedium.inventory.models import Device, DeviceGroup, Software, Weakness
from remedium.recommendations.models import RecommendationVulnerability

VULNERABILITY_SORTS = (
    "exposed_devices",
    "severity",
    "cvss_v3_score",
    "epss",
    "published_on",
    "updated_on",
    "id",
)


class VulnerabilityView(BaseModel):
    """A vulnerability with its threat facts and the devices it exposes in scope."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    severity: str
    cvss_v3_score: float | None
    cvss_v3_vector: str | None
    cvss_v4_score: float | None
    cvss_v4_vector: str | None
    published_on: datetime | None
    updated_on: datetime | None
    public_exploit: bool
    exploit_verified: bool
    exploit_in_kit: bool
    exploit_types: list[str]
    kev_listed: bool
    kev_date_added: datetime | None
    kev_due_date: datetime | None
    kev_ransomware: bool
    epss: float | None
    epss_percentile: float | None
    cwe_ids: list[str]
    exposed_devices: int


class VulnerableDeviceView(BaseModel):
    """A device in scope with an open weakness of one vulnerability."""

    model_config = ConfigDict(frozen=True)

    device_id: int
    name: str
    device_group_id: int
    device_group_name: str
    os_platform: str
    exposure_level: str
    software_id: int
    software_name: str
    installed_version: str
    fixed_version: str | None
    first_seen: datetime
    last_seen: datetime


class VulnerableSoftwareView(BaseModel):
    """A product through which one vulnerability reaches devices in scope."""

    model_config = ConfigDict(frozen=True)

    software_id: int
    name: str
    vendor: str
    product_key: str
    exposed_devices: int


def vulnerability_view(vulnerability: Vulnerability, exposed_devices: int) -> VulnerabilityView:
    """The view of a vulnerability row with a scoped exposed-device count."""
    v = vulnerability
    return VulnerabilityView(
        id=v.id,
        name=v.name,
        description=v.description,
        severity=v.severity,
        cvss_v3_score=v.cvss_v3_score,
        cvss_v3_vector=v.cvss_v3_vector,
        cvss_v4_score=v.cvss_v4_score,
        cvss_v4_vector=v.cvss_v4_vector,
        published_on=v.published_on,
        updated_on=v.updated_on,
        public_exploit=v.public_exploit,
        exploit_verified=v.exploit_verified,
        exploit_in_kit=v.exploit_in_kit,
        exploit_types=list(v.exploit_types or []),
        kev_listed=v.kev_listed,
        kev_date_added=v.kev_date_added,
        kev_due_date=v.kev_due_date,
        kev_ransomware=v.kev_ransomware,
        epss=v.epss,
        epss_percentile=v.epss_percentile,
        cwe_ids=list(v.cwe_ids or []),
        exposed_devices=exposed_devices,
    )


def _exposed_subquery(scope: Scope) -> Any:
    """Exposed devices per vulnerability in scope.

    Within a group, a vulnerability reached through two products is counted once per device
    only approximately: the larger of the per-recommendation counts (devices rarely have the
    same CVE through two products). Groups are disjoint, so their counts add up exactly.
    """
    link = RecommendationVulnerability
    per_group = (
        select(
            link.vulnerability_id.label("vulnerability_id"),
            func.max(link.exposed_devices).label("exposed"),
        )
        .where(in_scope(link.device_group_id, scope))
        .group_by(link.vulnerability_id, link.device_group_id)
        .subquery("per_group")
    )
    return (
        select(
            per_group.c.vulnerability_id.label("vulnerability_id"),
            func.sum(per_group.c.exposed).label("exposed"),
        )
        .group_by(per_group.c.vulnerability_id)
        .subquery("exposed")
    )


_SEVERITY_RANK = case(
    {name: rank for rank, name in enumerate(SEVERITIES)}, value=Vulnerability.severity, else_=-1
)


def list_vulnerabilities(
    session: Session,
    scope: Scope,
    *,
    search: str | None = None,
    severity: str | None = None,
    kev: bool | None = None,
    exploit: bool | None = None,
    sort: str = "exposed_devices",
    descending: bool = True,
    offset: int = 0,
    limit: int = 25,
) -> Page[VulnerabilityView]:
    """Vulnerabilities that expose at least one device in scope, filtered, sorted and paged."""
    if sort not in VULNERABILITY_SORTS:
        raise ValueError(
            f"sort: unknown field {sort!r}; use one of {', '.join(VULNERABILITY_SORTS)}"
        )
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"severity: use one of {', '.join(SEVERITIES)}")
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    exposed = _exposed_subquery(scope)
    conditions: list[Any] = [exposed.c.exposed > 0]
    if search:
        pattern = f"%{search.strip()}%"
        conditions.append(
            or_(
                Vulnerability.id.ilike(pattern),
                Vulnerability.name.ilike(pattern),
                Vulnerability.description.ilike(pattern),
            )
        )
    if severity:
        conditions.append(Vulnerability.severity == severity)
    if kev is not None:
        conditions.append(Vulnerability.kev_listed.is_(kev))
    if exploit is not None:
        conditions.append(Vulnerability.public_exploit.is_(exploit))
    base = (
        select(Vulnerability, exposed.c.exposed)
        .join(exposed, exposed.c.vulnerability_id == Vulnerability.id)
        .where(*conditions)
    )
    sort_columns: dict[str, Any] = {
        "exposed_devices": exposed.c.exposed,
        "severity": _SEVERITY_RANK,
        "cvss_v3_score": func.coalesce(Vulnerability.cvss_v3_score, -1.0),
        "epss": func.coalesce(Vulnerability.epss, -1.0),
        "published_on": Vulnerability.published_on,
        "updated_on": Vulnerability.updated_on,
        "id": Vulnerability.id,
    }
    column = sort_columns[sort]
    # The aggregate behind this list is its costly part, so the total rides along as a window
    # count instead of a second pass; only a page past the end needs its own count.
    rows = session.execute(
        base.add_columns(func.count().over().label("total"))
        .order_by(desc(column) if descending else column, Vulnerability.id)
        .offset(offset)
        .limit(limit)
    ).all()
    if rows:
        total = int(rows[0].total)
    else:
        total = session.execute(
            select(func.count()).select_from(base.with_only_columns(Vulnerability.id).subquery())
        ).scalar_one()
    items = [vulnerability_view(row[0], int(row[1])) for row in rows]
    return make_page(items, int(total), offset, limit)


def get_vulnerability(
    session: Session, scope: Scope, vulnerability_id: str
) -> VulnerabilityView | None:
    """One vulnerability with its exposed devices in scope (0 when none); ``None`` if unknown.

    Vulnerability facts are public intelligence, so they are shown whatever the scope; only
    the device counts are scoped.
    """
    vulnerability = session.get(Vulnerability, vulnerability_id)
    if vulnerability is None:
        return None
    count = 0
    if not is_empty(scope):
        exposed = _exposed_subquery(scope)
        count = int(
            session.execute(
                select(exposed.c.exposed).where(exposed.c.vulnerability_id == vulnerability_id)
            ).scalar_one_or_none()
            or 0
        )
    return vulnerability_view(vulnerability, count)


def vulnerability_devices(
    session: Session,
    scope: Scope,
    vulnerability_id: str,
    offset: int = 0,
    limit: int = 25,
) -> Page[VulnerableDeviceView]:
    """Devices in scope with an open weakness of this vulnerability (one row per product)."""
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    conditions = (
        Weakness.vulnerability_id == vulnerability_id,
        Weakness.fixed_at.is_(None),
        in_scope(Device.device_group_id, scope),
    )
    total = session.execute(
        select(func.count())
        .select_from(Weakness)
        .join(Device, Device.id == Weakness.device_id)
        .where(*conditions)
    ).scalar_one()
    rows = session.execute(
        select(Weakness, Device, DeviceGroup.name, Software.display_name)
        .join(Device, Device.id == Weakness.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .join(Software, Software.id == Weakness.software_id)
        .where(*conditions)
        .order_by(Device.name, Device.id, Software.display_name)
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        VulnerableDeviceView(
            device_id=device.id,
            name=device.name,
            device_group_id=device.device_group_id,
            device_group_name=group_name,
            os_platform=device.os_platform,
            exposure_level=device.exposure_level,
            software_id=weakness.software_id,
            software_name=software_name,
            installed_version=weakness.installed_version,
            fixed_version=weakness.fixed_version,
            first_seen=weakness.first_seen,
            last_seen=weakness.last_seen,
        )
        for weakness, device, group_name, software_name in rows
    ]
    return make_page(items, int(total), offset, limit)


def vulnerability_software(
    session: Session, scope: Scope, vulnerability_id: str
) -> list[VulnerableSoftwareView]:
    """Products through which this vulnerability reaches devices in scope, most devices first."""
    if is_empty(scope):
        return []
    exposed = func.count(func.distinct(Weakness.device_id)).label("exposed")
    rows = session.execute(
        select(
            Software.id,
            Software.display_name,
            Software.display_vendor,
            Software.product_key,
            exposed,
        )
        .select_from(Weakness)
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
        .where(
            Weakness.vulnerability_id == vulnerability_id,
            Weakness.fixed_at.is_(None),
            in_scope(Device.device_group_id, scope),
        )
        .group_by(Software.id, Software.display_name, Software.display_vendor, Software.product_key)
        .order_by(desc(exposed), Software.display_name)
    ).all()
    return [
        VulnerableSoftwareView(
            software_id=software_id,
            name=name,
            vendor=vendor,
            product_key=product_key,
            exposed_devices=int(count),
        )
        for software_id, name, vendor, product_key, count in rows
    ]
