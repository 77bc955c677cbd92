"""Web pages of vulnerabilities (Defender's "Weaknesses"): the list and one CVE's page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, StreamingResponse

from remedium.api.deps import SessionDep
from remedium.auth.principal import Right, Scope
from remedium.common.paging import Page
from remedium.intel.models import SEVERITIES
from remedium.intel.queries import (
    VULNERABILITY_SORTS,
    get_vulnerability,
    list_vulnerabilities,
    vulnerability_devices,
    vulnerability_software,
)
from remedium.web.export import csv_response, export_url, fields_of
from remedium.web.listing import ListState, clean, list_state
from remedium.web.templating import PageDep

router = APIRouter(include_in_schema=False)


def _filters(q: str | None, severity: str | None, threats: str | None) -> dict[str, str | None]:
    return {
        "q": clean(q),
        "severity": severity if severity in SEVERITIES else None,
        "threats": threats if threats in ("exploit", "kev") else None,
    }


def _query(  # noqa: PLR0917 - the list's inputs, in the order the page reads them
    session: Session,
    scope: Scope,
    filters: dict[str, str | None],
    state: ListState,
    offset: int,
    limit: int,
) -> Page[Any]:
    return list_vulnerabilities(
        session,
        scope,
        search=filters["q"],
        severity=filters["severity"],
        kev=True if filters["threats"] == "kev" else None,
        exploit=True if filters["threats"] == "exploit" else None,
        sort=state.sort,
        descending=state.descending,
        offset=offset,
        limit=limit,
    )


EXPORT_FIELDS = (
    "id", "severity", "cvss_v3_score", "cvss_v4_score", "epss", "public_exploit",
    "exploit_verified", "kev_listed", "kev_due_date", "published_on", "updated_on",
    "exposed_devices", "cwe_ids", "name",
)  # fmt: skip


@router.get("/vulnerabilities/export.csv", response_class=StreamingResponse)
def vulnerabilities_export(
    page: PageDep,
    *,
    q: str | None = None,
    severity: str | None = None,
    threats: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
) -> StreamingResponse:
    """The weaknesses list as the page shows it (filters, sort, device groups), as CSV."""
    state = list_state(sort, dir, None, allowed=VULNERABILITY_SORTS, default_sort="exposed_devices")
    filters = _filters(q, severity, threats)
    scope = page.scope

    def fetch(session: Session, offset: int, limit: int) -> list[list[Any]]:
        result = _query(session, scope, filters, state, offset, limit)
        return [fields_of(item, EXPORT_FIELDS) for item in result.items]

    return csv_response(page.request, "weaknesses", EXPORT_FIELDS, fetch)


@router.get("/vulnerabilities", response_class=HTMLResponse)
def vulnerabilities_list(
    page: PageDep,
    session: SessionDep,
    *,
    q: str | None = None,
    severity: str | None = None,
    threats: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """Vulnerabilities that expose devices in scope, filtered, sorted and paged."""
    state = list_state(sort, dir, p, allowed=VULNERABILITY_SORTS, default_sort="exposed_devices")
    filters = _filters(q, severity, threats)
    result = _query(session, page.scope, filters, state, state.offset, state.limit)
    return page.render(
        "vulnerabilities/list.html",
        {
            "title": "Weaknesses",
            "active": "vulnerabilities",
            "result": result,
            "state": state,
            "filters": filters,
            "severities": list(reversed(SEVERITIES)),
            "export_url": export_url("/vulnerabilities/export.csv", page.request.url.query),
        },
    )


@router.get("/vulnerabilities/{vulnerability_id}", response_class=HTMLResponse)
def vulnerability_detail(
    vulnerability_id: str, page: PageDep, session: SessionDep, *, p: str | None = None
) -> HTMLResponse:
    """One vulnerability: its facts, the software it reaches and the exposed devices."""
    vulnerability = get_vulnerability(session, page.scope, vulnerability_id)
    if vulnerability is None:
        raise HTTPException(404, f"There is no vulnerability {vulnerability_id} in remedium.")
    state = list_state(None, None, p, allowed=(), default_sort="name")
    return page.render(
        "vulnerabilities/detail.html",
        {
            "title": vulnerability.id,
            "active": "vulnerabilities",
            "v": vulnerability,
            "state": state,
            "devices": vulnerability_devices(
                session, page.scope, vulnerability_id, offset=state.offset, limit=state.limit
            ),
            "software": vulnerability_software(session, page.scope, vulnerability_id),
            # "File a CVE exception" only for those with the exception-handling right.
            "can_except": page.principal is not None and page.principal.has(Right.EXCEPTIONS),
        },
    )
