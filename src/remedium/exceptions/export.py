"""Turning the exceptions in effect into :mod:`remedium.exceptions.vex` entries (reads only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from remedium.auth.principal import Scope
from remedium.db.base import utcnow
from remedium.exceptions import vex
from remedium.exceptions.models import InaccuracyReport, RemediationException
from remedium.exceptions.service import group_names, visible
from remedium.inventory.models import Software
from remedium.recommendations.models import Recommendation, RecommendationVulnerability


def vex_entries(
    session: Session, scope: Scope, *, as_of: datetime | None = None
) -> list[vex.VexEntry]:
    """The exceptions in effect visible in ``scope``, shaped for the VEX export.

    Configuration recommendations have no vulnerabilities and so no VEX statement. A
    recommendation exception speaks for every CVE now behind the recommendation (or those at
    filing, if the recommendation is gone); a CVE exception for its CVE on every product
    that carries it.
    """
    as_of = as_of or utcnow()
    rows = session.scalars(
        select(RemediationException)
        .where(
            RemediationException.status.in_(("InEffect", "Suspended")),
            RemediationException.expires_on > as_of,
            visible(scope),
        )
        .options(selectinload(RemediationException.groups))
        .order_by(RemediationException.id)
    ).all()
    names = group_names(session, (g.device_group_id for exc in rows for g in exc.groups))
    reports = dict(
        session.execute(
            select(InaccuracyReport.exception_id, InaccuracyReport.category).where(
                InaccuracyReport.exception_id.in_([exc.id for exc in rows])
            )
        )
        .tuples()
        .all()
    )
    entries = []
    for exc in rows:
        ids, software_ids = _covered(session, exc)
        if not ids:
            continue
        products = tuple(
            _vex_product(software)
            for software in session.scalars(
                select(Software).where(Software.id.in_(software_ids)).order_by(Software.id)
            )
        )
        scope_note = _scope_note(exc, names, scope)
        entries.append(
            vex.VexEntry(
                exception_id=exc.id,
                justification=exc.justification,
                vulnerability_ids=tuple(ids),
                products=products,
                context=exc.context,
                created_at=exc.created_at,
                expires_on=exc.expires_on,
                updated_at=exc.decided_at or exc.created_at,
                scope_note=scope_note,
                false_positive_kind=(
                    "component_not_present"
                    if reports.get(exc.id) == "SoftwareNotInstalled"
                    else "vulnerable_code_not_present"
                ),
            )
        )
    return entries


def _covered(session: Session, exc: RemediationException) -> tuple[list[str], list[int | None]]:
    """The CVEs the exception speaks for, and the software of the products that carry them."""
    if exc.exception_type == "recommendation":
        assert exc.recommendation_id is not None
        ids: list[str] = sorted(
            set(
                session.scalars(
                    select(RecommendationVulnerability.vulnerability_id).where(
                        RecommendationVulnerability.recommendation_id == exc.recommendation_id
                    )
                )
            )
        ) or list(exc.snapshot.get("vulnerability_ids", []))
        software_ids = list(
            session.scalars(
                select(Recommendation.software_id).where(
                    Recommendation.id == exc.recommendation_id,
                    Recommendation.software_id.is_not(None),
                )
            )
        )
    else:
        assert exc.vulnerability_id is not None
        ids = [exc.vulnerability_id]
        software_ids = list(
            session.scalars(
                select(Recommendation.software_id)
                .join(
                    RecommendationVulnerability,
                    RecommendationVulnerability.recommendation_id == Recommendation.id,
                )
                .where(
                    RecommendationVulnerability.vulnerability_id == exc.vulnerability_id,
                    Recommendation.software_id.is_not(None),
                )
                .distinct()
            )
        )
    return ids, software_ids


def _scope_note(exc: RemediationException, names: dict[int, str], scope: Scope) -> str:
    """Where the exception applies, as the VEX statement tells it (only groups in ``scope``)."""
    if exc.is_global:
        return "all device groups"
    shown = [
        names.get(g.device_group_id, str(g.device_group_id))
        for g in exc.groups
        if g.status in ("InEffect", "Suspended") and scope.allows(g.device_group_id)
    ]
    return "device groups: " + ", ".join(shown)


def _vex_product(software: Software) -> vex.VexProduct:
    purl = None
    if software.purl_type and software.purl_name:
        purl = f"pkg:{software.purl_type}/{software.purl_name}"
    return vex.VexProduct(
        ref=purl or f"urn:remedium:software:{software.product_key}",
        name=software.display_name,
        vendor=software.display_vendor,
        purl=purl,
    )
