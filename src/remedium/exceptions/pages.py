"""Web pages of exceptions: the Remediation page's Exceptions tab, the exception view, filing.

Lists use the page's scope (the user's groups narrowed by the group filter); actions use the
user's own scope, like the API. Recommendation and vulnerability pages link to the filing form
with ``/remediation/exceptions/new?recommendation=ID`` or ``?vulnerability=CVE``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Form, HTTPException
from fastapi import params as fastapi_params
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Principal, Right
from remedium.common.paging import make_page
from remedium.common.scoping import in_scope
from remedium.exceptions import filing, lifecycle, service
from remedium.exceptions import preview as score_preview
from remedium.exceptions.api import exception_views
from remedium.exceptions.models import (
    GROUP_STATUSES,
    IMPACT_LABELS,
    IMPACTS,
    JUSTIFICATION_HELP,
    JUSTIFICATION_LABELS,
    JUSTIFICATIONS,
    STATUS_LABELS,
)
from remedium.intel.models import Vulnerability
from remedium.inventory.models import DeviceGroup
from remedium.recommendations.models import Recommendation
from remedium.web.export import csv_response, export_url
from remedium.web.listing import list_state
from remedium.web.templating import PageContext, PageDep

VIEW_RIGHT = cast(fastapi_params.Depends, require(Right.VIEW))
EXCEPTIONS_RIGHT = cast(fastapi_params.Depends, require(Right.EXCEPTIONS))

router = APIRouter(include_in_schema=False, dependencies=[VIEW_RIGHT])


def _not_found() -> HTTPException:
    return HTTPException(404, "This exception does not exist, or is outside your device groups.")


def _filters(
    justification: str | None, exception_type: str | None, status: str | None
) -> dict[str, str | None]:
    return {
        "justification": justification if justification in JUSTIFICATIONS else None,
        "type": exception_type if exception_type in ("recommendation", "cve") else None,
        "status": status if status in GROUP_STATUSES else None,
    }


def _exception_filter(filters: dict[str, str | None]) -> service.ExceptionFilter:
    return service.ExceptionFilter(
        justification=filters["justification"],
        exception_type=filters["type"],
        status=filters["status"],
    )


EXPORT_COLUMNS = (
    "id", "type", "recommendation_id", "vulnerability_id", "target", "justification",
    "context", "impact", "scope", "device_groups", "status", "requested_by", "created_at",
    "expires_on", "ended_at", "decided_by", "decided_at", "resurfaced_reason",
)  # fmt: skip


@router.get("/remediation/exceptions/export.csv", response_class=StreamingResponse)
def exceptions_export(
    page: PageDep,
    *,
    justification: str | None = None,
    type: str | None = None,
    status: str | None = None,
) -> StreamingResponse:
    """The Exceptions tab's list with its filters, in the page's device groups, as CSV."""
    query = _exception_filter(_filters(justification, type, status))
    scope = page.scope

    def fetch(session: Session, offset: int, limit: int) -> list[list[Any]]:
        rows, _ = service.list_exceptions(session, scope, query, offset=offset, limit=limit)
        return [
            [
                e.id, e.type, e.recommendation_id, e.vulnerability_id, e.target_name,
                e.justification_label, e.context, e.impact_label,
                "Global" if e.scope == "global" else "Device groups",
                [f"{g.name} ({g.status_label})" for g in e.device_groups], e.status_label,
                e.requested_by, e.created_at, e.expires_on, e.ended_at, e.decided_by,
                e.decided_at, e.resurfaced_reason,
            ]
            for e in exception_views(session, scope, rows)
        ]  # fmt: skip

    return csv_response(page.request, "exceptions", EXPORT_COLUMNS, fetch)


@router.get("/remediation/exceptions", response_class=HTMLResponse)
def exceptions_list(
    page: PageDep,
    session: SessionDep,
    *,
    justification: str | None = None,
    type: str | None = None,
    status: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """The Exceptions tab: filters justification, type and status."""
    state = list_state(None, None, p, allowed=("created",), default_sort="created")
    filters = _filters(justification, type, status)
    rows, total = service.list_exceptions(
        session, page.scope, _exception_filter(filters), offset=state.offset, limit=state.limit
    )
    result = make_page(exception_views(session, page.scope, rows), total, state.offset, state.limit)
    return page.render(
        "exceptions/list.html",
        {
            "title": "Remediation",
            "active": "remediation",
            "tab": "exceptions",
            "result": result,
            "state": state,
            "filters": filters,
            "justifications": list(JUSTIFICATION_LABELS.items()),
            "statuses": [(s, STATUS_LABELS[s]) for s in GROUP_STATUSES],
            "export_url": export_url("/remediation/exceptions/export.csv", page.request.url.query),
        },
    )


@dataclass
class ExceptionForm:
    """What the user chose on the filing form (kept to show it back, and for the preview)."""

    justification: str = ""
    context: str = ""
    impact: str = ""
    scope: str = "all_groups"
    groups: set[str] = field(default_factory=set)
    duration: str = "30"
    end_date: str = ""

    def values(self) -> dict[str, Any]:
        """The form's fields as the template reads them back."""
        return dataclasses.asdict(self)

    @property
    def group_ids(self) -> list[int]:
        """The chosen device groups (the "Chosen device groups" choice)."""
        return sorted(int(g) for g in self.groups if g.isdigit())

    @property
    def effective_impact(self) -> str:
        """The impact the exception will have: the chosen one, else the justification's."""
        if self.impact in IMPACTS:
            return self.impact
        return service.DEFAULT_IMPACT.get(self.justification, "MitigationLike")


def _form_context(
    session: Session,
    principal: Principal,
    *,
    recommendation: str | None,
    vulnerability: str | None,
    form: ExceptionForm | None = None,
) -> dict[str, Any]:
    form = form or ExceptionForm()
    target: Recommendation | Vulnerability | None = None
    if recommendation:
        target = session.get(Recommendation, recommendation)
        exception_type, target_id = "recommendation", recommendation
        name = target.name if isinstance(target, Recommendation) else ""
    elif vulnerability:
        target = session.get(Vulnerability, vulnerability)
        exception_type, target_id, name = "cve", vulnerability, vulnerability
    if target is None:
        raise HTTPException(404, "Open the exception options from a recommendation or a CVE.")
    covered = service.covered_groups(session, exception_type, target_id)
    groups = session.execute(
        select(DeviceGroup.id, DeviceGroup.name)
        .where(in_scope(DeviceGroup.id, principal.scope))
        .order_by(DeviceGroup.name)
    ).all()
    listed = [(g.id, g.name) for g in groups if g.id not in covered]
    listed_ids = {i for i, _ in listed}
    # The preview follows the form: the chosen groups (or all listed ones, or global) and the
    # impact the exception will have (docs/scoring.md, "After exceptions").
    is_global = form.scope == "global" and principal.has(Right.ADMIN)
    if form.scope == "groups":
        preview_groups = [g for g in form.group_ids if g in listed_ids]
    else:
        preview_groups = sorted(listed_ids)
    impact = form.effective_impact
    count = len(preview_groups)
    return {
        "title": "Exception options",
        "active": "remediation",
        "exception_type": exception_type,
        "target_id": target_id,
        "target_name": name,
        # Groups already under an exception for this target are left out of the choice.
        "groups": listed,
        "can_global": principal.has(Right.ADMIN),
        "justifications": [
            (j, JUSTIFICATION_LABELS[j], JUSTIFICATION_HELP[j]) for j in JUSTIFICATIONS
        ],
        "impacts": [(i, IMPACT_LABELS[i]) for i in IMPACTS],
        "durations": service.DURATIONS,
        "values": form.values(),
        "errors": {},
        "error": "",
        "preview_impact": IMPACT_LABELS[impact],
        "preview_where": "every device group"
        if is_global
        else f"{count} device group{'' if count == 1 else 's'}",
        "preview": score_preview.preview_exception(
            session,
            principal.scope,
            recommendation_id=target_id if exception_type == "recommendation" else None,
            vulnerability_id=target_id if exception_type == "cve" else None,
            impact=impact,
            is_global=is_global,
            device_group_ids=preview_groups,
        ),
    }


@router.get(
    "/remediation/exceptions/new", response_class=HTMLResponse, dependencies=[EXCEPTIONS_RIGHT]
)
def new_exception(
    page: PageDep,
    session: SessionDep,
    recommendation: str | None = None,
    vulnerability: str | None = None,
) -> HTMLResponse:
    """The "Exception options" form for a recommendation or a CVE."""
    assert page.principal is not None
    context = _form_context(
        session, page.principal, recommendation=recommendation, vulnerability=vulnerability
    )
    return page.render("exceptions/new.html", context)


def _end_date(value: str) -> datetime:
    """The end of the day ``value`` (YYYY-MM-DD) in UTC; ValueError when it is no date."""
    day = datetime.strptime(value, "%Y-%m-%d").date()
    # An end date means "through that day": the exception ends at the next midnight (UTC).
    return datetime.combine(day, time.max, tzinfo=UTC)


def _form_errors(form: ExceptionForm) -> dict[str, str]:
    """What the form refuses before the service sees it (the end date is never ignored)."""
    errors: dict[str, str] = {}
    if form.duration == "custom" and not form.end_date:
        errors["end_date"] = "Choose the end date, or pick a number of days."
    elif form.end_date:
        try:
            end = _end_date(form.end_date)
        except ValueError:
            errors["end_date"] = "Enter the end date as YYYY-MM-DD."
        else:
            if end.date() < datetime.now(UTC).date():
                errors["end_date"] = "The end date is in the past: choose a later day."
    if form.scope == "groups" and not form.group_ids:
        errors["groups"] = "Choose at least one device group, or another scope."
    return errors


@router.post(
    "/remediation/exceptions/new",
    response_class=HTMLResponse,
    dependencies=[EXCEPTIONS_RIGHT],
    response_model=None,
)
def submit_exception(  # noqa: PLR0917 - one argument per form field
    page: PageDep,
    session: SessionDep,
    recommendation: Annotated[str, Form()] = "",
    vulnerability: Annotated[str, Form()] = "",
    justification: Annotated[str, Form()] = "",
    context: Annotated[str, Form()] = "",
    impact: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "all_groups",
    group: Annotated[list[str] | None, Form()] = None,
    duration: Annotated[str, Form()] = "30",
    end_date: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "submit",
) -> Response:
    """File the exception and show it, or show the form again with what went wrong.

    An end date always counts: entering one means "Until an end date" whatever the duration
    list shows (the form's script selects it too). ``action=preview`` shows the form again with
    the score preview of the chosen groups and impact.
    """
    principal = page.principal
    assert principal is not None
    form = ExceptionForm(
        justification=justification,
        context=context,
        impact=impact,
        scope=scope if scope in ("global", "all_groups", "groups") else "all_groups",
        groups=set(group or []),
        duration="custom" if end_date.strip() else duration,
        end_date=end_date.strip(),
    )
    target = {"recommendation": recommendation or None, "vulnerability": vulnerability or None}
    if action == "preview":
        return page.render(
            "exceptions/new.html", _form_context(session, principal, **target, form=form)
        )
    errors = _form_errors(form)
    if not errors:
        custom = form.duration == "custom"
        try:
            exc = filing.file_exception(
                session,
                principal,
                recommendation_id=recommendation or None,
                vulnerability_id=None if recommendation else (vulnerability or None),
                justification=justification,
                context=context.strip(),
                impact=impact or None,
                is_global=form.scope == "global",
                all_groups=form.scope == "all_groups",
                device_group_ids=form.group_ids,
                duration_days=None if custom else int(duration) if duration.isdigit() else 0,
                expires_on=_end_date(form.end_date) if custom else None,
            )
        except service.ExceptionsError as error:
            session.rollback()
            errors = {"": error.message}
        else:
            return RedirectResponse(f"/remediation/exceptions/{exc.id}?filed=1", 303)
    shown = _form_context(session, principal, **target, form=form)
    shown["errors"] = errors
    shown["error"] = errors.get("", "The exception was not filed: correct the fields marked below.")
    return page.render("exceptions/new.html", shown, status_code=422)


@router.get("/remediation/exceptions/{exception_id}", response_class=HTMLResponse)
def exception_detail(
    exception_id: int, page: PageDep, session: SessionDep, filed: str | None = None
) -> HTMLResponse:
    """The exception view: every field, covered groups, history, cancel, approve or reject."""
    return _detail(page, session, exception_id, filed=bool(filed))


def _detail(
    page: PageContext,
    session: Session,
    exception_id: int,
    *,
    filed: bool = False,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    exc = service.get_exception(session, page.scope, exception_id)
    if exc is None:
        raise _not_found()
    [view] = exception_views(session, page.scope, [exc], with_history=True)
    principal = page.principal
    can_act = principal is not None and principal.has(Right.EXCEPTIONS)
    # The requester may not decide on their own request (the service refuses it too); the
    # buttons are only offered to someone who could actually use them.
    own = principal is not None and (
        exc.requested_by_user_id == principal.user_id
        if principal.user_id is not None and exc.requested_by_user_id is not None
        else exc.requested_by == principal.name
    )
    can_decide = (
        can_act
        and exc.status == "PendingApproval"
        and not own
        and (not exc.is_global or _is_admin(principal))
    )
    return page.render(
        "exceptions/detail.html",
        {
            "title": f"Exception {exc.id}",
            "active": "remediation",
            "exc": view,
            "filed": filed,
            "error": error,
            "can_cancel": can_act and (not exc.is_global or _is_admin(principal)),
            "can_decide": can_decide,
            "active_statuses": ("PendingApproval", "InEffect", "Suspended"),
        },
        status_code=status_code,
    )


def _is_admin(principal: Principal | None) -> bool:
    return principal is not None and principal.has(Right.ADMIN)


@router.get(
    "/remediation/exceptions/{exception_id}/cancel",
    response_class=HTMLResponse,
    dependencies=[EXCEPTIONS_RIGHT],
)
def confirm_cancel(
    exception_id: int, page: PageDep, session: SessionDep, device_group_id: str = ""
) -> HTMLResponse:
    """ "Cancel exception" asks first, for one device group or for all of them."""
    exc = service.get_exception(session, page.scope, exception_id)
    if exc is None:
        raise _not_found()
    [view] = exception_views(session, page.scope, [exc])
    group = next((g for g in view.device_groups if str(g.device_group_id) == device_group_id), None)
    where = f"for the device group {group.name}" if group else "for all its device groups"
    return page.render(
        "confirm.html",
        {
            "title": "Cancel exception",
            "active": "remediation",
            "question": f"Cancel the exception on {view.target_name} {where}?",
            "details": [
                "The weaknesses it covers count again in the exposure score and the "
                "recommendation lists from now on. Filing a new exception needs approval "
                "again where approval is required."
            ],
            "action": f"/remediation/exceptions/{exception_id}/cancel",
            "hidden": [("device_group_id", group.device_group_id)] if group else [],
            "reason_field": True,
            "danger": True,
            "confirm_label": "Cancel exception",
            "cancel_label": "Keep the exception",
            "back_href": f"/remediation/exceptions/{exception_id}",
            "back_label": f"Exception {exception_id}",
        },
    )


@router.post(
    "/remediation/exceptions/{exception_id}/cancel",
    dependencies=[EXCEPTIONS_RIGHT],
    response_model=None,
)
def cancel(
    exception_id: int,
    page: PageDep,
    session: SessionDep,
    device_group_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """ "Cancel exception" for one group, or for all the user's groups."""
    principal = page.principal
    if principal is None:
        raise _not_found()
    try:
        lifecycle.cancel_exception(
            session,
            principal,
            exception_id,
            device_group_id=int(device_group_id) if device_group_id.isdigit() else None,
            reason=reason.strip(),
        )
    except service.ExceptionNotFound:
        raise _not_found() from None
    except service.ExceptionNotAllowed as error:
        raise HTTPException(403, error.message) from None
    except service.ExceptionsError:
        # Already ended meanwhile: the page shows its status.
        pass
    return RedirectResponse(f"/remediation/exceptions/{exception_id}", 303)


def _decide(
    page: PageContext, session: Session, exception_id: int, *, approve: bool, comment: str
) -> Response:
    principal = page.principal
    if principal is None:
        raise _not_found()
    act = filing.approve_exception if approve else filing.reject_exception
    try:
        act(session, principal, exception_id, comment=comment.strip())
    except service.ExceptionNotFound:
        raise _not_found() from None
    except service.ExceptionsError as error:
        session.rollback()
        return _detail(page, session, exception_id, error=error.message, status_code=409)
    return RedirectResponse(f"/remediation/exceptions/{exception_id}", 303)


@router.post(
    "/remediation/exceptions/{exception_id}/approve",
    dependencies=[EXCEPTIONS_RIGHT],
    response_model=None,
)
def approve(
    exception_id: int, page: PageDep, session: SessionDep, comment: Annotated[str, Form()] = ""
) -> Response:
    """ "Approve" a pending exception: it takes effect; a refusal is shown on the view."""
    return _decide(page, session, exception_id, approve=True, comment=comment)


@router.post(
    "/remediation/exceptions/{exception_id}/reject",
    dependencies=[EXCEPTIONS_RIGHT],
    response_model=None,
)
def reject(
    exception_id: int, page: PageDep, session: SessionDep, comment: Annotated[str, Form()] = ""
) -> Response:
    """ "Reject" a pending exception: it never takes effect; a refusal is shown on the view."""
    return _decide(page, session, exception_id, approve=False, comment=comment)
