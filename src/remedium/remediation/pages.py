"""Web pages of remediation: the request form, the Activities tab, and the activity view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, params
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from remedium.api.deps import SessionDep, require
from remedium.auth.principal import Principal, Right
from remedium.inventory.queries import list_device_groups
from remedium.recommendations.queries import get_recommendation
from remedium.remediation import queries, requesting, service
from remedium.remediation.models import (
    ACTIVITY_TYPES,
    PRIORITIES,
    STATUSES,
    TICKET_DELIVERED,
    TICKET_FAILED,
    TICKET_PENDING,
    RemediationActivity,
)
from remedium.web.listing import list_state
from remedium.web.templating import (
    REMEDIATION_LABELS,
    NavItem,
    PageContext,
    PageDep,
    register_navigation,
)

router = APIRouter(include_in_schema=False)
REMEDIATION_RIGHT = cast(params.Depends, require(Right.REMEDIATION))

register_navigation(NavItem("remediation", "Remediation", "/remediation", 30, "wrench"))

TYPE_LABELS = {**REMEDIATION_LABELS, "AttentionRequired": "Attention required"}
TYPE_HELP = {
    "Update": "Update the software to a version without the weaknesses.",
    "Upgrade": "Upgrade to a supported version.",
    "Uninstall": "Remove the software from the devices.",
    "ConfigurationChange": "Change the configuration on the devices.",
    "AttentionRequired": "No specific action: IT looks into it. No due date, and no progress "
    "is measured.",
}


# --- how a ticket reads beside an activity --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketView:
    """The ticket of an activity as the pages show it.

    ``label`` is the ticket system's own word for the state once the ticket exists, "Ticket
    pending" while the outbox has not delivered it, and "No ticket" without a connection.
    """

    label: str
    css: str
    connector: str | None
    key: str | None
    url: str | None
    error: str
    next_attempt: datetime | None = None  # when the worker tries a pending ticket next


def ticket_view(
    activity: RemediationActivity, error: str = "", next_attempt: datetime | None = None
) -> TicketView:
    """How ``activity``'s ticket is shown (``error``: the last delivery error, for admins;
    ``next_attempt``: when a pending ticket is tried next)."""
    if not activity.connector_name:
        return TicketView("No ticket", "none", None, None, None, "")
    if activity.ticket_delivery == TICKET_PENDING:
        label, css = "Ticket pending", "pending"
    elif activity.ticket_delivery == TICKET_FAILED:
        label, css = "Ticket failed", "failed"
    elif activity.ticket_delivery == TICKET_DELIVERED:
        label = activity.ticket_state or "Created"
        css = f"state-{activity.ticket_status or 'unknown'}"
    else:
        label, css = activity.ticket_delivery, "unknown"
    return TicketView(
        label,
        css,
        activity.connector_name,
        activity.ticket_key or activity.ticket_external_id,
        activity.ticket_url,
        error,
        next_attempt if activity.ticket_delivery == TICKET_PENDING else None,
    )


def progress_percent(activity: RemediationActivity) -> float | None:
    """Fixed / target devices in percent; ``None`` for "attention required" (no progress)."""
    if activity.remediation_type == service.ATTENTION_REQUIRED or not activity.target_devices:
        return None
    return round(100.0 * activity.fixed_devices / activity.target_devices, 1)


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One activity with what its row shows beside the stored fields."""

    activity: RemediationActivity
    progress: float | None
    overdue: bool
    ticket: TicketView


def activity_rows(
    session: Session, activities: Sequence[RemediationActivity], *, show_errors: bool = False
) -> list[ActivityRow]:
    """Rows for ``activities`` (ticket errors looked up in one query, for admins only)."""
    ids = [a.id for a in activities]
    errors = queries.ticket_errors(session, ids) if show_errors else {}
    attempts = queries.ticket_next_attempts(session, ids)
    return [
        ActivityRow(
            a,
            progress_percent(a),
            service.is_overdue(a),
            ticket_view(a, errors.get(a.id, ""), attempts.get(a.id)),
        )
        for a in activities
    ]


def _is_admin(principal: Principal | None) -> bool:
    return principal is not None and principal.has(Right.ADMIN)


def _can_remediate(principal: Principal | None) -> bool:
    return principal is not None and principal.has(Right.REMEDIATION)


def _choice(value: str | None, allowed: Sequence[str]) -> str | None:
    return value if value in allowed else None


# --- the Activities tab ---------------------------------------------------------------------------


@router.get("/remediation", response_class=HTMLResponse)
def activities_tab(
    page: PageDep,
    session: SessionDep,
    *,
    remediation_type: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    overdue: str | None = None,
    connector: str | None = None,
    p: str | None = None,
) -> HTMLResponse:
    """Remediation activities in scope, filtered and paged, newest first."""
    connectors = queries.connector_names(session)
    filters = {
        "remediation_type": _choice(remediation_type, ACTIVITY_TYPES),
        "status": _choice(status, STATUSES),
        "priority": _choice(priority, PRIORITIES),
        "overdue": _choice(overdue, ("yes", "no")),
        "connector": _choice(connector, connectors),
    }
    state = list_state(None, None, p, allowed=(), default_sort="created")
    rows, total = service.list_activities(
        session,
        page.scope,
        service.ActivityFilter(
            remediation_type=filters["remediation_type"],
            status=filters["status"],
            priority=filters["priority"],
            overdue=None if filters["overdue"] is None else filters["overdue"] == "yes",
            connector=filters["connector"],
        ),
        offset=state.offset,
        limit=state.limit,
    )
    export = {
        key: value
        for key, value in {
            "remediation_type": filters["remediation_type"],
            "status": filters["status"],
            "priority": filters["priority"],
            "overdue": None
            if filters["overdue"] is None
            else str(filters["overdue"] == "yes").lower(),
            "connector": filters["connector"],
        }.items()
        if value
    }
    return page.render(
        "remediation/activities.html",
        {
            "title": "Remediation",
            "active": "remediation",
            "tab": "activities",
            "rows": activity_rows(session, rows, show_errors=_is_admin(page.principal)),
            "result": {"total": total, "offset": state.offset, "limit": state.limit},
            "state": state,
            "filters": filters,
            "filtered": any(filters.values()),
            "type_labels": TYPE_LABELS,
            "types": ACTIVITY_TYPES,
            "priorities": PRIORITIES,
            "statuses": STATUSES,
            "connectors": connectors,
            "export_url": "/api/v1/remediation-activities/export.csv"
            + (f"?{urlencode(export)}" if export else ""),
        },
    )


# --- the request form ---------------------------------------------------------------------------


@dataclass
class RequestForm:
    """What the user typed into the request form (kept to show it back with errors)."""

    remediation_type: str = ""
    groups_mode: str = "all"
    groups: tuple[int, ...] = ()
    priority: str = "Medium"
    due_on: str = ""
    notes: str = ""
    connector: str = ""

    @property
    def device_group_ids(self) -> list[int] | None:
        """``None`` for "all my device groups", else the chosen ones."""
        return None if self.groups_mode == "all" else list(self.groups)


def _render_form(
    page: PageContext,
    session: Session,
    principal: Principal,
    recommendation_id: str,
    form: RequestForm,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    recommendation = get_recommendation(session, principal.scope, recommendation_id)
    if recommendation is None:
        raise HTTPException(
            404, "There is no such recommendation in the device groups you can see."
        )
    errors = dict(errors or {})
    preview: requesting.RequestPreview | None = None
    try:
        preview = requesting.preview_request(
            session,
            principal,
            recommendation_id=recommendation_id,
            device_group_ids=form.device_group_ids,
        )
    except service.RemediationError as error:
        errors.setdefault(_FIELDS.get(error.field, error.field), error.message)
    except service.ActivityNotFoundError:
        raise HTTPException(
            404, "There is no such recommendation in the device groups you can see."
        ) from None
    types = (
        service.SOFTWARE_TYPES if recommendation.kind == "software" else service.CONFIGURATION_TYPES
    )
    if form.remediation_type not in types:
        suggested = recommendation.remediation_type
        form.remediation_type = suggested if suggested in types else types[0]
    return page.render(
        "remediation/request.html",
        {
            "title": "Remediation options",
            "active": "recommendations",
            "rec": recommendation,
            "form": form,
            "errors": errors,
            "preview": preview,
            "types": types,
            "type_labels": TYPE_LABELS,
            "type_help": TYPE_HELP,
            "priorities": PRIORITIES,
            "device_groups": list_device_groups(session, principal.scope),
            "connectors": queries.connector_names(session, enabled_only=True),
            "today": date.today().isoformat(),
        },
        status_code=status_code,
    )


# The service names fields as the API does; the form's fields are named for people.
_FIELDS = {"device_group_ids": "groups", "due_on": "due_on"}


@router.get("/remediation/request", response_class=HTMLResponse, dependencies=[REMEDIATION_RIGHT])
def request_form(page: PageDep, session: SessionDep, recommendation: str = "") -> HTMLResponse:
    """The "Remediation options" form of one recommendation, with the device-count preview."""
    if not recommendation or page.principal is None:
        raise HTTPException(404, "Open the remediation options from a security recommendation.")
    return _render_form(page, session, page.principal, recommendation, RequestForm())


def _parse_groups(values: Sequence[str]) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in values if v.strip().isdigit()}))


@router.post(
    "/remediation/request",
    response_class=HTMLResponse,
    dependencies=[REMEDIATION_RIGHT],
    response_model=None,
)
def submit_request(  # noqa: PLR0917 - one argument per form field
    page: PageDep,
    session: SessionDep,
    recommendation: Annotated[str, Form()] = "",
    remediation_type: Annotated[str, Form()] = "",
    groups_mode: Annotated[str, Form()] = "all",
    group: Annotated[list[str] | None, Form()] = None,
    priority: Annotated[str, Form()] = "Medium",
    due_on: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
    connector: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "submit",
) -> Response:
    """Create the activity (or, for "Preview", show the form again with fresh counts)."""
    principal = page.principal
    if not recommendation or principal is None:
        raise HTTPException(404, "Open the remediation options from a security recommendation.")
    form = RequestForm(
        remediation_type=remediation_type,
        groups_mode="chosen" if groups_mode == "chosen" else "all",
        groups=_parse_groups(group or []),
        priority=priority,
        due_on=due_on.strip(),
        notes=notes,
        connector=connector,
    )
    if action == "preview":
        return _render_form(page, session, principal, recommendation, form)
    errors: dict[str, str] = {}
    due: date | None = None
    if form.due_on and remediation_type != service.ATTENTION_REQUIRED:
        try:
            due = date.fromisoformat(form.due_on)
        except ValueError:
            errors["due_on"] = "Enter the due date as YYYY-MM-DD."
    if len(notes) > 4000:
        errors["notes"] = "Notes are at most 4,000 characters."
    if not errors:
        try:
            activity = requesting.request_remediation(
                session,
                principal,
                recommendation_id=recommendation,
                remediation_type=remediation_type,
                device_group_ids=form.device_group_ids,
                priority=priority,
                due_on=due,
                notes=notes,
                connector=connector or None,
            )
        except service.RemediationError as error:
            errors[_FIELDS.get(error.field, error.field)] = error.message
        except service.ActivityNotFoundError:
            raise HTTPException(
                404, "There is no such recommendation in the device groups you can see."
            ) from None
        else:
            return RedirectResponse(f"/remediation/activities/{activity.id}?created=1", 303)
    # The service validates before it writes, so a refused request has written nothing.
    return _render_form(
        page, session, principal, recommendation, form, errors=errors, status_code=422
    )


# --- one activity ---------------------------------------------------------------------------------


def _not_found() -> HTTPException:
    return HTTPException(
        404, "There is no such remediation activity in the device groups you can see."
    )


@router.get("/remediation/activities/{activity_id}", response_class=HTMLResponse)
def activity_view(
    activity_id: str, page: PageDep, session: SessionDep, *, p: str | None = None
) -> HTMLResponse:
    """One activity: what it asks, its ticket, its target devices (paged) and its history."""
    principal = page.principal
    if principal is None:
        raise _not_found()
    try:
        activity = service.get_activity(session, principal.scope, activity_id)
    except service.ActivityNotFoundError:
        raise _not_found() from None
    state = list_state(None, None, p, allowed=(), default_sort="rank")
    devices, total = service.activity_devices(
        session, page.scope, activity_id, offset=state.offset, limit=state.limit
    )
    admin = _is_admin(principal)
    row = activity_rows(session, [activity], show_errors=admin)[0]
    flash = page.request.query_params
    return page.render(
        "remediation/activity.html",
        {
            "title": activity.title,
            "active": "remediation",
            "row": row,
            "a": activity,
            "group_names": service.group_names(session, [activity.id])[activity.id],
            "devices": devices,
            "devices_page": {"total": total, "offset": state.offset, "limit": state.limit},
            "state": state,
            "history": queries.activity_history(session, principal, principal.scope, activity.id),
            "type_labels": TYPE_LABELS,
            "can_complete": _can_remediate(principal) and activity.status == "Active",
            "is_admin": admin,
            "cap_message": requesting.over_cap_message(
                activity.exposed_devices_in_scope, activity.target_devices
            )
            if activity.devices_over_cap
            else "",
            "created": flash.get("created") == "1",
            "completed": flash.get("completed") == "1",
        },
    )


@router.get(
    "/remediation/activities/{activity_id}/complete",
    response_class=HTMLResponse,
    dependencies=[REMEDIATION_RIGHT],
    response_model=None,
)
def confirm_completed(activity_id: str, page: PageDep, session: SessionDep) -> Response:
    """ "Mark as completed" asks first: what completing means, and for how many devices."""
    principal = page.principal
    if principal is None:
        raise _not_found()
    try:
        activity = service.get_activity(session, principal.scope, activity_id)
    except service.ActivityNotFoundError:
        raise _not_found() from None
    if activity.status != "Active":
        return RedirectResponse(f"/remediation/activities/{activity_id}", 303)
    open_devices = activity.target_devices - activity.fixed_devices
    return page.render(
        "confirm.html",
        {
            "title": "Mark as completed",
            "active": "remediation",
            "question": f'Mark "{activity.title}" as completed?',
            "details": [
                f"{open_devices:,} of its {activity.target_devices:,} target devices are not "
                "fixed yet."
                if activity.remediation_type != service.ATTENTION_REQUIRED
                else '"Attention required" has no measured progress.',
                "Completing stops tracking: remedium no longer measures its progress, and you "
                "are recorded as the one who completed it. This cannot be undone.",
            ],
            "action": f"/remediation/activities/{activity_id}/complete",
            "hidden": [],
            "confirm_label": "Mark as completed",
            "cancel_label": "Keep it active",
            "back_href": f"/remediation/activities/{activity_id}",
            "back_label": activity.title,
        },
    )


@router.post(
    "/remediation/activities/{activity_id}/complete",
    dependencies=[REMEDIATION_RIGHT],
    response_model=None,
)
def mark_completed(activity_id: str, page: PageDep, session: SessionDep) -> Response:
    """ "Mark as completed": the signed-in user is recorded as the completer."""
    principal = page.principal
    if principal is None:
        raise _not_found()
    try:
        service.complete_activity(session, principal, activity_id)
    except service.ActivityNotFoundError:
        raise _not_found() from None
    except service.ActivityConflictError:
        # Completed meanwhile (by the system or someone else): the page shows by whom.
        pass
    return RedirectResponse(f"/remediation/activities/{activity_id}?completed=1", 303)


def dashboard_rows(session: Session, page: PageContext, limit: int = 5) -> list[ActivityRow]:
    """The "Top remediation activities" card's rows for the dashboard."""
    return activity_rows(session, queries.top_activities(session, page.scope, limit))


def template_context() -> dict[str, Any]:
    """Labels the dashboard card needs."""
    return {"activity_type_labels": TYPE_LABELS}
