"""Report inaccuracy: users flag a recommendation or vulnerability as wrong; admins resolve it.

Anyone who can see the data may report. Administrators see every report and confirm or dismiss
it; other users see the reports they filed. A confirmed false positive becomes an exception
("Other \u2013 false positive") in one step, linked to the report.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from remedium.audit.chain import decode_groups, encode_groups
from remedium.audit.service import record, register_scope
from remedium.auth.principal import Principal, Right
from remedium.db.base import utcnow
from remedium.exceptions.filing import file_exception
from remedium.exceptions.models import (
    INACCURACY_CATEGORIES,
    INACCURACY_STATUSES,
    InaccuracyReport,
    RemediationException,
)
from remedium.exceptions.service import (
    ExceptionConflict,
    ExceptionInvalid,
    ExceptionNotAllowed,
    ExceptionNotFound,
)
from remedium.intel.models import Vulnerability
from remedium.recommendations.models import (
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)

# Categories that mean "the finding is wrong", so the report can become a false-positive exception.
FALSE_POSITIVE_CATEGORIES = ("FalsePositive", "SoftwareNotInstalled", "WrongVersion", "WrongDevice")


def object_groups(session: Session, object_type: str, object_id: str) -> set[int]:
    """The device groups a recommendation or vulnerability is present in."""
    if object_type == "recommendation":
        query = select(RecommendationGroupStat.device_group_id).where(
            RecommendationGroupStat.recommendation_id == object_id
        )
    else:
        query = (
            select(RecommendationVulnerability.device_group_id)
            .where(RecommendationVulnerability.vulnerability_id == object_id)
            .distinct()
        )
    return set(session.scalars(query))


def _report_groups(session: Session, report_id: str) -> list[int]:
    report = session.get(InaccuracyReport, int(report_id)) if report_id.isdigit() else None
    return decode_groups(report.device_group_ids) if report is not None else []


# Every audit event of a report carries the report's scope.
register_scope("inaccuracy_report", _report_groups)


def report_inaccuracy(
    session: Session,
    principal: Principal,
    *,
    object_type: str,
    object_id: str,
    category: str,
    details: str = "",
    as_of: datetime | None = None,
) -> InaccuracyReport:
    """File a report that a recommendation or vulnerability is wrong (needs the view right)."""
    if not principal.has(Right.VIEW):
        raise ExceptionNotAllowed("the 'view' right is required")
    if category not in INACCURACY_CATEGORIES:
        raise ExceptionInvalid(f"unknown category {category!r}", "category")
    model = {"recommendation": Recommendation, "vulnerability": Vulnerability}.get(object_type)
    if model is None:
        raise ExceptionInvalid(f"unknown object type {object_type!r}", "object_type")
    if session.get(model, object_id) is None:
        raise ExceptionNotFound(f"{object_type} {object_id} not found")
    # The report belongs to the groups of its object that the reporter sees; an object in none of
    # them answers like an unknown one (a scoped user learns nothing about other groups).
    groups = object_groups(session, object_type, object_id)
    visible = principal.scope.device_group_ids
    if visible is not None:
        groups &= visible
        if not groups:
            raise ExceptionNotFound(f"{object_type} {object_id} not found")
    report = InaccuracyReport(
        object_type=object_type,
        object_id=object_id,
        category=category,
        details=details,
        reporter_user_id=principal.user_id,
        reporter=principal.name,
        created_at=as_of or utcnow(),
        status="new",
        device_group_ids=encode_groups(groups),
    )
    session.add(report)
    session.flush()
    record(
        session,
        actor=principal,
        action="inaccuracy.report",
        object_type="inaccuracy_report",
        object_id=report.id,
        after={"object_type": object_type, "object_id": object_id, "category": category},
        reason=details,
    )
    return report


def _mine(principal: Principal) -> bool:
    return not principal.has(Right.ADMIN)


def _in_scope(principal: Principal, report: InaccuracyReport) -> bool:
    visible = principal.scope.device_group_ids
    if visible is None or report.reporter == principal.name:
        return True
    return bool(visible & set(decode_groups(report.device_group_ids)))


def list_reports(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    offset: int = 0,
    limit: int = 25,
) -> tuple[Sequence[InaccuracyReport], int]:
    """Reports, newest first: every one for administrators, one's own for everyone else."""
    query = select(InaccuracyReport)
    if _mine(principal):
        query = query.where(InaccuracyReport.reporter == principal.name)
    elif principal.scope.device_group_ids is not None:
        # A scoped administrator sees the reports of their groups (and their own).
        query = query.where(
            or_(
                InaccuracyReport.reporter == principal.name,
                *(
                    InaccuracyReport.device_group_ids.contains(f",{group_id},")
                    for group_id in sorted(principal.scope.device_group_ids)
                ),
            )
        )
    if status:
        if status not in INACCURACY_STATUSES:
            raise ExceptionInvalid(f"unknown status {status!r}", "status")
        query = query.where(InaccuracyReport.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(InaccuracyReport.created_at.desc(), InaccuracyReport.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, total


def get_report(session: Session, principal: Principal, report_id: int) -> InaccuracyReport | None:
    """One report, or ``None`` when missing or not the caller's (unless an administrator)."""
    report = session.get(InaccuracyReport, report_id)
    if report is None or (_mine(principal) and report.reporter != principal.name):
        return None
    if not _in_scope(principal, report):
        return None
    return report


def _resolve(
    session: Session,
    principal: Principal,
    report_id: int,
    *,
    status: str,
    comment: str,
    as_of: datetime | None,
) -> InaccuracyReport:
    if not principal.has(Right.ADMIN):
        raise ExceptionNotAllowed("only administrators resolve inaccuracy reports")
    report = session.get(InaccuracyReport, report_id)
    if report is None or not _in_scope(principal, report):
        raise ExceptionNotFound(f"inaccuracy report {report_id} not found")
    if report.status != "new":
        raise ExceptionConflict(f"inaccuracy report {report_id} is already {report.status}")
    report.status = status
    report.resolver = principal.name
    report.resolved_at = as_of or utcnow()
    report.resolution_comment = comment
    session.flush()
    record(
        session,
        actor=principal,
        action=f"inaccuracy.{'confirm' if status == 'confirmed' else 'dismiss'}",
        object_type="inaccuracy_report",
        object_id=report.id,
        before={"status": "new"},
        after={"status": status},
        reason=comment,
    )
    return report


def confirm_report(
    session: Session,
    principal: Principal,
    report_id: int,
    *,
    comment: str = "",
    as_of: datetime | None = None,
) -> InaccuracyReport:
    """Confirm a new report (administrators)."""
    return _resolve(session, principal, report_id, status="confirmed", comment=comment, as_of=as_of)


def dismiss_report(
    session: Session,
    principal: Principal,
    report_id: int,
    *,
    comment: str = "",
    as_of: datetime | None = None,
) -> InaccuracyReport:
    """Dismiss a new report (administrators)."""
    return _resolve(session, principal, report_id, status="dismissed", comment=comment, as_of=as_of)


def report_to_exception(
    session: Session,
    principal: Principal,
    report_id: int,
    *,
    is_global: bool = True,
    device_group_ids: Collection[int] = (),
    all_groups: bool = False,
    duration_days: int | None = 180,
    expires_on: datetime | None = None,
    context: str | None = None,
    as_of: datetime | None = None,
) -> RemediationException:
    """Turn a confirmed false-positive report into an exception "Other \u2013 false positive"."""
    if not principal.has(Right.ADMIN):
        raise ExceptionNotAllowed("only administrators turn reports into exceptions")
    report = session.get(InaccuracyReport, report_id)
    if report is None or not _in_scope(principal, report):
        raise ExceptionNotFound(f"inaccuracy report {report_id} not found")
    if report.status != "confirmed":
        raise ExceptionConflict("only a confirmed report can become an exception")
    if report.category not in FALSE_POSITIVE_CATEGORIES:
        raise ExceptionConflict("only a report of a wrong finding can become an exception")
    if report.exception_id is not None:
        raise ExceptionConflict(f"already turned into exception {report.exception_id}")
    target = {"recommendation_id": report.object_id}
    if report.object_type == "vulnerability":
        target = {"vulnerability_id": report.object_id}
    exc = file_exception(
        session,
        principal,
        justification="FalsePositive",
        context=context
        if context is not None
        else f"Inaccuracy report {report.id}: {report.details}",
        is_global=is_global,
        device_group_ids=device_group_ids,
        all_groups=all_groups,
        duration_days=None if expires_on is not None else duration_days,
        expires_on=expires_on,
        as_of=as_of,
        recommendation_id=target.get("recommendation_id"),
        vulnerability_id=target.get("vulnerability_id"),
    )
    report.exception_id = exc.id
    session.flush()
    record(
        session,
        actor=principal,
        action="inaccuracy.to_exception",
        object_type="inaccuracy_report",
        object_id=report.id,
        after={"exception_id": exc.id},
    )
    return exc
