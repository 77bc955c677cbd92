"""What the exceptions in effect cover: the one input the recompute and the recommendation
statuses read from the exceptions feature, and those statuses (Active, Partial or Full
exception) for a scope.

It lives here, below both services: exceptions are filed on recommendations (and CVEs) and
trigger the recompute, so ``exceptions`` imports ``recommendations`` and never the reverse; this
module reads only the exceptions' tables (``exceptions.models``), like ``inventory.groups``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from remedium.auth.principal import Scope
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.exceptions.models import RemediationException
from remedium.recommendations.models import RecommendationGroupStat

ImpactName = Literal["NoImpact", "MitigationLike", "Hybrid"]
# Recommendation statuses for a scope (docs/scoring.md, "After exceptions").
ACTIVE, PARTIAL, FULL = "Active", "Partial exception", "Full exception"


@dataclass(frozen=True, slots=True)
class Coverage:
    """What one exception in effect covers, for the score integration (docs/exceptions.md).

    ``device_group_ids=None`` means every device group (a global exception, future groups too).
    Exactly one of ``recommendation_id`` (the whole recommendation and all its CVEs) and
    ``vulnerability_id`` (one CVE, on whichever recommendations carry it) is set.
    """

    recommendation_id: str | None
    vulnerability_id: str | None
    device_group_ids: frozenset[int] | None
    impact: ImpactName
    exception_id: int
    justification: str = ""


def effective_coverage(session: Session, as_of: datetime | None = None) -> list[Coverage]:
    """What the exceptions in effect at ``as_of`` cover: the one input the scores need.

    Only ``InEffect`` exceptions and groups count (a ``Suspended`` group is covered by the global
    exception that holds it, which is in the list itself). An exception whose end date has passed
    is left out even before the job marks it expired, so scores never lag behind the calendar.
    See docs/exceptions.md for how the exposure score and Secure Score use it.
    """
    as_of = as_of or utcnow()
    result = []
    for exc in session.scalars(
        select(RemediationException)
        .where(
            RemediationException.status == "InEffect",
            RemediationException.expires_on > as_of,
            RemediationException.created_at <= as_of,
        )
        .options(selectinload(RemediationException.groups))
        .order_by(RemediationException.id)
    ):
        groups: frozenset[int] | None = None
        if not exc.is_global:
            groups = frozenset(g.device_group_id for g in exc.groups if g.status == "InEffect")
            if not groups:
                continue
        impact: ImpactName = exc.impact  # type: ignore[assignment]  # checked by a constraint
        result.append(
            Coverage(
                recommendation_id=exc.recommendation_id,
                vulnerability_id=exc.vulnerability_id,
                device_group_ids=groups,
                impact=impact,
                exception_id=exc.id,
                justification=exc.justification,
            )
        )
    return result


class ExceptionStatus(BaseModel):
    """How exceptions in effect cover one recommendation in a scope."""

    model_config = ConfigDict(frozen=True)

    status: str
    impacts: list[str]
    exception_ids: list[int]


def exception_statuses(
    session: Session, scope: Scope, as_of: datetime | None = None
) -> dict[str, ExceptionStatus]:
    """Recommendations under an exception in effect in ``scope``, with their status.

    **Full exception** when a global exception covers it, or every group of the scope where it
    has exposed devices is covered; **Partial exception** when some are. Recommendations not in
    the result are **Active**. Any impact counts (docs/exceptions.md). A few small queries: one
    for the exceptions in effect, one for the exposed groups of the covered recommendations.
    """
    covered: dict[str, tuple[set[int] | None, list[str], list[int]]] = {}
    for item in effective_coverage(session, as_of):
        if item.recommendation_id is None:
            continue
        groups, impacts, ids = covered.setdefault(item.recommendation_id, (set(), [], []))
        if item.device_group_ids is None:
            groups = None
        elif groups is not None:
            groups |= set(item.device_group_ids)
        covered[item.recommendation_id] = (
            groups,
            [*impacts, item.impact],
            [*ids, item.exception_id],
        )
    if not covered:
        return {}
    stat = RecommendationGroupStat
    exposed: dict[str, set[int]] = {}
    for rec_id, group_id in session.execute(
        select(stat.recommendation_id, stat.device_group_id).where(
            stat.recommendation_id.in_(sorted(covered)),
            stat.exposed_devices > 0,
            in_scope(stat.device_group_id, scope),
        )
    ):
        exposed.setdefault(rec_id, set()).add(int(group_id))
    result = {}
    for rec_id, (groups, impacts, ids) in covered.items():
        in_scope_groups = exposed.get(rec_id, set())
        hit = in_scope_groups if groups is None else in_scope_groups & groups
        if groups is not None and not hit:
            continue  # its groups are outside this scope
        status = FULL if groups is None or hit == in_scope_groups else PARTIAL
        result[rec_id] = ExceptionStatus(
            status=status, impacts=sorted(set(impacts)), exception_ids=sorted(ids)
        )
    return result
