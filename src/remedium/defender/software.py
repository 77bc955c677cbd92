"""Software behind the Defender-compatible API (``/api/Software``), restricted to a :class:`Scope`:
the list and one product with their scoped figures, and the software of a recommendation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, distinct, func, literal, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.scoping import in_scope
from remedium.defender.odata import Field, FieldSet, FieldType
from remedium.defender.service import (
    SOFTWARE_RECOMMENDATION_PREFIX,
    Page,
    Query,
    ScopeTotals,
    apply_query,
    page_of,
    scope_totals,
)
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness
from remedium.recommendations.models import Recommendation, RecommendationGroupStat


def _software_columns(scope: Scope, totals: ScopeTotals) -> dict[str, Any]:
    """Correlated per-software figures over the scope (computed only for the rows returned)."""
    open_in_scope = and_(
        Weakness.software_id == Software.id,
        Weakness.fixed_at.is_(None),
        in_scope(Device.device_group_id, scope),
    )

    def weakness_query(*columns: Any) -> Any:
        return select(*columns).join(Device, Device.id == Weakness.device_id).where(open_in_scope)

    weaknesses = (
        weakness_query(func.count(distinct(Weakness.vulnerability_id)))
        .correlate(Software)
        .scalar_subquery()
    )
    exposed = (
        weakness_query(func.count(distinct(Weakness.device_id)))
        .correlate(Software)
        .scalar_subquery()
    )
    public_exploit = (
        weakness_query(Weakness.id)
        .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
        .where(Vulnerability.public_exploit.is_(True))
        .correlate(Software)
        .exists()
    )
    active_alert = (
        weakness_query(Weakness.id)
        .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
        .where(Vulnerability.kev_listed.is_(True))
        .correlate(Software)
        .exists()
    )
    stat = RecommendationGroupStat
    rec_key = literal(SOFTWARE_RECOMMENDATION_PREFIX) + Software.product_key
    impact_numerator = (
        select(
            func.coalesce(
                func.sum(stat.delta_weighted + stat.delta_high * totals.exposure.high_weight), 0.0
            )
        )
        .where(stat.recommendation_id == rec_key, in_scope(stat.device_group_id, scope))
        .correlate(Software)
        .scalar_subquery()
    )
    total = totals.exposure.total_weight
    impact = impact_numerator / total if total > 0 else impact_numerator * 0.0
    return {
        "weaknesses": weaknesses,
        "exposedMachines": exposed,
        "publicExploit": public_exploit,
        "activeAlert": active_alert,
        "impactScore": impact,
    }


def software_fields(columns: dict[str, Any]) -> FieldSet:
    """The filterable/sortable fields of the software entity."""
    return FieldSet(
        "Software",
        [
            Field("id", Software.product_key),
            Field("name", Software.product),
            Field("vendor", Software.vendor),
            Field("weaknesses", columns["weaknesses"], FieldType.NUMBER),
            Field("exposedMachines", columns["exposedMachines"], FieldType.NUMBER),
            Field("publicExploit", columns["publicExploit"], FieldType.BOOLEAN),
            Field("activeAlert", columns["activeAlert"], FieldType.BOOLEAN),
            Field("impactScore", columns["impactScore"], FieldType.NUMBER),
        ],
    )


def _software(scope: Scope, totals: ScopeTotals) -> tuple[Select[Any], dict[str, Any]]:
    columns = _software_columns(scope, totals)
    installed_in_scope = (
        select(InstalledSoftware.software_id)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .where(in_scope(Device.device_group_id, scope))
    )
    statement = select(Software, *(column.label(name) for name, column in columns.items())).where(
        Software.id.in_(installed_in_scope)
    )
    return statement, columns


def _software_item(row: Any) -> dict[str, Any]:
    software: Software = row[0]
    return {
        "id": software.product_key,
        "name": software.product,
        "vendor": software.vendor,
        "weaknesses": int(row.weaknesses or 0),
        "publicExploit": bool(row.publicExploit),
        "activeAlert": bool(row.activeAlert),
        "exposedMachines": int(row.exposedMachines or 0),
        "impactScore": float(row.impactScore or 0.0),
    }


def list_software(session: Session, scope: Scope, query: Query, *, where: Any = None) -> Page:
    """Software installed on devices in scope (and matching ``where``), with its weaknesses
    and exposure in scope."""
    statement, columns = _software(scope, scope_totals(session, scope))
    if where is not None:
        statement = statement.where(where)
    statement = apply_query(statement, software_fields(columns), query, Software.id)
    rows, more = page_of(session, statement, query)
    return Page([_software_item(row) for row in rows], more)


def get_software(session: Session, scope: Scope, software_id: str) -> dict[str, Any] | None:
    """One product by its Defender id (``vendor-_-product``), or None when not in scope."""
    statement, _ = _software(scope, scope_totals(session, scope))
    row = session.execute(
        statement.where(func.lower(Software.product_key) == software_id.strip().lower())
    ).first()
    return None if row is None else _software_item(row)


def recommendation_software(
    session: Session, scope: Scope, recommendation_id: str
) -> list[dict[str, Any]]:
    """The product a software recommendation is about (none for a configuration one)."""
    software_id = session.scalar(
        select(Recommendation.software_id).where(Recommendation.id == recommendation_id)
    )
    if software_id is None:
        return []
    statement, _ = _software(scope, scope_totals(session, scope))
    row = session.execute(statement.where(Software.id == software_id)).first()
    return [] if row is None else [_software_item(row)]
