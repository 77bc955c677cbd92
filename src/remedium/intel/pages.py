"""Web pages of vulnerabilities (Defender's "Weaknesses"): the list and one CVE's page."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.responses import HTMLResponse

from remedium.api.deps import SessionDep
from remedium.auth.principal import Right
from remedium.intel.models import SEVERITIES
from remedium.intel.queries import (
    VULNERABILITY_SORTS,
    get_vulnerability,
    list_vulnerabilities,
    vulnerability_devices,
    vulnerability_software,
)
from remedium.web.listing import clean, list_state
from remedium.web.templating import PageDep

router = APIRouter(include_in_schema=False)


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
    filters = {
        "q": clean(q),
        "severity": severity if severity in SEVERITIES else None,
        "threats": threats if threats in ("exploit", "kev") else None,
    }
    result = list_vulnerabilities(
        session,
        page.scope,
        search=filters["q"],
        severity=filters["severity"],
        kev=True if filters["threats"] == "kev" else None,
        exploit=True if filters["threats"] == "exploit" else None,
        sort=state.sort,
        descending=state.descending,
        offset=state.offset,
        limit=state.limit,
    )
    return page.render(
        "vulnerabilities/list.html",
        {
            "title": "Weaknesses",
            "active": "vulnerabilities",
            "result": result,
            "state": state,
            "filters": filters,
            "severities": list(reversed(SEVERITIES)),
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
