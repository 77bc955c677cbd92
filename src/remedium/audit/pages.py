"""The audit history page: filter by action, actor, object and date; paged; CSV / JSON lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, StreamingResponse

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep
from remedium.audit.models import AuditEvent
from remedium.audit.service import AuditFilter, list_events
from remedium.auth.principal import Principal, Scope
from remedium.auth.templating import render
from remedium.db.base import utcnow
from remedium.web.export import csv_response, jsonl_response

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
EXPORT_COLUMNS = (
    "id", "occurred_at", "actor", "action", "object_type", "object_id", "device_group_id",
    "before", "after", "reason", "client_address",
)  # fmt: skip


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Change:
    """One field of an event's object: its value before and after (``None``: absent)."""

    field: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """The fields that differ between ``before`` and ``after``, in a readable form."""
    before, after = before or {}, after or {}
    fields = list(before) + [key for key in after if key not in before]
    return [
        Change(
            key.replace("_", " "),
            _text(before[key]) if key in before else None,
            _text(after[key]) if key in after else None,
        )
        for key in fields
        if before.get(key, ...) != after.get(key, ...)
    ]


def _filters(  # noqa: PLR0917 - the list's inputs, in the order the page reads them
    action: str, actor: str, object_type: str, object_id: str, since: str, until: str
) -> tuple[AuditFilter, dict[str, str]]:
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
    params = {
        key: value.strip()
        for key, value in {
            "action": action,
            "actor": actor,
            "object_type": object_type,
            "object_id": object_id,
            "since": since,
            "until": until,
        }.items()
        if value.strip()
    }
    return filters, params


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
    page: str = "1",
) -> HTMLResponse:
    """The history, newest first, limited to what the signed-in user may read."""
    number = int(page) if page.isdigit() and int(page) > 0 else 1
    filters, params = _filters(action, actor, object_type, object_id, since, until)
    rows, total = list_events(
        session,
        principal=principal,
        scope=scope,
        filters=filters,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pages = max(1, -(-total // PAGE_SIZE))
    query = urlencode(params)

    def page_url(n: int) -> str:
        return "/audit?" + urlencode({**params, "page": n})

    return render(
        request,
        "audit.html",
        {
            "title": "Audit history",
            "active": "audit",
            "events": [(event, changes(event.before, event.after)) for event in rows],
            "total": total,
            "page_number": number,
            "pages": pages,
            "first": (number - 1) * PAGE_SIZE + 1,
            "last": min(number * PAGE_SIZE, total),
            "page_url": page_url,
            "filters": params,
            "csv_url": "/audit/export.csv" + (f"?{query}" if query else ""),
            "jsonl_url": "/audit/export.jsonl" + (f"?{query}" if query else ""),
        },
    )


def _fetch(principal: Principal, scope: Scope, filters: AuditFilter) -> Any:
    def fetch(session: Session, offset: int, limit: int) -> Sequence[Sequence[Any]]:
        rows, _ = list_events(
            session,
            principal=principal,
            scope=scope,
            filters=filters,
            offset=offset,
            limit=limit,
        )
        return [_export_row(event) for event in rows]

    return fetch


def _export_row(event: AuditEvent) -> tuple[Any, ...]:
    return (
        event.id, event.occurred_at, event.actor_name, event.action, event.object_type,
        event.object_id, event.device_group_id, event.before, event.after, event.reason,
        event.client_address,
    )  # fmt: skip


def _export(
    request: Request,
    principal: Principal,
    scope: Scope,
    filters: AuditFilter,
    *,
    lines: bool,
) -> StreamingResponse:
    fetch = _fetch(principal, scope, filters)
    if lines:
        return jsonl_response(request, "audit-history", EXPORT_COLUMNS, fetch)

    def flat(session: Session, offset: int, limit: int) -> Sequence[Sequence[Any]]:
        return [
            [json.dumps(v, ensure_ascii=False, sort_keys=True) if isinstance(v, dict) else v
             for v in row]
            for row in fetch(session, offset, limit)
        ]  # fmt: skip

    return csv_response(request, "audit-history", EXPORT_COLUMNS, flat)


@router.get("/audit/export.csv", response_class=StreamingResponse)
def audit_export_csv(
    *,
    request: Request,
    principal: PrincipalDep,
    scope: ScopeDep,
    action: str = "",
    actor: str = "",
    object_type: str = "",
    object_id: str = "",
    since: str = "",
    until: str = "",
) -> StreamingResponse:
    """The filtered history as CSV (before and after as JSON objects)."""
    filters, _ = _filters(action, actor, object_type, object_id, since, until)
    return _export(request, principal, scope, filters, lines=False)


@router.get("/audit/export.jsonl", response_class=StreamingResponse)
def audit_export_jsonl(
    *,
    request: Request,
    principal: PrincipalDep,
    scope: ScopeDep,
    action: str = "",
    actor: str = "",
    object_type: str = "",
    object_id: str = "",
    since: str = "",
    until: str = "",
) -> StreamingResponse:
    """The filtered history as JSON lines, one event per line."""
    filters, _ = _filters(action, actor, object_type, object_id, since, until)
    return _export(request, principal, scope, filters, lines=True)
