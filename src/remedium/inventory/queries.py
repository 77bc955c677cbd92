"""Scoped read side of the inventory: device groups and devices (software: ``software_queries.py``).

Lists are filtered, sorted and paged in SQL; per-row figures for a page come from one grouped
query over the page's ids, so a page costs the same few queries whatever its length.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import case, desc, func, or_, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.paging import Page, clamp_limit, make_page
from remedium.common.scoping import active_since, in_scope, is_empty
from remedium.intel.models import Vulnerability
from remedium.inventory.models import (
    DEVICE_VALUES,
    Device,
    DeviceGroup,
    InstalledSoftware,
    Software,
    Weakness,
    device_tags,
)
from remedium.recommendations.models import DeviceRecommendation, Recommendation
from remedium.scoring import engine
from remedium.scoring.models import GroupScoreStat

EXPOSURE_LEVELS = ("None", "Low", "Medium", "High")
DEVICE_SORTS = (
    "exposure_score",
    "exposure_level",
    "name",
    "device_group",
    "os_platform",
    "device_value",
    "last_seen",
    "first_seen",
)


class DeviceGroupView(BaseModel):
    """A device group with its device counts and exposure score."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    description: str
    devices: int
    active_devices: int
    exposure_score: float
    exposure_band: str
    # Membership rules (docs/device-groups.md): rank among groups with rules (None: no rules).
    rank: int | None = None
    rules: list[dict[str, str]] = []


class DeviceView(BaseModel):
    """A device as the inventory shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    machine_id: str
    name: str
    device_group_id: int
    device_group_name: str
    os_platform: str
    os_version: str
    os_architecture: str
    ip_address: str
    device_value: str
    is_intune_managed: bool
    is_aad_joined: bool
    internet_facing: bool
    tags: list[str]
    first_seen: datetime
    last_seen: datetime
    is_active: bool
    exposure_score: float
    exposure_level: str
    secure_score: float
    # Open vulnerability weaknesses on the device.
    weaknesses: int


class DeviceSoftwareView(BaseModel):
    """One installed version of a product on a device."""

    model_config = ConfigDict(frozen=True)

    software_id: int
    name: str
    vendor: str
    product_key: str
    version: str
    weaknesses: int
    first_seen: datetime
    last_seen: datetime


class DeviceWeaknessView(BaseModel):
    """One vulnerability on a device, through one product."""

    model_config = ConfigDict(frozen=True)

    vulnerability_id: str
    name: str
    severity: str
    cvss_v3_score: float | None
    public_exploit: bool
    kev_listed: bool
    epss: float | None
    software_id: int
    software_name: str
    installed_version: str
    fixed_version: str | None
    first_seen: datetime
    last_seen: datetime
    fixed_at: datetime | None
    path: str | None = None  # where the scanner found it (a lock file, a package path)


class DeviceRecommendationView(BaseModel):
    """A recommendation that applies to one device, with what fixing it there removes."""

    model_config = ConfigDict(frozen=True)

    recommendation_id: str
    name: str
    category: str
    remediation_type: str
    related_component: str
    public_exploit: bool
    active_alert: bool
    weaknesses: int
    points: float
    score_delta: float


# ---------------------------------------------------------------- device groups


def visible_groups(session: Session, scope: Scope) -> list[tuple[int, str]]:
    """The ids and names of the device groups in scope, by name (the pages' group filter).

    Every page asks for it, so it reads the group table alone: :func:`list_device_groups` also
    counts each group's devices, a scan of the device table."""
    if is_empty(scope):
        return []
    rows = session.execute(
        select(DeviceGroup.id, DeviceGroup.name)
        .where(in_scope(DeviceGroup.id, scope))
        .order_by(DeviceGroup.name)
    )
    return [(int(group_id), str(name)) for group_id, name in rows]


def list_device_groups(session: Session, scope: Scope) -> list[DeviceGroupView]:
    """The device groups in scope, by name, with device counts and exposure score."""
    if is_empty(scope):
        return []
    counts: dict[int, int] = dict(
        session.execute(
            select(Device.device_group_id, func.count())
            .where(in_scope(Device.device_group_id, scope))
            .group_by(Device.device_group_id)
        )
        .tuples()
        .all()
    )
    stat = GroupScoreStat
    rows = session.execute(
        select(DeviceGroup, stat)
        .outerjoin(stat, stat.device_group_id == DeviceGroup.id)
        .where(in_scope(DeviceGroup.id, scope))
        .order_by(DeviceGroup.name)
    ).all()
    views = []
    for group, group_stat in rows:
        sums = (
            engine.ExposureSums(
                group_stat.active_devices,
                group_stat.high_value_devices,
                group_stat.weight_low_normal,
                group_stat.exposure_weighted,
                group_stat.exposure_high,
            )
            if group_stat is not None
            else engine.ExposureSums()
        )
        score = sums.score()
        views.append(
            DeviceGroupView(
                id=group.id,
                name=group.name,
                description=group.description,
                devices=int(counts.get(group.id, 0)),
                active_devices=sums.active_devices,
                exposure_score=round(score, 2),
                exposure_band=engine.score_band(score),
                rank=group.rank,
                rules=list(group.rules or []),
            )
        )
    return views


# ---------------------------------------------------------------- devices


def _rank(column: Any, values: tuple[str, ...]) -> Any:
    return case({value: rank for rank, value in enumerate(values)}, value=column, else_=-1)


def _device_views(session: Session, rows: list[Any]) -> list[DeviceView]:
    """Views of ``(Device, group name)`` rows, with weakness counts in one query."""
    ids = [device.id for device, _ in rows]
    weaknesses: dict[int, int] = {}
    if ids:
        weaknesses = {
            device_id: int(count)
            for device_id, count in session.execute(
                select(Weakness.device_id, func.count())
                .where(Weakness.device_id.in_(ids), Weakness.fixed_at.is_(None))
                .group_by(Weakness.device_id)
            ).all()
        }
    cutoff = active_since()
    return [
        DeviceView(
            id=device.id,
            machine_id=device.machine_id,
            name=device.name,
            device_group_id=device.device_group_id,
            device_group_name=group_name,
            os_platform=device.os_platform,
            os_version=device.os_version,
            os_architecture=device.os_architecture,
            ip_address=device.ip_address,
            device_value=device.device_value,
            is_intune_managed=device.is_intune_managed,
            is_aad_joined=device.is_aad_joined,
            internet_facing=device.internet_facing,
            tags=device_tags(device),
            first_seen=device.first_seen,
            last_seen=device.last_seen,
            is_active=device.last_seen >= cutoff,
            exposure_score=round(device.exposure_score, 2),
            exposure_level=device.exposure_level,
            secure_score=round(
                engine.secure_score(device.secure_passed_weight, device.secure_total_weight), 2
            ),
            weaknesses=weaknesses.get(device.id, 0),
        )
        for device, group_name in rows
    ]


def list_devices(
    session: Session,
    scope: Scope,
    *,
    search: str | None = None,
    group_id: int | None = None,
    exposure_level: str | None = None,
    os_platform: str | None = None,
    device_value: str | None = None,
    sort: str = "exposure_score",
    descending: bool = True,
    offset: int = 0,
    limit: int = 25,
) -> Page[DeviceView]:
    """Devices in scope, filtered, sorted (one of :data:`DEVICE_SORTS`) and paged in SQL."""
    if sort not in DEVICE_SORTS:
        raise ValueError(f"sort: unknown field {sort!r}; use one of {', '.join(DEVICE_SORTS)}")
    if exposure_level is not None and exposure_level not in EXPOSURE_LEVELS:
        raise ValueError(f"exposure_level: use one of {', '.join(EXPOSURE_LEVELS)}")
    if device_value is not None and device_value not in DEVICE_VALUES:
        raise ValueError(f"device_value: use one of {', '.join(DEVICE_VALUES)}")
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    conditions: list[Any] = [in_scope(Device.device_group_id, scope)]
    if search:
        pattern = f"%{search.strip()}%"
        conditions.append(or_(Device.name.ilike(pattern), Device.ip_address.ilike(pattern)))
    if group_id is not None:
        conditions.append(Device.device_group_id == group_id)
    if exposure_level:
        conditions.append(Device.exposure_level == exposure_level)
    if os_platform:
        conditions.append(Device.os_platform == os_platform)
    if device_value:
        conditions.append(Device.device_value == device_value)
    total = session.execute(
        select(func.count()).select_from(Device).where(*conditions)
    ).scalar_one()
    sort_columns: dict[str, Any] = {
        "exposure_score": Device.exposure_score,
        "exposure_level": _rank(Device.exposure_level, EXPOSURE_LEVELS),
        "name": Device.name,
        "device_group": DeviceGroup.name,
        "os_platform": Device.os_platform,
        "device_value": _rank(Device.device_value, DEVICE_VALUES),
        "last_seen": Device.last_seen,
        "first_seen": Device.first_seen,
    }
    column = sort_columns[sort]
    rows = session.execute(
        select(Device, DeviceGroup.name)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(*conditions)
        .order_by(desc(column) if descending else column, Device.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return make_page(_device_views(session, list(rows)), int(total), offset, limit)


def _visible_device(session: Session, scope: Scope, device_id: int) -> Device | None:
    device = session.get(Device, device_id)
    if device is None or not scope.allows(device.device_group_id):
        return None
    return device


def get_device(session: Session, scope: Scope, device_id: int) -> DeviceView | None:
    """One device; ``None`` when unknown or outside the scope."""
    device = _visible_device(session, scope, device_id)
    if device is None:
        return None
    group_name = session.execute(
        select(DeviceGroup.name).where(DeviceGroup.id == device.device_group_id)
    ).scalar_one()
    return _device_views(session, [(device, group_name)])[0]


def device_software(session: Session, scope: Scope, device_id: int) -> list[DeviceSoftwareView]:
    """The software installed on a device in scope, by name, with open weaknesses of each."""
    if _visible_device(session, scope, device_id) is None:
        return []
    weakness_counts: dict[int, int] = dict(
        session.execute(
            select(Weakness.software_id, func.count())
            .where(Weakness.device_id == device_id, Weakness.fixed_at.is_(None))
            .group_by(Weakness.software_id)
        )
        .tuples()
        .all()
    )
    rows = session.execute(
        select(InstalledSoftware, Software)
        .join(Software, Software.id == InstalledSoftware.software_id)
        .where(InstalledSoftware.device_id == device_id)
        .order_by(Software.display_name, InstalledSoftware.version)
    ).all()
    return [
        DeviceSoftwareView(
            software_id=software.id,
            name=software.display_name,
            vendor=software.display_vendor,
            product_key=software.product_key,
            version=installed.version,
            weaknesses=int(weakness_counts.get(software.id, 0)),
            first_seen=installed.first_seen,
            last_seen=installed.last_seen,
        )
        for installed, software in rows
    ]


def device_weaknesses(
    session: Session, scope: Scope, device_id: int, include_fixed: bool = False
) -> list[DeviceWeaknessView]:
    """The vulnerabilities on a device in scope, most severe first (fixed ones on request)."""
    if _visible_device(session, scope, device_id) is None:
        return []
    conditions: list[Any] = [Weakness.device_id == device_id]
    if not include_fixed:
        conditions.append(Weakness.fixed_at.is_(None))
    rows = session.execute(
        select(Weakness, Vulnerability, Software.display_name)
        .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
        .join(Software, Software.id == Weakness.software_id)
        .where(*conditions)
        .order_by(desc(func.coalesce(Vulnerability.cvss_v3_score, 0.0)), Vulnerability.id)
    ).all()
    return [
        DeviceWeaknessView(
            vulnerability_id=vulnerability.id,
            name=vulnerability.name,
            severity=vulnerability.severity,
            cvss_v3_score=vulnerability.cvss_v3_score,
            public_exploit=vulnerability.public_exploit,
            kev_listed=vulnerability.kev_listed,
            epss=vulnerability.epss,
            software_id=weakness.software_id,
            software_name=software_name,
            installed_version=weakness.installed_version,
            fixed_version=weakness.fixed_version,
            first_seen=weakness.first_seen,
            last_seen=weakness.last_seen,
            fixed_at=weakness.fixed_at,
            path=weakness.path,
        )
        for weakness, vulnerability, software_name in rows
    ]


def device_recommendations(
    session: Session, scope: Scope, device_id: int
) -> list[DeviceRecommendationView]:
    """The recommendations that apply to a device in scope, biggest score reduction first."""
    if _visible_device(session, scope, device_id) is None:
        return []
    link = DeviceRecommendation
    rows = session.execute(
        select(link, Recommendation)
        .join(Recommendation, Recommendation.id == link.recommendation_id)
        .where(link.device_id == device_id)
        .order_by(desc(link.score_delta), Recommendation.name)
    ).all()
    return [
        DeviceRecommendationView(
            recommendation_id=rec.id,
            name=rec.name,
            category=rec.category,
            remediation_type=rec.remediation_type,
            related_component=rec.related_component,
            public_exploit=rec.public_exploit,
            active_alert=rec.active_alert,
            weaknesses=item.weaknesses,
            points=item.points,
            score_delta=round(item.score_delta, 2),
        )
        for item, rec in rows
    ]


def top_exposed_devices(session: Session, scope: Scope, n: int = 5) -> list[DeviceView]:
    """The ``n`` devices in scope with the highest exposure score (no total: a dashboard card)."""
    if is_empty(scope):
        return []
    rows = session.execute(
        select(Device, DeviceGroup.name)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(in_scope(Device.device_group_id, scope), Device.exposure_score > 0)
        .order_by(desc(Device.exposure_score), Device.id)
        .limit(clamp_limit(n))
    ).all()
    return _device_views(session, list(rows))


# ---------------------------------------------------------------- software
