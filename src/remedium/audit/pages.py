"""The audit history page: filter by action, actor, object and date; paged."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep
from remedium.audit.service import AuditFilter, list_events
from remedium.auth.templating import render
from remedium.db.base import utcnow

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    *,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    scope: ScopeDep,
    action: str = "",
    actor: str = "",
    object_type: str = "",
    object_id: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> HTMLResponse:
    """The history, newest first, limited to what the signed-in user may read."""
    page = max(page, 1)
    first_day, last_day = _day(since), _day(until)
    utc = utcnow().tzinfo
    filters = AuditFilter(
        action=action.strip() or None,
        actor=actor.strip() or None,
        object_type=object_type.strip() or None,
        object_id=object_id.strip() or None,
        since=datetime.combine(first_day, time(), utc) if first_day else None,
        until=datetime.combine(last_day + timedelta(days=1), time(), utc) if last_day else None,
    )
    rows, total = list_events(
        session,
        principal=principal,
        scope=scope,
        filters=filters,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    params = {
        key: value
        for key, value in {
            "action": action,
            "actor": actor,
            "object_type": object_type,
            "object_id": object_id,
            "since": since,
            "until": until,
        }.items()
        if value
    }
    pages = max(1, -(-total // PAGE_SIZE))

    def page_url(number: int) -> str:
        return "/audit?" + urlencode({**params, "page": number})

    return render(
        request,
        "audit.html",
        {
            "events": rows,
            "total": total,
            "page_number": page,
            "pages": pages,
            "page_url": page_url,
            "filters": params,
        },
    )
