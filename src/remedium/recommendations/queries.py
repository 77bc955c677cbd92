"""Scoped read side of security recommendations.

Figures are summed over the ``recommendation_group_stat`` rows of the groups in scope, and
impacts are turned into score points with the scope's own sums (``group_score_stat``,
``group_secure_stat``), exactly as :mod:`remedium.scoring.engine` defines them. Sorting and
paging happen in SQL; a page costs a fixed handful of queries whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, case, desc, func, literal, or_, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.paging import Page, clamp_limit, make_page
from remedium.common.scoping import in_scope, is_empty
from remedium.intel.models import Vulnerability
from remedium.intel.queries import VulnerabilityView, vulnerability_view
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.coverage import (
    ACTIVE,
    FULL,
    PARTIAL,
    ExceptionStatus,
    exception_statuses,
)
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)
from remedium.scoring.queries import exposure_sums_both, secure_total_weight

RECOMMENDATION_SORTS = (
    "exposure_impact",
    "config_score_impact",
    "exposed_devices",
    "exposed_critical_devices",
    "total_devices",
    "weaknesses",
    "name",
    "related_component",
    "category",
    "remediation_type",
)
THREAT_FILTERS = ("exploit", "kev")
# The list's status filter: the default hides full exceptions (they leave the list as if
# fixed); "exceptions" shows the partial and full ones ("Show exceptions"), "all" everything.
STATUS_FILTERS = ("default", "active", "partial", "full", "exceptions", "all")


class RecommendationView(BaseModel):
    """A security recommendation with Defender's fields; every count and impact is scoped."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: str
    product_name: str
    vendor: str
    related_component: str
    recommended_version: str
    recommended_program: str
    recommended_vendor: str
    category: str
    sub_category: str
    severity_score: float
    remediation_type: str
    description: str
    remediation_text: str
    software_id: int | None
    configuration_id: str | None
    public_exploit: bool
    exploit_verified: bool
    active_alert: bool
    has_unpatchable_cve: bool
    max_severity: str
    max_cvss: float
    max_epss: float
    associated_threats: list[str]
    tags: list[str]
    status: str
    # Scoped figures.
    weaknesses: int
    exposed_devices: int
    exposed_critical_devices: int
    total_devices: int
    exposure_impact: float
    config_score_impact: float
    first_seen: datetime
    updated_at: datetime
    # After exceptions: devices with weaknesses no exception covers, and the impacts over them
    # measured on the after-exceptions scores; the exceptions covering it here (any impact).
    exposed_devices_after: int = 0
    exposure_impact_after: float = 0.0
    config_score_impact_after: float = 0.0
    exception_impacts: list[str] = []
    exception_ids: list[int] = []


class ExposedDeviceView(BaseModel):
    """A device a recommendation applies to, with what fixing it there would remove."""

    model_config = ConfigDict(frozen=True)

    device_id: int
    machine_id: str
    name: str
    device_group_id: int
    device_group_name: str
    os_platform: str
    os_version: str
    device_value: str
    internet_facing: bool
    is_intune_managed: bool
    exposure_level: str
    exposure_score: float
    last_seen: datetime
    weaknesses: int
    points: float
    score_delta: float


def _stat_subquery(scope: Scope) -> Any:
    """The recommendation's sums over the groups in scope, one row per recommendation."""
    stat = RecommendationGroupStat
    return (
        select(
            stat.recommendation_id.label("recommendation_id"),
            func.sum(stat.exposed_devices).label("exposed"),
            func.sum(stat.exposed_critical_devices).label("critical"),
            func.sum(stat.installed_devices).label("installed"),
            func.sum(stat.delta_weighted).label("delta_weighted"),
            func.sum(stat.delta_high).label("delta_high"),
            func.sum(stat.config_weight).label("config_weight"),
            func.sum(stat.exposed_devices_after).label("exposed_after"),
            func.sum(stat.delta_weighted_after).label("delta_weighted_after"),
            func.sum(stat.delta_high_after).label("delta_high_after"),
            func.sum(stat.config_weight_after).label("config_weight_after"),
        )
        .where(in_scope(stat.device_group_id, scope))
        .group_by(stat.recommendation_id)
        .subquery("scoped_stat")
    )


def _weakness_subquery(scope: Scope) -> Any:
    """Distinct vulnerabilities each recommendation removes within the scope."""
    link = RecommendationVulnerability
    return (
        select(
            link.recommendation_id.label("recommendation_id"),
            func.count(func.distinct(link.vulnerability_id)).label("scoped_weaknesses"),
        )
        .where(in_scope(link.device_group_id, scope), link.exposed_devices > 0)
        .group_by(link.recommendation_id)
        .subquery("scoped_weaknesses")
    )


def _scoped_select(
    session: Session, scope: Scope, *, outer: bool = False, weaknesses_in_sql: bool = True
) -> Select[Any]:
    """Recommendations with their scoped figures as labelled columns (not yet filtered).

    Counting distinct CVEs per recommendation over a restricted scope is the costly part at
    scale, so with ``weaknesses_in_sql=False`` the column is a placeholder and the caller fills
    it for the rows of its page with :func:`_page_weaknesses`. For the unrestricted scope the
    recompute's stored organisation-wide count is exact and free.
    """
    sums, sums_after = exposure_sums_both(session, scope)
    secure_total = secure_total_weight(session, scope)
    stat = _stat_subquery(scope)
    total_weight = sums.total_weight
    # The scope's weights are constants of this query, so impacts are plain column arithmetic
    # and the database can sort on them (see ExposureSums.impact and secure_score_impact).
    exposure_factor = 1.0 / total_weight if total_weight > 0 else 0.0
    secure_factor = 100.0 / secure_total if secure_total > 0 else 0.0
    exposed = func.coalesce(stat.c.exposed, 0)
    exposure_impact = (
        func.coalesce(stat.c.delta_weighted, 0.0)
        + literal(sums.high_weight) * func.coalesce(stat.c.delta_high, 0.0)
    ) * literal(exposure_factor)
    config_impact = func.coalesce(stat.c.config_weight, 0.0) * literal(secure_factor)
    # After exceptions the weights are the same (exceptions change no device's weight), the
    # deltas are measured on the after-exceptions scores over the uncovered devices.
    exposure_impact_after = (
        func.coalesce(stat.c.delta_weighted_after, 0.0)
        + literal(sums_after.high_weight) * func.coalesce(stat.c.delta_high_after, 0.0)
    ) * literal(exposure_factor)
    config_impact_after = func.coalesce(stat.c.config_weight_after, 0.0) * literal(secure_factor)
    # A software recommendation's weaknesses are its CVEs; a configuration recommendation is
    # one misconfiguration however many devices have it (as the recompute counts it).
    weak = None
    weaknesses: Any
    if scope.is_unrestricted:
        weaknesses = Recommendation.weaknesses
    elif weaknesses_in_sql:
        weak = _weakness_subquery(scope)
        weaknesses = case(
            (Recommendation.kind == "configuration", case((exposed > 0, 1), else_=0)),
            else_=func.coalesce(weak.c.scoped_weaknesses, 0),
        )
    else:
        weaknesses = literal(0)
    query = select(
        Recommendation,
        exposed.label("scoped_exposed_devices"),
        func.coalesce(stat.c.critical, 0).label("scoped_exposed_critical_devices"),
        func.coalesce(stat.c.installed, 0).label("scoped_total_devices"),
        exposure_impact.label("scoped_exposure_impact"),
        config_impact.label("scoped_config_score_impact"),
        weaknesses.label("scoped_weaknesses"),
        func.coalesce(stat.c.exposed_after, 0).label("scoped_exposed_devices_after"),
        exposure_impact_after.label("scoped_exposure_impact_after"),
        config_impact_after.label("scoped_config_score_impact_after"),
    )
    if outer:
        query = query.outerjoin(stat, stat.c.recommendation_id == Recommendation.id)
    else:
        query = query.join(stat, stat.c.recommendation_id == Recommendation.id)
    if weak is not None:
        query = query.outerjoin(weak, weak.c.recommendation_id == Recommendation.id)
    return query


def _page_weaknesses(session: Session, scope: Scope, rows: Sequence[Any]) -> dict[str, int]:
    """Scoped weakness counts of the recommendations on one page (one query)."""
    counts: dict[str, int] = {}
    software_ids = []
    for row in rows:
        rec: Recommendation = row[0]
        if rec.kind == "configuration":
            counts[rec.id] = 1 if row.scoped_exposed_devices else 0
        else:
            software_ids.append(rec.id)
    if software_ids:
        link = RecommendationVulnerability
        counts.update(
            session.execute(
                select(link.recommendation_id, func.count(func.distinct(link.vulnerability_id)))
                .where(
                    link.recommendation_id.in_(software_ids),
                    in_scope(link.device_group_id, scope),
                    link.exposed_devices > 0,
                )
                .group_by(link.recommendation_id)
            )
            .tuples()
            .all()
        )
    return counts


def _views(
    session: Session,
    scope: Scope,
    rows: Sequence[Any],
    *,
    weaknesses_in_sql: bool,
    statuses: dict[str, ExceptionStatus] | None = None,
) -> list[RecommendationView]:
    if statuses is None:
        statuses = exception_statuses(session, scope)
    if scope.is_unrestricted or weaknesses_in_sql:
        return [_view(row, statuses=statuses) for row in rows]
    counts = _page_weaknesses(session, scope, rows)
    return [_view(row, counts.get(row[0].id, 0), statuses=statuses) for row in rows]


def _view(
    row: Any, weaknesses: int | None = None, *, statuses: dict[str, ExceptionStatus]
) -> RecommendationView:
    rec: Recommendation = row[0]
    covered = statuses.get(rec.id)
    return RecommendationView(
        id=rec.id,
        name=rec.name,
        kind=rec.kind,
        product_name=rec.product_name,
        vendor=rec.vendor,
        related_component=rec.related_component,
        recommended_version=rec.recommended_version,
        recommended_program=rec.recommended_program,
        recommended_vendor=rec.recommended_vendor,
        category=rec.category,
        sub_category=rec.sub_category,
        severity_score=rec.severity_score,
        remediation_type=rec.remediation_type,
        description=rec.description,
        remediation_text=rec.remediation_text,
        software_id=rec.software_id,
        configuration_id=rec.configuration_id,
        public_exploit=rec.public_exploit,
        exploit_verified=rec.exploit_verified,
        active_alert=rec.active_alert,
        has_unpatchable_cve=rec.has_unpatchable_cve,
        max_severity=rec.max_severity,
        max_cvss=rec.max_cvss,
        max_epss=rec.max_epss,
        associated_threats=list(rec.associated_threats or []),
        tags=list(rec.tags or []),
        status=covered.status if covered is not None else ACTIVE,
        exception_impacts=covered.impacts if covered is not None else [],
        exception_ids=covered.exception_ids if covered is not None else [],
        exposed_devices_after=int(row.scoped_exposed_devices_after or 0),
        exposure_impact_after=round(float(row.scoped_exposure_impact_after or 0.0), 2),
        config_score_impact_after=round(float(row.scoped_config_score_impact_after or 0.0), 2),
        weaknesses=int(row.scoped_weaknesses or 0) if weaknesses is None else weaknesses,
        exposed_devices=int(row.scoped_exposed_devices or 0),
        exposed_critical_devices=int(row.scoped_exposed_critical_devices or 0),
        total_devices=int(row.scoped_total_devices or 0),
        exposure_impact=round(float(row.scoped_exposure_impact or 0.0), 2),
        config_score_impact=round(float(row.scoped_config_score_impact or 0.0), 2),
        first_seen=rec.first_seen,
        updated_at=rec.updated_at,
    )


def _filters(
    search: str | None,
    category: str | None,
    remediation_type: str | None,
    kind: str | None,
    threats: str | None,
) -> list[Any]:
    """The SQL conditions of the list's search box and filters."""
    conditions: list[Any] = []
    if search:
        pattern = f"%{search.strip()}%"
        conditions.append(
            or_(
                Recommendation.name.ilike(pattern),
                Recommendation.related_component.ilike(pattern),
                Recommendation.vendor.ilike(pattern),
                Recommendation.product_name.ilike(pattern),
                Recommendation.id.ilike(pattern),
            )
        )
    if category:
        conditions.append(Recommendation.category == category)
    if remediation_type:
        conditions.append(Recommendation.remediation_type == remediation_type)
    if kind:
        conditions.append(Recommendation.kind == kind)
    if threats == "exploit":
        conditions.append(Recommendation.public_exploit.is_(True))
    elif threats == "kev":
        conditions.append(Recommendation.active_alert.is_(True))
    return conditions


def _status_filter(statuses: dict[str, ExceptionStatus], status: str) -> list[Any]:
    """The SQL condition of the status filter (:data:`STATUS_FILTERS`), if any."""
    if status == "all":
        return []
    full = sorted(r for r, v in statuses.items() if v.status == FULL)
    partial = sorted(r for r, v in statuses.items() if v.status == PARTIAL)
    wanted = {
        "full": full,
        "partial": partial,
        "exceptions": full + partial,
    }.get(status)
    if wanted is not None:
        return [Recommendation.id.in_(wanted)]
    if status == "active":
        return [Recommendation.id.not_in(full + partial)]
    if full:
        return [Recommendation.id.not_in(full)]
    return []


def list_recommendations(
    session: Session,
    scope: Scope,
    *,
    search: str | None = None,
    category: str | None = None,
    remediation_type: str | None = None,
    kind: str | None = None,
    threats: str | None = None,
    sort: str = "exposure_impact",
    descending: bool = True,
    offset: int = 0,
    limit: int = 25,
    status: str | None = None,
) -> Page[RecommendationView]:
    """Recommendations with exposed devices in scope, filtered, sorted and paged in SQL.

    ``sort`` is one of :data:`RECOMMENDATION_SORTS`, ``threats`` one of
    :data:`THREAT_FILTERS` and ``status`` one of :data:`STATUS_FILTERS` (default: full
    exceptions hidden); anything else raises ``ValueError`` naming the parameter.
    """
    status = status or "default"
    if status not in STATUS_FILTERS:
        raise ValueError(f"status: use one of {', '.join(STATUS_FILTERS)}")
    if sort not in RECOMMENDATION_SORTS:
        raise ValueError(
            f"sort: unknown field {sort!r}; use one of {', '.join(RECOMMENDATION_SORTS)}"
        )
    if threats is not None and threats not in THREAT_FILTERS:
        raise ValueError(f"threats: use one of {', '.join(THREAT_FILTERS)}")
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    in_sql = sort == "weaknesses"
    query = _scoped_select(session, scope, weaknesses_in_sql=in_sql)
    conditions: list[Any] = [
        query.selected_columns.scoped_exposed_devices > 0,
        *_filters(search, category, remediation_type, kind, threats),
    ]
    # One read of the exceptions in effect serves the filter and the rows' status.
    statuses = exception_statuses(session, scope)
    conditions += _status_filter(statuses, status)
    query = query.where(*conditions)
    total = session.execute(
        select(func.count()).select_from(query.with_only_columns(Recommendation.id).subquery())
    ).scalar_one()
    columns = query.selected_columns
    sort_column: Any = (
        getattr(Recommendation, sort)
        if sort in {"name", "related_component", "category", "remediation_type"}
        else columns[f"scoped_{sort}"]
    )
    order = desc(sort_column) if descending else sort_column
    rows = session.execute(
        query.order_by(order, Recommendation.id).offset(offset).limit(limit)
    ).all()
    items = _views(session, scope, rows, weaknesses_in_sql=in_sql, statuses=statuses)
    return make_page(items, int(total), offset, limit)


def get_recommendation(
    session: Session, scope: Scope, recommendation_id: str
) -> RecommendationView | None:
    """One recommendation with scoped figures; ``None`` when unknown or not in the scope."""
    if is_empty(scope):
        return None
    query = _scoped_select(session, scope, outer=True, weaknesses_in_sql=False).where(
        Recommendation.id == recommendation_id
    )
    row = session.execute(query).first()
    if row is None:
        return None
    if not scope.is_unrestricted:
        visible = session.execute(
            select(RecommendationGroupStat.recommendation_id)
            .where(
                RecommendationGroupStat.recommendation_id == recommendation_id,
                in_scope(RecommendationGroupStat.device_group_id, scope),
            )
            .limit(1)
        ).first()
        if visible is None:
            return None
    return _views(session, scope, [row], weaknesses_in_sql=False)[0]


def recommendation_devices(
    session: Session,
    scope: Scope,
    recommendation_id: str,
    *,
    offset: int = 0,
    limit: int = 25,
) -> Page[ExposedDeviceView]:
    """The exposed devices in scope of one recommendation, most affected first."""
    limit = clamp_limit(limit)
    offset = max(0, offset)
    if is_empty(scope):
        return make_page([], 0, offset, limit)
    link = DeviceRecommendation
    conditions = (
        link.recommendation_id == recommendation_id,
        in_scope(Device.device_group_id, scope),
    )
    total = session.execute(
        select(func.count())
        .select_from(link)
        .join(Device, Device.id == link.device_id)
        .where(*conditions)
    ).scalar_one()
    rows = session.execute(
        select(Device, DeviceGroup.name, link.weaknesses, link.points, link.score_delta)
        .select_from(link)
        .join(Device, Device.id == link.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(*conditions)
        .order_by(desc(link.score_delta), Device.name, Device.id)
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        ExposedDeviceView(
            device_id=device.id,
            machine_id=device.machine_id,
            name=device.name,
            device_group_id=device.device_group_id,
            device_group_name=group_name,
            os_platform=device.os_platform,
            os_version=device.os_version,
            device_value=device.device_value,
            internet_facing=device.internet_facing,
            is_intune_managed=device.is_intune_managed,
            exposure_level=device.exposure_level,
            exposure_score=round(device.exposure_score, 2),
            last_seen=device.last_seen,
            weaknesses=weaknesses,
            points=points,
            score_delta=round(score_delta, 2),
        )
        for device, group_name, weaknesses, points, score_delta in rows
    ]
    return make_page(items, int(total), offset, limit)


def recommendation_vulnerabilities(
    session: Session, scope: Scope, recommendation_id: str
) -> list[VulnerabilityView]:
    """The vulnerabilities a recommendation removes in scope, most severe first."""
    if is_empty(scope):
        return []
    link = RecommendationVulnerability
    exposed = func.sum(link.exposed_devices).label("exposed")
    scoped = (
        select(link.vulnerability_id.label("vulnerability_id"), exposed)
        .where(link.recommendation_id == recommendation_id, in_scope(link.device_group_id, scope))
        .group_by(link.vulnerability_id)
        .subquery()
    )
    rows = session.execute(
        select(Vulnerability, scoped.c.exposed)
        .join(scoped, scoped.c.vulnerability_id == Vulnerability.id)
        .where(scoped.c.exposed > 0)
        .order_by(desc(func.coalesce(Vulnerability.cvss_v3_score, 0.0)), Vulnerability.id)
    ).all()
    return [vulnerability_view(vulnerability, int(count)) for vulnerability, count in rows]


def software_figures_subquery(session: Session, scope: Scope) -> Any:
    """Scoped figures of each software recommendation, keyed by ``software_id``.

    Columns: ``software_id``, ``recommendation_id``, ``exposed_devices``, ``weaknesses``,
    ``exposure_impact``, ``public_exploit``, ``active_alert`` (for the software inventory).
    """
    query = _scoped_select(session, scope)
    columns = query.selected_columns
    return (
        query.with_only_columns(
            Recommendation.software_id.label("software_id"),
            Recommendation.id.label("recommendation_id"),
            columns.scoped_exposed_devices.label("exposed_devices"),
            columns.scoped_weaknesses.label("weaknesses"),
            columns.scoped_exposure_impact.label("exposure_impact"),
            Recommendation.public_exploit.label("public_exploit"),
            Recommendation.active_alert.label("active_alert"),
        )
        .where(Recommendation.kind == "software", Recommendation.software_id.is_not(None))
        .subquery("software_figures")
    )


def top_recommendations(session: Session, scope: Scope, n: int = 5) -> list[RecommendationView]:
    """The ``n`` recommendations with the largest exposure impact in scope."""
    return list_recommendations(session, scope, limit=n).items
