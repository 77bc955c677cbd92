"""The connections settings page (``/settings/connectors``, administrators only).

One card per configured connection, and one per connector kind not configured yet; each with its
settings form (secrets write-only), a switch, and "Test connection".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Request, params
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Right
from remedium.connectors import api as connectors_api
from remedium.connectors import forms, registry, service
from remedium.connectors.models import ConnectorConfig
from remedium.web.templating import NavItem, PageContext, PageDep, register_navigation

ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
router = APIRouter(include_in_schema=False, dependencies=[ADMIN_RIGHT])

register_navigation(
    NavItem(
        "settings",
        "Ticketing connections",
        "/settings/connectors",
        120,
        "settings",
        Right.ADMIN,
        "admin",
    )
)


@dataclass
class ConnectionCard:
    """One connection on the page: stored or not yet, with its form fields."""

    name: str
    kind: str
    label: str
    description: str
    configured: bool
    enabled: bool
    valid: bool
    fields: list[forms.FieldView]
    errors: dict[str, str]
    test: tuple[bool, str] | None = None


async def _form_data(request: Request) -> dict[str, str]:
    # Read once here so the route itself can stay synchronous (its session lives in a thread).
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormData = Annotated[dict[str, str], Depends(_form_data)]


def _cards(
    session: Session,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    tested: dict[str, tuple[bool, str]] | None = None,
) -> list[ConnectionCard]:
    errors, tested = errors or {}, tested or {}
    cards = []
    for row in service.list_connections(session):
        if row.kind not in registry.CONNECTORS:
            continue
        shown = connectors_api.connection_out(row)
        cards.append(
            ConnectionCard(
                name=row.name,
                kind=row.kind,
                label=forms.LABELS.get(row.kind, row.kind),
                description=forms.DESCRIPTIONS.get(row.kind, ""),
                configured=True,
                enabled=row.enabled,
                valid=shown.valid,
                fields=forms.field_views(row.kind, shown.config if shown.valid else None),
                errors=errors.get(row.name, {}),
                test=tested.get(row.name),
            )
        )
    configured_kinds = {card.kind for card in cards}
    names = {card.name for card in cards}
    for kind in sorted(registry.CONNECTORS):
        if kind in configured_kinds or kind in names:
            continue
        cards.append(
            ConnectionCard(
                name=kind,
                kind=kind,
                label=forms.LABELS.get(kind, kind),
                description=forms.DESCRIPTIONS.get(kind, ""),
                configured=False,
                enabled=False,
                valid=True,
                fields=forms.field_views(kind, None),
                errors=errors.get(kind, {}),
            )
        )
    order = list(forms.LABELS)
    cards.sort(key=lambda c: (order.index(c.kind) if c.kind in order else 99, c.name))
    return cards


def _render(
    page: PageContext, session: Session, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return page.render(
        "connectors/settings.html",
        {
            "title": "Ticketing connections",
            "active": "settings",
            "cards": _cards(session, errors=extra.get("errors"), tested=extra.get("tested")),
            "saved": page.request.query_params.get("saved", ""),
            "switched": page.request.query_params.get("switched", ""),
        },
        status_code=status_code,
    )


@router.get("/settings/connectors", response_class=HTMLResponse)
def connectors_page(page: PageDep, session: SessionDep) -> HTMLResponse:
    """Every ticketing connection with its settings; all are off until switched on."""
    return _render(page, session)


def _redirect(query: str, name: str) -> RedirectResponse:
    return RedirectResponse(f"/settings/connectors?{query}={name}#connector-{name}", 303)


@router.post("/settings/connectors/{name}", response_class=HTMLResponse, response_model=None)
def save_connection(name: str, page: PageDep, session: SessionDep, form: FormData) -> Response:
    """Save a connection's settings (a new one stays switched off)."""
    if page.principal is None:
        raise HTTPException(404)
    kind = form.get("kind", "")
    row = session.get(ConnectorConfig, name)
    if kind not in registry.CONNECTORS or (row is None and name != kind):
        raise HTTPException(404, "There is no such connection.")
    parsed = forms.parse_form(kind, form)
    errors = parsed.errors or forms.validation_errors(
        kind, forms.stored_model(row, kind), parsed.values
    )
    if errors:
        return _render(page, session, status_code=422, errors={name: errors})
    service.configure(session, page.principal, name=name, kind=kind, config=parsed.values)
    return _redirect("saved", name)


def _switch(name: str, page: PageContext, session: Session, on: bool) -> Response:
    if page.principal is None:
        raise HTTPException(404)
    try:
        service.set_enabled(session, page.principal, name, on)
    except service.ConnectorConfigError:
        raise HTTPException(404, "There is no such connection.") from None
    return _redirect("switched", name)


@router.post("/settings/connectors/{name}/enable", response_model=None)
def enable_connection(name: str, page: PageDep, session: SessionDep) -> Response:
    """Switch a connection on."""
    return _switch(name, page, session, True)


@router.post("/settings/connectors/{name}/disable", response_model=None)
def disable_connection(name: str, page: PageDep, session: SessionDep) -> Response:
    """Switch a connection off."""
    return _switch(name, page, session, False)


@router.post("/settings/connectors/{name}/test", response_class=HTMLResponse)
def test_connection(name: str, page: PageDep, session: SessionDep) -> HTMLResponse:
    """Run "Test connection" and show its result on the connection's card."""
    if page.principal is None:
        raise HTTPException(404)
    try:
        result = connectors_api.run_test(session, page.principal, name)
    except service.ConnectorConfigError:
        raise HTTPException(404, "There is no such connection.") from None
    return _render(page, session, tested={name: result})
