"""Web pages of security recommendations: the list and the detail page (Defender's flyout)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, StreamingResponse

from remedium.api.deps import SessionDep
from remedium.auth.principal import Right, Scope
from remedium.common.paging import Page
from remedium.exceptions.models import (
    ACTIVE_STATUSES,
    IMPACT_LABELS,
    JUSTIFICATION_LABELS,
    STATUS_LABELS,
)
from remedium.exceptions.service import ExceptionFilter, list_exceptions
from remedium.intel.models import CATEGORY_LABELS, CONFIGURATION_CATEGORIES
from remedium.recommendations.models import REMEDIATION_TYPES
from remedium.recommendations.queries import (
    RECOMMENDATION_SORTS,
    STATUS_FILTERS,
    THREAT_FILTERS,
    RecommendationView,
    get_recommendation,
    list_recommendations,
    recommendation_devices,
    recommendation_vulnerabilities,
)
from remedium.web.export import csv_response, export_url, fields_of
from remedium.web.listing import ListState, clean, list_state
from remedium.web.templating import REMEDIATION_LABELS, PageDep

router = APIRouter(include_in_schema=False)

THREAT_LABELS = {"exploit": "Exploit available", "kev": "Actively exploited (KEV)"}
STATUS_FILTER_LABELS = {
    "default": "Active and partial exceptions",
    "active": "Active",
    "partial": "Partial exception",
    "full": "Full exception",
    "exceptions": "Exceptions (partial and full)",
    "all": "All",
}


def _filters(
    q: str | None,
    category: str | None,
    remediation_type: str | None,
    threats: str | None,
    status: str | None,
) -> dict[str, str | None]:
    return {
        "q": clean(q),
        "category": category if category in CONFIGURATION_CATEGORIES else None,
        "remediation_type": remediation_type if remediation_type in REMEDIATION_TYPES else None,
        "threats": threats if threats in THREAT_FILTERS else None,
        # Full exceptions are left out by default; "Show exceptions" asks for them.
        "status": status if status in STATUS_FILTERS and status != "default" else None,
    }


def _query(  # noqa: PLR0917 - the list's inputs, in the order the page reads them
    session: Session,
    scope: Scope,
    filters: dict[str, str | None],
    state: ListState,
    offset: int,
    limit: int,
) -> Page[RecommendationView]:
    return list_recommendations(
        session,
        scope,
        search=filters["q"],
        category=filters["category"],
        remediation_type=filters["remediation_type"],
        threats=filters["threats"],
        status=filters["status"],
        sort=state.sort,
        descending=state.descending,
        offset=offset,
        limit=limit,
    )


EXPORT_FIELDS = (
    "id", "name", "category", "remediation_type", "related_component", "recommended_version",
    "exposed_devices", "exposed_critical_devices", "total_devices", "weaknesses",
    "exposure_impact", "config_score_impact", "status", "exposed_devices_after",
    "exposure_impact_after", "config_score_impact_after", "public_exploit", "active_alert",
    "max_severity", "max_cvss", "tags", "first_seen",
)  # fmt: skip


@router.get("/recommendations/export.csv", response_class=StreamingResponse)
def recommendations_export(
    page: PageDep,
    *,
    q: str | None = None,
    category: str | None = None,
    remediation_type: str | None = None,
    threats: str | None = None,
    status: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
) -> StreamingResponse:
    """The list as the page shows it (filters, sort, device groups), every page, as CSV."""
    state = list_state(
        sort, dir, None, allowed=RECOMMENDATION_SORTS, default_sort="exposure_impact"
    )
    filters = _filters(q, category, remediation_type, threats, status)
    scope = page.scope

    def fetch(session: Session, offset: int, limit: int) -> list[list[Any]]:
        result = _query(session, scope, filters, state, offset, limit)
        return [fields_of(item, EXPORT_FIELDS) for item in result.items]

    return csv_response(page.request, "security-recommendations", EXPORT_FIELDS, fetch)


@router.get("/recommendations", response_class=HTMLResponse)
def recommendations_list(
    page: PageDep,
    session: SessionDep,
    *,
    q: str | None = None,
    category: str | None = None,
    remediation_type: str | None = None,
    threats: str | None = None,
    status: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """Security recommendations in scope, filtered, sorted and paged."""
    state = list_state(sort, dir, p, allowed=RECOMMENDATION_SORTS, default_sort="exposure_impact")
    filters = _filters(q, category, remediation_type, threats, status)
    result = _query(session, page.scope, filters, state, state.offset, state.limit)
    return page.render(
        "recommendations/list.html",
        {
            "title": "Security recommendations",
            "active": "recommendations",
            "result": result,
            "state": state,
            "filters": filters,
            # Like Defender's optional columns: the "after exceptions" figures appear when the
            # page holds a recommendation under exception, or when exceptions are asked for.
            "show_after": bool(filters["status"])
            or any(rec.status != "Active" for rec in result.items),
            "categories": [(c, CATEGORY_LABELS[c]) for c in CONFIGURATION_CATEGORIES],
            "remediation_types": [(t, REMEDIATION_LABELS[t]) for t in REMEDIATION_TYPES],
            "threat_options": list(THREAT_LABELS.items()),
            "status_options": list(STATUS_FILTER_LABELS.items()),
            "export_url": export_url("/recommendations/export.csv", page.request.url.query),
        },
    )


@router.get("/recommendations/{recommendation_id:path}", response_class=HTMLResponse)
def recommendation_detail(
    recommendation_id: str, page: PageDep, session: SessionDep, *, p: str | None = None
) -> HTMLResponse:
    """One recommendation: what it fixes, its threats and impacts, exposed devices, weaknesses."""
    recommendation = get_recommendation(session, page.scope, recommendation_id)
    if recommendation is None:
        raise HTTPException(
            404, "There is no such recommendation in the device groups you can see."
        )
    state = list_state(None, None, p, allowed=(), default_sort="score_delta")
    devices = recommendation_devices(
        session, page.scope, recommendation_id, offset=state.offset, limit=state.limit
    )
    return page.render(
        "recommendations/detail.html",
        {
            "title": recommendation.name,
            "active": "recommendations",
            "rec": recommendation,
            "devices": devices,
            "state": state,
            "vulnerabilities": recommendation_vulnerabilities(
                session, page.scope, recommendation_id
            ),
            # "Remediation options" is offered only to those who may request remediation.
            "can_remediate": page.principal is not None and page.principal.has(Right.REMEDIATION),
            # "Exception options" only to those with the exception-handling right.
            "can_except": page.principal is not None and page.principal.has(Right.EXCEPTIONS),
            "exceptions": [
                e
                for e in list_exceptions(
                    session,
                    page.scope,
                    ExceptionFilter(recommendation_id=recommendation_id),
                    limit=100,
                )[0]
                if e.status in ACTIVE_STATUSES
            ],
            "impact_labels": IMPACT_LABELS,
            "justification_labels": JUSTIFICATION_LABELS,
            "status_labels": STATUS_LABELS,
        },
    )
