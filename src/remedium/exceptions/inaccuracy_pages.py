"""Web pages of "Report inaccuracy": the report form and the list of reports.

Recommendation and vulnerability pages link to ``/inaccuracy/new?recommendation=ID`` or
``?vulnerability=CVE``. ``/inaccuracy`` lists reports (every one for administrators, one's own
for everyone else, as the service decides); administrators confirm, dismiss, or turn a confirmed
wrong finding into an "Other \u2013 false positive" exception.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Form, HTTPException
from fastapi import params as fastapi_params
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Right
from remedium.common.paging import make_page
from remedium.exceptions import inaccuracy, service
from remedium.exceptions.models import (
    INACCURACY_CATEGORIES,
    INACCURACY_CATEGORY_LABELS,
    INACCURACY_STATUSES,
)
from remedium.intel.models import Vulnerability
from remedium.recommendations.models import Recommendation
from remedium.web.listing import list_state
from remedium.web.templating import PageContext, PageDep

VIEW_RIGHT = cast(fastapi_params.Depends, require(Right.VIEW))
ADMIN_RIGHT = cast(fastapi_params.Depends, require(Right.ADMIN))

router = APIRouter(include_in_schema=False, dependencies=[VIEW_RIGHT])


def _target(
    session: Session, recommendation: str | None, vulnerability: str | None
) -> tuple[str, str, str]:
    """(object type, id, display name) of what is reported, or 404."""
    if recommendation:
        rec = session.get(Recommendation, recommendation)
        if rec is not None:
            return "recommendation", rec.id, rec.name
    elif vulnerability and session.get(Vulnerability, vulnerability) is not None:
        return "vulnerability", vulnerability, vulnerability
    raise HTTPException(404, "Report an inaccuracy from a recommendation or a vulnerability page.")


def _form(
    page: PageContext,
    session: Session,
    *,
    recommendation: str | None,
    vulnerability: str | None,
    values: dict[str, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    object_type, object_id, name = _target(session, recommendation, vulnerability)
    return page.render(
        "exceptions/inaccuracy_new.html",
        {
            "title": "Report inaccuracy",
            "active": "inaccuracy",
            "object_type": object_type,
            "object_id": object_id,
            "object_name": name,
            "categories": [(c, INACCURACY_CATEGORY_LABELS[c]) for c in INACCURACY_CATEGORIES],
            "values": values or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/inaccuracy/new", response_class=HTMLResponse)
def new_report(
    page: PageDep,
    session: SessionDep,
    recommendation: str | None = None,
    vulnerability: str | None = None,
) -> HTMLResponse:
    """The "Report inaccuracy" form for a recommendation or a vulnerability."""
    return _form(page, session, recommendation=recommendation, vulnerability=vulnerability)


@router.post("/inaccuracy/new", response_class=HTMLResponse, response_model=None)
def submit_report(  # noqa: PLR0917 - one argument per form field
    page: PageDep,
    session: SessionDep,
    recommendation: Annotated[str, Form()] = "",
    vulnerability: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    details: Annotated[str, Form()] = "",
) -> Response:
    """File the report and show the list of reports, or the form again with what went wrong."""
    principal = page.principal
    assert principal is not None
    object_type, object_id, _ = _target(session, recommendation or None, vulnerability or None)
    try:
        report = inaccuracy.report_inaccuracy(
            session,
            principal,
            object_type=object_type,
            object_id=object_id,
            category=category,
            details=details.strip(),
        )
    except service.ExceptionsError as error:
        session.rollback()
        return _form(
            page,
            session,
            recommendation=recommendation or None,
            vulnerability=vulnerability or None,
            values={"category": category, "details": details},
            error=error.message,
            status_code=422,
        )
    return RedirectResponse(f"/inaccuracy?reported={report.id}", 303)


def _names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(Recommendation.id, Recommendation.name).where(Recommendation.id.in_(ids))
    ).all()
    return {row.id: row.name for row in rows}


def _list(
    page: PageContext,
    session: Session,
    *,
    status: str | None = None,
    p: str | None = None,
    reported: bool = False,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    principal = page.principal
    assert principal is not None
    state = list_state(None, None, p, allowed=("created",), default_sort="created")
    chosen = status if status in INACCURACY_STATUSES else None
    rows, total = inaccuracy.list_reports(
        session, principal, status=chosen, offset=state.offset, limit=state.limit
    )
    names = _names(session, {r.object_id for r in rows if r.object_type == "recommendation"})
    items: list[dict[str, Any]] = [
        {
            "report": r,
            "name": names.get(r.object_id, r.object_id),
            "category_label": INACCURACY_CATEGORY_LABELS.get(r.category, r.category),
            "can_become_exception": r.status == "confirmed"
            and r.exception_id is None
            and r.category in inaccuracy.FALSE_POSITIVE_CATEGORIES,
        }
        for r in rows
    ]
    return page.render(
        "exceptions/inaccuracy_list.html",
        {
            "title": "Inaccuracy reports",
            "active": "inaccuracy",
            "result": make_page(items, total, state.offset, state.limit),
            "state": state,
            "status": chosen,
            "statuses": INACCURACY_STATUSES,
            "is_admin": principal.has(Right.ADMIN),
            "reported": reported,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/inaccuracy", response_class=HTMLResponse)
def reports(
    page: PageDep,
    session: SessionDep,
    status: str | None = None,
    p: str | None = None,
    reported: str | None = None,
) -> HTMLResponse:
    """Inaccuracy reports with their status; administrators resolve them here."""
    return _list(page, session, status=status, p=p, reported=bool(reported))


def _resolve(
    page: PageContext, session: Session, report_id: int, *, confirm: bool, comment: str
) -> Response:
    principal = page.principal
    assert principal is not None
    act = inaccuracy.confirm_report if confirm else inaccuracy.dismiss_report
    try:
        act(session, principal, report_id, comment=comment.strip())
    except service.ExceptionNotFound:
        raise HTTPException(404, "This report does not exist.") from None
    except service.ExceptionsError as error:
        session.rollback()
        return _list(page, session, error=error.message, status_code=409)
    return RedirectResponse("/inaccuracy", 303)


@router.post("/inaccuracy/{report_id}/confirm", dependencies=[ADMIN_RIGHT], response_model=None)
def confirm(
    report_id: int, page: PageDep, session: SessionDep, comment: Annotated[str, Form()] = ""
) -> Response:
    """Confirm a new report."""
    return _resolve(page, session, report_id, confirm=True, comment=comment)


@router.post("/inaccuracy/{report_id}/dismiss", dependencies=[ADMIN_RIGHT], response_model=None)
def dismiss(
    report_id: int, page: PageDep, session: SessionDep, comment: Annotated[str, Form()] = ""
) -> Response:
    """Dismiss a new report."""
    return _resolve(page, session, report_id, confirm=False, comment=comment)


@router.post("/inaccuracy/{report_id}/exception", dependencies=[ADMIN_RIGHT], response_model=None)
def to_exception(report_id: int, page: PageDep, session: SessionDep) -> Response:
    """ "Turn into exception": file "Other \u2013 false positive" for a confirmed report."""
    principal = page.principal
    assert principal is not None
    try:
        exc = inaccuracy.report_to_exception(session, principal, report_id)
    except service.ExceptionNotFound:
        raise HTTPException(404, "This report does not exist.") from None
    except service.ExceptionsError as error:
        session.rollback()
        return _list(page, session, error=error.message, status_code=409)
    return RedirectResponse(f"/remediation/exceptions/{exc.id}?filed=1", 303)
