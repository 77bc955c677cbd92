"""``/api/v1/exceptions`` and ``/api/v1/inaccuracy-reports``: the native exception API.

Reading needs the view right and shows what the caller's device groups allow (an exception of
other groups answers 404); filing, canceling, approving and rejecting need the exceptions right;
resolving inaccuracy reports needs an administrator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium import __version__
from remedium.api.deps import SessionDep, require
from remedium.audit.chain import decode_groups
from remedium.auth.principal import Principal, Right, Scope
from remedium.common.api import DEFAULT_PAGE, LimitParam, OffsetParam, not_found
from remedium.common.paging import make_page
from remedium.db.base import utcnow
from remedium.exceptions import export, filing, inaccuracy, lifecycle, service, vex
from remedium.exceptions import preview as score_preview
from remedium.exceptions.models import (
    IMPACT_LABELS,
    INACCURACY_CATEGORY_LABELS,
    JUSTIFICATION_LABELS,
    STATUS_LABELS,
    InaccuracyReport,
    RemediationException,
)
from remedium.exceptions.rules import RULE_LABELS
from remedium.exceptions.schemas import (
    CancelRequest,
    DecisionRequest,
    ExceptionCreate,
    ExceptionEventView,
    ExceptionGroupView,
    ExceptionPage,
    ExceptionPreviewRequest,
    ExceptionPreviewView,
    ExceptionView,
    InaccuracyCreate,
    InaccuracyPage,
    InaccuracyResolve,
    InaccuracyToException,
    InaccuracyView,
    Justification,
)
from remedium.intel.models import Vulnerability
from remedium.recommendations.models import Recommendation

ViewerDep = Annotated[Principal, require(Right.VIEW)]
ExceptionsDep = Annotated[Principal, require(Right.EXCEPTIONS)]
AdminDep = Annotated[Principal, require(Right.ADMIN)]

router = APIRouter(prefix="/api/v1", tags=["exceptions"])

_STATUS_OF = {
    service.ExceptionNotAllowed: status.HTTP_403_FORBIDDEN,
    service.ExceptionNotFound: status.HTTP_404_NOT_FOUND,
    service.ExceptionConflict: status.HTTP_409_CONFLICT,
    service.ExceptionInvalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


@contextmanager
def _answering() -> Iterator[None]:
    """Turn the services' errors into HTTP answers (the request then rolls back)."""
    try:
        yield
    except service.ExceptionsError as error:
        code = _STATUS_OF.get(type(error), status.HTTP_400_BAD_REQUEST)
        if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            detail: object = [
                {"loc": ["body", error.field or ""], "msg": error.message, "type": "value_error"}
            ]
        else:
            detail = error.message
        raise HTTPException(code, detail=detail) from error


def _target_names(session: Session, rows: Sequence[RemediationException]) -> dict[str, str]:
    recommendation_ids = {r.recommendation_id for r in rows if r.recommendation_id}
    vulnerability_ids = {r.vulnerability_id for r in rows if r.vulnerability_id}
    names: dict[str, str] = {}
    if recommendation_ids:
        names.update(
            (key, name)
            for key, name in session.execute(
                select(Recommendation.id, Recommendation.name).where(
                    Recommendation.id.in_(sorted(recommendation_ids))
                )
            ).tuples()
        )
    if vulnerability_ids:
        names.update(
            (key, name)
            for key, name in session.execute(
                select(Vulnerability.id, Vulnerability.name).where(
                    Vulnerability.id.in_(sorted(vulnerability_ids))
                )
            ).tuples()
        )
    return names


def exception_views(
    session: Session,
    scope: Scope,
    rows: Sequence[RemediationException],
    *,
    with_history: bool = False,
) -> list[ExceptionView]:
    """Shape exceptions for the API and the pages; groups outside ``scope`` are left out."""
    names = service.group_names(session, (g.device_group_id for r in rows for g in r.groups))
    targets = _target_names(session, rows)
    views = []
    for exc in rows:
        history = None
        if with_history:
            history = [
                ExceptionEventView(
                    kind=e.kind,
                    actor=e.actor,
                    occurred_at=e.occurred_at,
                    device_group_id=e.device_group_id,
                    device_group=names.get(e.device_group_id) if e.device_group_id else None,
                    detail=e.detail or {},
                )
                for e in service.history(session, scope, exc)
            ]
        target_id = exc.recommendation_id or exc.vulnerability_id or ""
        views.append(
            ExceptionView(
                id=exc.id,
                type=exc.exception_type,
                recommendation_id=exc.recommendation_id,
                vulnerability_id=exc.vulnerability_id,
                target_name=targets.get(target_id) or target_id,
                justification=exc.justification,
                justification_label=JUSTIFICATION_LABELS[exc.justification],
                context=exc.context,
                impact=exc.impact,
                impact_label=IMPACT_LABELS[exc.impact],
                scope="global" if exc.is_global else "groups",
                device_groups=[
                    ExceptionGroupView(
                        device_group_id=g.device_group_id,
                        name=names.get(g.device_group_id, ""),
                        status=g.status,
                        status_label=STATUS_LABELS[g.status],
                        changed_at=g.changed_at,
                    )
                    for g in exc.groups
                    if scope.allows(g.device_group_id)
                ],
                requested_by=exc.requested_by,
                created_at=exc.created_at,
                expires_on=exc.expires_on,
                ended_at=exc.ended_at,
                status=exc.status,
                status_label=STATUS_LABELS[exc.status],
                decided_by=exc.decided_by,
                decided_at=exc.decided_at,
                decision_comment=exc.decision_comment,
                resurfaced_rule=exc.resurfaced_rule,
                resurfaced_reason=RULE_LABELS.get(exc.resurfaced_rule or ""),
                resurfaced_evidence=exc.resurfaced_evidence,
                snapshot=exc.snapshot or {},
                history=history,
            )
        )
    return views


def _one(session: Session, principal: Principal, exception_id: int) -> ExceptionView:
    exc = service.get_exception(session, principal.scope, exception_id)
    if exc is None:
        not_found("exception", exception_id)
    return exception_views(session, principal.scope, [exc], with_history=True)[0]


@router.get("/exceptions", response_model=ExceptionPage)
def list_exceptions(
    *,
    session: SessionDep,
    principal: ViewerDep,
    justification: Justification | None = None,
    type: Literal["recommendation", "cve"] | None = None,
    status_filter: Annotated[
        Literal[
            "PendingApproval",
            "InEffect",
            "Suspended",
            "Expired",
            "Canceled",
            "Resurfaced",
            "Rejected",
        ]
        | None,
        Query(alias="status"),
    ] = None,
    recommendation_id: Annotated[str | None, Query(max_length=440)] = None,
    vulnerability_id: Annotated[str | None, Query(max_length=100)] = None,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> ExceptionPage:
    """Exceptions you may see, newest first, filtered by justification, type and status."""
    with _answering():
        rows, total = service.list_exceptions(
            session,
            principal.scope,
            service.ExceptionFilter(
                justification=justification,
                exception_type=type,
                status=status_filter,
                recommendation_id=recommendation_id,
                vulnerability_id=vulnerability_id,
            ),
            offset=offset,
            limit=limit,
        )
    return make_page(exception_views(session, principal.scope, rows), total, offset, limit)


@router.get("/exceptions/expiring-soon", response_model=list[ExceptionView])
def expiring_soon(session: SessionDep, principal: ViewerDep) -> list[ExceptionView]:
    """Exceptions in effect that end within ``exception_expiry_warning_days``."""
    rows = service.expiring_soon(session, principal.scope)
    return exception_views(session, principal.scope, rows)


@router.get("/exceptions/export")
def export_exceptions(
    session: SessionDep,
    principal: ViewerDep,
    format: Literal["openvex", "cyclonedx"] = "openvex",
    spec_version: Literal["1.5", "1.6"] = "1.6",
) -> JSONResponse:
    """The exceptions in effect as VEX: OpenVEX 0.2.0, or CycloneDX 1.5/1.6 (``spec_version``)."""
    now = utcnow()
    entries = export.vex_entries(session, principal.scope, as_of=now)
    if format == "openvex":
        document = vex.openvex_document(
            entries, author=f"remedium ({principal.name})", issued_at=now
        )
        media_type, name = "application/json", "exceptions.openvex.json"
    else:
        document = vex.cyclonedx_vex(
            entries, issued_at=now, spec_version=spec_version, tool_version=__version__
        )
        media_type = f"application/vnd.cyclonedx+json; version={spec_version}"
        name = "exceptions.cdx.json"
    return JSONResponse(
        document,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/exceptions/{exception_id}", response_model=ExceptionView)
def get_exception(session: SessionDep, principal: ViewerDep, exception_id: int) -> ExceptionView:
    """One exception with its device groups and its history."""
    return _one(session, principal, exception_id)


@router.post("/exceptions", response_model=ExceptionView, status_code=status.HTTP_201_CREATED)
def file_exception(
    session: SessionDep, principal: ExceptionsDep, body: ExceptionCreate
) -> ExceptionView:
    """File an exception (global scope: administrators only)."""
    with _answering():
        exc = filing.file_exception(
            session,
            principal,
            recommendation_id=body.recommendation_id,
            vulnerability_id=body.vulnerability_id,
            justification=body.justification,
            context=body.context,
            impact=body.impact,
            is_global=body.scope == "global",
            device_group_ids=body.device_group_ids,
            all_groups=body.scope == "all_groups",
            duration_days=body.duration_days,
            expires_on=body.expires_on,
        )
    return _one(session, principal, exc.id)


@router.post("/exceptions/preview", response_model=ExceptionPreviewView)
def preview_exception(
    session: SessionDep, principal: ExceptionsDep, body: ExceptionPreviewRequest
) -> ExceptionPreviewView:
    """The exposure score and Secure Score of your scope with this exception (nothing is
    written): as they are, after the exceptions in effect, and with this one too."""
    impact = body.impact or (
        service.DEFAULT_IMPACT[body.justification] if body.justification else "MitigationLike"
    )
    if body.scope == "all_groups":
        groups = list(score_preview.preview_groups(session, principal.scope))
    else:
        groups = body.device_group_ids
    with _answering():
        outside = [g for g in groups if not principal.scope.allows(g)]
        if outside:
            raise service.ExceptionNotAllowed(
                "device groups outside your scope", "device_group_ids"
            )
        preview = score_preview.preview_exception(
            session,
            principal.scope,
            recommendation_id=body.recommendation_id,
            vulnerability_id=body.vulnerability_id,
            impact=impact,
            is_global=body.scope == "global",
            device_group_ids=groups,
        )
    return ExceptionPreviewView(**dataclasses.asdict(preview))


@router.post("/exceptions/{exception_id}/cancel", response_model=ExceptionView)
def cancel_exception(
    session: SessionDep,
    principal: ExceptionsDep,
    exception_id: int,
    body: CancelRequest | None = None,
) -> ExceptionView:
    """Cancel for all your device groups, or for one (``device_group_id``)."""
    body = body or CancelRequest()
    with _answering():
        lifecycle.cancel_exception(
            session,
            principal,
            exception_id,
            device_group_id=body.device_group_id,
            reason=body.reason,
        )
    return _one(session, principal, exception_id)


@router.post("/exceptions/{exception_id}/approve", response_model=ExceptionView)
def approve_exception(
    session: SessionDep,
    principal: ExceptionsDep,
    exception_id: int,
    body: DecisionRequest | None = None,
) -> ExceptionView:
    """Approve a pending exception (not your own)."""
    with _answering():
        filing.approve_exception(
            session, principal, exception_id, comment=(body or DecisionRequest()).comment
        )
    return _one(session, principal, exception_id)


@router.post("/exceptions/{exception_id}/reject", response_model=ExceptionView)
def reject_exception(
    session: SessionDep,
    principal: ExceptionsDep,
    exception_id: int,
    body: DecisionRequest | None = None,
) -> ExceptionView:
    """Reject a pending exception (not your own)."""
    with _answering():
        filing.reject_exception(
            session, principal, exception_id, comment=(body or DecisionRequest()).comment
        )
    return _one(session, principal, exception_id)


# --- report inaccuracy ----------------------------------------------------------------------


def _report_view(report: InaccuracyReport) -> InaccuracyView:
    return InaccuracyView(
        id=report.id,
        object_type=report.object_type,
        object_id=report.object_id,
        category=report.category,
        category_label=INACCURACY_CATEGORY_LABELS[report.category],
        details=report.details,
        reporter=report.reporter,
        created_at=report.created_at,
        status=report.status,
        resolver=report.resolver,
        resolved_at=report.resolved_at,
        resolution_comment=report.resolution_comment,
        exception_id=report.exception_id,
        device_group_ids=decode_groups(report.device_group_ids),
    )


@router.post(
    "/inaccuracy-reports", response_model=InaccuracyView, status_code=status.HTTP_201_CREATED
)
def report_inaccuracy(
    session: SessionDep, principal: ViewerDep, body: InaccuracyCreate
) -> InaccuracyView:
    """Report that a recommendation or vulnerability is wrong."""
    with _answering():
        report = inaccuracy.report_inaccuracy(
            session,
            principal,
            object_type=body.object_type,
            object_id=body.object_id,
            category=body.category,
            details=body.details,
        )
    return _report_view(report)


@router.get("/inaccuracy-reports", response_model=InaccuracyPage)
def list_reports(
    session: SessionDep,
    principal: ViewerDep,
    status_filter: Annotated[
        Literal["new", "confirmed", "dismissed"] | None, Query(alias="status")
    ] = None,
    offset: OffsetParam = 0,
    limit: LimitParam = DEFAULT_PAGE,
) -> InaccuracyPage:
    """Reports: all of them for administrators, your own otherwise."""
    with _answering():
        rows, total = inaccuracy.list_reports(
            session, principal, status=status_filter, offset=offset, limit=limit
        )
    return make_page([_report_view(r) for r in rows], total, offset, limit)


@router.get("/inaccuracy-reports/{report_id}", response_model=InaccuracyView)
def get_report(session: SessionDep, principal: ViewerDep, report_id: int) -> InaccuracyView:
    """One report (yours, or any for administrators)."""
    report = inaccuracy.get_report(session, principal, report_id)
    if report is None:
        not_found("inaccuracy report", report_id)
    return _report_view(report)


@router.post("/inaccuracy-reports/{report_id}/confirm", response_model=InaccuracyView)
def confirm_report(
    session: SessionDep,
    principal: AdminDep,
    report_id: int,
    body: InaccuracyResolve | None = None,
) -> InaccuracyView:
    """Confirm a new report (administrators)."""
    with _answering():
        report = inaccuracy.confirm_report(
            session, principal, report_id, comment=(body or InaccuracyResolve()).comment
        )
    return _report_view(report)


@router.post("/inaccuracy-reports/{report_id}/dismiss", response_model=InaccuracyView)
def dismiss_report(
    session: SessionDep,
    principal: AdminDep,
    report_id: int,
    body: InaccuracyResolve | None = None,
) -> InaccuracyView:
    """Dismiss a new report (administrators)."""
    with _answering():
        report = inaccuracy.dismiss_report(
            session, principal, report_id, comment=(body or InaccuracyResolve()).comment
        )
    return _report_view(report)


@router.post(
    "/inaccuracy-reports/{report_id}/to-exception",
    response_model=ExceptionView,
    status_code=status.HTTP_201_CREATED,
)
def report_to_exception(
    session: SessionDep,
    principal: AdminDep,
    report_id: int,
    body: InaccuracyToException | None = None,
) -> ExceptionView:
    """Turn a confirmed false-positive report into an "Other \u2013 false positive" exception."""
    body = body or InaccuracyToException()
    with _answering():
        exc = inaccuracy.report_to_exception(
            session,
            principal,
            report_id,
            is_global=body.scope == "global",
            device_group_ids=body.device_group_ids,
            all_groups=body.scope == "all_groups",
            duration_days=body.duration_days if body.duration_days or body.expires_on else 180,
            expires_on=body.expires_on,
            context=body.context,
        )
    return _one(session, principal, exc.id)
