"""``/api/v1/recommendations``: security recommendations with figures for your scope."""

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
from remedium.recommendations import queries
from remedium.recommendations.schemas import (
    ExposedDevicePage,
    RecommendationPage,
    RecommendationView,
    VulnerabilityView,
)

router = APIRouter(prefix="/api/v1", tags=["recommendations"], dependencies=[VIEW_RIGHT])


@router.get("/recommendations", response_model=RecommendationPage)
def list_recommendations(
    *,
    session: SessionDep,
    scope: ScopeDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
    device_group: DeviceGroupParam = None,
    category: Literal["Accounts", "Application", "Network", "OS", "SecurityControls"] | None = None,
    remediation_type: Literal[
        "ConfigurationChange", "Update", "Upgrade", "AttentionRequired", "Uninstall"
    ]
    | None = None,
    kind: Literal["software", "configuration"] | None = None,
    threats: Literal["exploit", "kev"] | None = None,
    status: Annotated[
        Literal["default", "active", "partial", "full", "exceptions", "all"] | None,
        Query(
            description="Exception status; by default full exceptions are left out, "
            "'exceptions' lists partial and full ones, 'all' everything."
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(description=f"One of {', '.join(queries.RECOMMENDATION_SORTS)}; '-' for descending."),
    ] = "-exposure_impact",
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> RecommendationPage:
    """Recommendations with exposed devices in scope, biggest exposure impact first."""
    field, descending = sort_param(sort, queries.RECOMMENDATION_SORTS)
    return queries.list_recommendations(
        session,
        narrowed_scope(session, scope, device_group),
        search=search,
        category=category,
        remediation_type=remediation_type,
        kind=kind,
        threats=threats,
        status=status,
        sort=field,
        descending=descending,
        offset=offset,
        limit=limit,
    )


@router.get("/recommendations/{recommendation_id}", response_model=RecommendationView)
def get_recommendation(
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
    device_group: DeviceGroupParam = None,
) -> RecommendationView:
    """One recommendation, with figures for your scope (or the ``device_group`` filter)."""
    recommendation = queries.get_recommendation(
        session, narrowed_scope(session, scope, device_group), recommendation_id
    )
    if recommendation is None:
        not_found("recommendation", recommendation_id)
    return recommendation


@router.get("/recommendations/{recommendation_id}/devices", response_model=ExposedDevicePage)
def recommendation_devices(
    session: SessionDep,
    scope: ScopeDep,
    recommendation_id: str,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> ExposedDevicePage:
    """The exposed devices in scope, biggest score reduction first."""
    if queries.get_recommendation(session, scope, recommendation_id) is None:
        not_found("recommendation", recommendation_id)
    return queries.recommendation_devices(
        session, scope, recommendation_id, offset=offset, limit=limit
    )


@router.get(
    "/recommendations/{recommendation_id}/vulnerabilities", response_model=list[VulnerabilityView]
)
def recommendation_vulnerabilities(
    session: SessionDep, scope: ScopeDep, recommendation_id: str
) -> list[VulnerabilityView]:
    """The vulnerabilities this recommendation removes in scope."""
    if queries.get_recommendation(session, scope, recommendation_id) is None:
        not_found("recommendation", recommendation_id)
    return queries.recommendation_vulnerabilities(session, scope, recommendation_id)
