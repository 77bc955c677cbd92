"""The score preview of an exception not yet filed: the scope's scores now, after the
exceptions in effect, and with one more (docs/exceptions.md). Reads only; writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.scoping import active_since, in_scope
from remedium.exceptions.models import IMPACTS
from remedium.exceptions.service import ExceptionInvalid
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, DeviceGroup, Weakness
from remedium.recommendations.models import DeviceRecommendation
from remedium.scoring import engine as scoring_engine
from remedium.scoring.models import GroupSecureStat
from remedium.scoring.queries import exposure_sums_both
from remedium.scoring.service import PreviewDevice, preview_after_exceptions


@dataclass(frozen=True, slots=True)
class ScorePreview:
    """The scope's scores now, after the exceptions in effect, and with one more exception."""

    exposure_score: float
    exposure_score_after_exceptions: float
    exposure_score_with_exception: float
    secure_score: float
    secure_score_after_exceptions: float
    secure_score_with_exception: float


def preview_exception(
    session: Session,
    scope: Scope,
    *,
    recommendation_id: str | None = None,
    vulnerability_id: str | None = None,
    impact: str = "MitigationLike",
    is_global: bool = False,
    device_group_ids: Collection[int] = (),
    as_of: datetime | None = None,
) -> ScorePreview:
    """What the scope's scores would be with this exception, without writing anything.

    Reads the scope's stored after-exceptions sums and the target's rows on the covered active
    devices (``device_recommendation`` for a recommendation, open weaknesses for a CVE), and
    applies ``scoring.service.preview_after_exceptions``. ``NoImpact`` changes nothing. For a
    CVE, points a recommendation exception already removes are not told apart (the preview can
    then overstate the fall on those devices).
    """
    if impact not in IMPACTS:
        raise ExceptionInvalid(f"unknown impact {impact!r}", "impact")
    if (recommendation_id is None) == (vulnerability_id is None):
        raise ExceptionInvalid("give either a recommendation or a vulnerability", "type")
    sums, sums_after = exposure_sums_both(session, scope)
    passed, passed_after, total = (
        float(v or 0.0)
        for v in session.execute(
            select(
                func.sum(GroupSecureStat.passed_weight),
                func.sum(GroupSecureStat.passed_weight_after),
                func.sum(GroupSecureStat.total_weight),
            ).where(in_scope(GroupSecureStat.device_group_id, scope))
        ).one()
    )
    devices: list[PreviewDevice] = []
    if impact != "NoImpact":
        conditions: list[ColumnElement[bool]] = [
            Device.last_seen >= active_since(as_of),
            in_scope(Device.device_group_id, scope),
        ]
        if not is_global:
            conditions.append(Device.device_group_id.in_(sorted(set(device_group_ids))))
        if recommendation_id is not None:
            devices = _recommendation_devices(session, recommendation_id, conditions)
        else:
            devices = _cve_devices(session, vulnerability_id or "", conditions)
    exposure_with, secure_with = preview_after_exceptions(sums_after, passed_after, total, devices)
    return ScorePreview(
        exposure_score=round(sums.score(), 2),
        exposure_score_after_exceptions=round(sums_after.score(), 2),
        exposure_score_with_exception=round(exposure_with, 2),
        secure_score=round(scoring_engine.secure_score(passed, total), 2),
        secure_score_after_exceptions=round(scoring_engine.secure_score(passed_after, total), 2),
        secure_score_with_exception=round(secure_with, 2),
    )


def _recommendation_devices(
    session: Session, recommendation_id: str, conditions: list[ColumnElement[bool]]
) -> list[PreviewDevice]:
    """The covered devices' rows of the recommendation: what an exception on it would remove."""
    dr = DeviceRecommendation
    return [
        PreviewDevice(
            value,
            float(points_after),
            max(float(points) - float(covered), 0.0),
            float(weight) if float(covered) <= 0 else 0.0,
        )
        for value, points_after, points, covered, weight in session.execute(
            select(
                Device.device_value,
                Device.exposure_points_after,
                dr.points,
                dr.covered_points,
                dr.config_weight,
            )
            .join(Device, Device.id == dr.device_id)
            .where(dr.recommendation_id == recommendation_id, *conditions)
        )
    ]


def _cve_devices(
    session: Session, vulnerability_id: str, conditions: list[ColumnElement[bool]]
) -> list[PreviewDevice]:
    """The covered devices' open weaknesses of the CVE: what an exception on it would remove."""
    multiplier = scoring_engine.INTERNET_FACING
    return [
        PreviewDevice(
            value,
            float(points_after),
            float(raw) * (multiplier if facing else 1.0),
        )
        for value, points_after, facing, raw in session.execute(
            select(
                Device.device_value,
                Device.exposure_points_after,
                Device.internet_facing,
                func.sum(Vulnerability.exposure_points),
            )
            .join(Weakness, Weakness.device_id == Device.id)
            .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
            .where(
                Weakness.vulnerability_id == vulnerability_id,
                Weakness.fixed_at.is_(None),
                *conditions,
            )
            .group_by(
                Device.id,
                Device.device_value,
                Device.exposure_points_after,
                Device.internet_facing,
            )
        )
    ]


def preview_groups(session: Session, scope: Scope) -> list[int]:
    """Every device group in ``scope`` (the "all groups" choice of the preview)."""
    return [
        int(g)
        for g in session.scalars(select(DeviceGroup.id).where(in_scope(DeviceGroup.id, scope)))
    ]
