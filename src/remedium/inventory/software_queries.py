"""Read-only software views of the inventory for the API and pages, restricted to a scope: the
software list and page, its versions, and the dashboard's most vulnerable software.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import desc, exists, func, or_, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.paging import Page, clamp_limit, make_page
from remedium.common.scoping import in_scope, is_empty
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness
from remedium.recommendations.queries import software_figures_subquery

SOFTWARE_SORTS = ("name", "vendor", "exposed_devices", "weaknesses", "exposure_impact")


class SoftwareView(BaseModel):
    """A product in the software inventory with figures scoped to the visible devices."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    vendor: str
    product_key: str
    is_operating_system: bool
    end_of_support_on: datetime | None
    recommendation_id: str | None
    installed_devices: int
    exposed_devices: int
    weaknesses: int
    exposure_impact: float
    public_exploit: bool
    active_alert: bool


class SoftwareVersionView(BaseModel):
    """One version of a product: where it is installed and what it is vulnerable to."""

    model_config = ConfigDict(frozen=True)

    version: str
    installed_devices: int
    exposed_devices: int
    weaknesses: int
    end_of_support: bool


def _installed_in_scope(scope: Scope) -> Any:
    """True for software installed on at least one device in scope."""
    return exists(
        select(InstalledSoftware.device_id)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .where(
            InstalledSoftware.software_id == Software.id,
            in_scope(Device.device_group_id, scope),
        )
    )


def _software_query(session: Session, scope: Scope, *, vulnerable_only: bool = False) -> Any:
    figures = software_figures_subquery(session, scope)
    if vulnerable_only:
        # Weaknesses in scope imply installations in scope: the figures alone pick the rows,
        # which spares the per-product probe of installations below.
        return select(
            Software,
            figures.c.recommendation_id,
            figures.c.exposed_devices,
            figures.c.weaknesses,
            figures.c.exposure_impact,
            figures.c.public_exploit,
            figures.c.active_alert,
        ).join(figures, figures.c.software_id == Software.id)
    query = select(
        Software,
        figures.c.recommendation_id,
        func.coalesce(figures.c.exposed_devices, 0).label("exposed_devices"),
        func.coalesce(figures.c.weaknesses, 0).label("weaknesses"),
        func.coalesce(figures.c.exposure_impact, 0.0).label("exposure_impact"),
        figures.c.public_exploit,
        figures.c.active_alert,
    ).outerjoin(figures, figures.c.software_id == Software.id)
    if not scope.is_unrestricted:
        query = query.where(_installed_in_scope(scope))
    return query


def _software_views(session: Session, scope: Scope, rows: list[Any]) -> list[SoftwareView]:
    """Views of software rows, with installed-device counts for these rows in one query."""
    ids = [row[0].id for row in rows]
    installed: dict[int, int] = {}
    if ids:
        query = select(
            InstalledSoftware.software_id,
            func.count(func.distinct(InstalledSoftware.device_id)),
        ).where(InstalledSoftware.software_id.in_(ids))
        if not scope.is_unrestricted:
            # Only a restricted scope needs the device's group; the index alone answers the rest.
            query = query.join(Device, Device.id == InstalledSoftware.device_id).where(
                in_scope(Device.device_group_id, scope)
            )
        installed = {
            software_id: int(count)
            for software_id, count in session.execute(
                query.group_by(InstalledSoftware.software_id)
            ).all()
        }
    views = []
    for software, rec_id, exposed, weaknesses, impact, exploit, alert in rows:
        views.append(
            SoftwareView(
                id=software.id,
                name=software.display_name,
                vendor=software.display_vendor,
                product_key=software.product_key,
                is_operating_system=software.is_operating_system,
                end_of_support_on=software.end_of_support_on,
                recommendation_id=rec_id,
                installed_devices=installed.get(software.id, 0),
                exposed_devices=int(exposed or 0),
                weaknesses=int(weaknesses or 0),
                exposure_impact=round(float(impact or 0.0), 2),
                public_exploit=bool(exploit),
                active_alert=bool(alert),
            )
        )
    return views


def list_software(
    session: Session,
    scope: Scope,
    *,
    search: str | None = None,
    sort: str = "name",
    descending: bool = False,
    vulnerable_only: bool = False,
    offset: int = 0,
    limit: int = 25,
) -> Page[SoftwareView]:
    """Software installed on devices in scope (every product for an unrestricted scope)."""
    if sort not in SOFTWARE_SORTS:
        raise ValueError(f"sort: unknown field {sort!r}; use one of {', '.join(SOFTWARE_SORTS)}")
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    query = _software_query(session, scope, vulnerable_only=vulnerable_only)
    columns = query.selected_columns
    if search:
        pattern = f"%{search.strip()}%"
        query = query.where(
            or_(
                Software.display_name.ilike(pattern),
                Software.display_vendor.ilike(pattern),
                Software.product_key.ilike(pattern),
            )
        )
    if vulnerable_only:
        query = query.where(columns.weaknesses > 0)
    total = session.execute(
        select(func.count()).select_from(query.with_only_columns(Software.id).subquery())
    ).scalar_one()
    sort_columns: dict[str, Any] = {
        "name": Software.display_name,
        "vendor": Software.display_vendor,
        "exposed_devices": columns.exposed_devices,
        "weaknesses": columns.weaknesses,
        "exposure_impact": columns.exposure_impact,
    }
    column = sort_columns[sort]
    rows = session.execute(
        query.order_by(desc(column) if descending else column, Software.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return make_page(_software_views(session, scope, list(rows)), int(total), offset, limit)


def get_software(session: Session, scope: Scope, software_id: int) -> SoftwareView | None:
    """One product; ``None`` when unknown or installed on no device in a restricted scope."""
    if is_empty(scope):
        return None
    row = session.execute(_software_query(session, scope).where(Software.id == software_id)).first()
    if row is None:
        return None
    return _software_views(session, scope, [row])[0]


def software_versions(
    session: Session, scope: Scope, software_id: int
) -> list[SoftwareVersionView]:
    """The versions of a product installed in scope, with devices and open weaknesses of each."""
    if is_empty(scope):
        return []
    software = session.get(Software, software_id)
    if software is None:
        return []
    installed: dict[str, int] = dict(
        session.execute(
            select(
                InstalledSoftware.version, func.count(func.distinct(InstalledSoftware.device_id))
            )
            .join(Device, Device.id == InstalledSoftware.device_id)
            .where(
                InstalledSoftware.software_id == software_id,
                in_scope(Device.device_group_id, scope),
            )
            .group_by(InstalledSoftware.version)
        )
        .tuples()
        .all()
    )
    vulnerable = {
        version: (int(cves), int(devices))
        for version, cves, devices in session.execute(
            select(
                Weakness.installed_version,
                func.count(func.distinct(Weakness.vulnerability_id)),
                func.count(func.distinct(Weakness.device_id)),
            )
            .join(Device, Device.id == Weakness.device_id)
            .where(
                Weakness.software_id == software_id,
                Weakness.fixed_at.is_(None),
                in_scope(Device.device_group_id, scope),
            )
            .group_by(Weakness.installed_version)
        ).all()
    }
    eos = set(software.end_of_support_versions or [])
    return [
        SoftwareVersionView(
            version=version,
            installed_devices=int(installed.get(version, 0)),
            exposed_devices=vulnerable.get(version, (0, 0))[1],
            weaknesses=vulnerable.get(version, (0, 0))[0],
            end_of_support=version in eos,
        )
        for version in sorted(set(installed) | set(vulnerable), key=_version_key, reverse=True)
    ]


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort versions numerically part by part ("10.2" after "9.8"), text parts after numbers."""
    parts = version.replace("-", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def top_vulnerable_software(session: Session, scope: Scope, n: int = 5) -> list[SoftwareView]:
    """The ``n`` products with the most weaknesses in scope."""
    return list_software(
        session, scope, sort="weaknesses", descending=True, vulnerable_only=True, limit=n
    ).items
