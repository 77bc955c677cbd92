"""Scoped read side of the scores: exposure score, Secure Score, distribution and history.

Every figure is computed from the small per-group sum tables (``group_score_stat``,
``group_secure_stat``, ``score_snapshot``, ``secure_snapshot``) with the formulas in
:mod:`remedium.scoring.engine`, so a scope of any set of groups costs one small aggregate.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.common.scoping import in_scope
from remedium.intel.models import CATEGORY_LABELS, CONFIGURATION_CATEGORIES
from remedium.inventory.models import DeviceGroup
from remedium.scoring import engine
from remedium.scoring.models import GroupScoreStat, GroupSecureStat, ScoreSnapshot, SecureSnapshot


class ExposureScoreView(BaseModel):
    """The exposure score of a scope (0-100, lower is better) and its band."""

    model_config = ConfigDict(frozen=True)

    score: float
    band: str
    time: datetime
    active_devices: int
    # The same score after exceptions (docs/scoring.md, "After exceptions").
    score_after_exceptions: float = 0.0
    band_after_exceptions: str = "Low"


class GroupExposureView(BaseModel):
    """The exposure score of one device group."""

    model_config = ConfigDict(frozen=True)

    group_id: int
    group_name: str
    score: float
    band: str
    active_devices: int


class CategoryScoreView(BaseModel):
    """Secure Score of one configuration category."""

    model_config = ConfigDict(frozen=True)

    category: str
    label: str
    score: float
    passed_weight: float
    total_weight: float


class SecureScoreView(BaseModel):
    """Secure Score for devices (0-100, higher is better), overall and by category."""

    model_config = ConfigDict(frozen=True)

    score: float
    passed_weight: float
    total_weight: float
    categories: list[CategoryScoreView]
    # Counting failing checks under Mitigation-like/Hybrid exceptions as passed.
    score_after_exceptions: float = 100.0
    passed_weight_after_exceptions: float = 0.0


class DistributionView(BaseModel):
    """Active devices by exposure level."""

    model_config = ConfigDict(frozen=True)

    none: int
    low: int
    medium: int
    high: int


class HistoryPointView(BaseModel):
    """One day of the score trend."""

    model_config = ConfigDict(frozen=True)

    day: date
    exposure_score: float
    secure_score: float
    exposure_score_after_exceptions: float = 0.0
    secure_score_after_exceptions: float = 100.0


def exposure_sums(
    session: Session, scope: Scope, *, after_exceptions: bool = False
) -> engine.ExposureSums:
    """The exposure sums of every active device in ``scope`` (one aggregate query), as they
    are or, with ``after_exceptions``, over the devices' after-exceptions scores."""
    return exposure_sums_both(session, scope)[1 if after_exceptions else 0]


def exposure_sums_both(
    session: Session, scope: Scope
) -> tuple[engine.ExposureSums, engine.ExposureSums]:
    """The scope's exposure sums as they are and after exceptions, in one aggregate query."""
    stat = GroupScoreStat
    row = session.execute(
        select(
            func.coalesce(func.sum(stat.active_devices), 0),
            func.coalesce(func.sum(stat.high_value_devices), 0),
            func.coalesce(func.sum(stat.weight_low_normal), 0.0),
            func.coalesce(func.sum(stat.exposure_weighted), 0.0),
            func.coalesce(func.sum(stat.exposure_high), 0.0),
            func.coalesce(func.sum(stat.exposure_weighted_after), 0.0),
            func.coalesce(func.sum(stat.exposure_high_after), 0.0),
        ).where(in_scope(stat.device_group_id, scope))
    ).one()
    active, high, weight = int(row[0]), int(row[1]), float(row[2])
    return (
        engine.ExposureSums(active, high, weight, float(row[3]), float(row[4])),
        engine.ExposureSums(active, high, weight, float(row[5]), float(row[6])),
    )


def secure_total_weight(session: Session, scope: Scope) -> float:
    """The applicable configuration weight over the scope (the Secure Score denominator)."""
    total = session.execute(
        select(func.coalesce(func.sum(GroupSecureStat.total_weight), 0.0)).where(
            in_scope(GroupSecureStat.device_group_id, scope)
        )
    ).scalar_one()
    return float(total)


def exposure_score(session: Session, scope: Scope) -> ExposureScoreView:
    """The scope's exposure score: the weighted average of its active devices' scores, as
    they are and after exceptions."""
    sums, after = exposure_sums_both(session, scope)
    score = sums.score()
    score_after = after.score()
    return ExposureScoreView(
        score=round(score, 2),
        band=engine.score_band(score),
        time=datetime.now(UTC),
        active_devices=sums.active_devices,
        score_after_exceptions=round(score_after, 2),
        band_after_exceptions=engine.score_band(score_after),
    )


def exposure_by_group(session: Session, scope: Scope) -> list[GroupExposureView]:
    """The exposure score of every device group in scope, by group name."""
    stat = GroupScoreStat
    rows = session.execute(
        select(
            DeviceGroup.id,
            DeviceGroup.name,
            stat.active_devices,
            stat.high_value_devices,
            stat.weight_low_normal,
            stat.exposure_weighted,
            stat.exposure_high,
        )
        .outerjoin(stat, stat.device_group_id == DeviceGroup.id)
        .where(in_scope(DeviceGroup.id, scope))
        .order_by(DeviceGroup.name)
    ).all()
    views = []
    for group_id, name, active, high, weight, weighted, exposure_high in rows:
        sums = engine.ExposureSums(
            int(active or 0),
            int(high or 0),
            float(weight or 0.0),
            float(weighted or 0.0),
            float(exposure_high or 0.0),
        )
        score = sums.score()
        views.append(
            GroupExposureView(
                group_id=group_id,
                group_name=name,
                score=round(score, 2),
                band=engine.score_band(score),
                active_devices=sums.active_devices,
            )
        )
    return views


def secure_score(session: Session, scope: Scope) -> SecureScoreView:
    """Secure Score for devices over the scope, overall and for each of the five categories."""
    rows = session.execute(
        select(
            GroupSecureStat.category,
            func.sum(GroupSecureStat.passed_weight),
            func.sum(GroupSecureStat.total_weight),
            func.sum(GroupSecureStat.passed_weight_after),
        )
        .where(in_scope(GroupSecureStat.device_group_id, scope))
        .group_by(GroupSecureStat.category)
    ).all()
    by_category = {category: (float(p or 0), float(t or 0)) for category, p, t, _ in rows}
    passed_after = sum(float(a or 0) for _, _, _, a in rows)
    categories = []
    for category in CONFIGURATION_CATEGORIES:
        passed, total = by_category.get(category, (0.0, 0.0))
        categories.append(
            CategoryScoreView(
                category=category,
                label=CATEGORY_LABELS[category],
                score=round(engine.secure_score(passed, total), 2),
                passed_weight=passed,
                total_weight=total,
            )
        )
    passed = sum(p for p, _ in by_category.values())
    total = sum(t for _, t in by_category.values())
    return SecureScoreView(
        score=round(engine.secure_score(passed, total), 2),
        passed_weight=passed,
        total_weight=total,
        categories=categories,
        score_after_exceptions=round(engine.secure_score(passed_after, total), 2),
        passed_weight_after_exceptions=passed_after,
    )


def exposure_distribution(session: Session, scope: Scope) -> DistributionView:
    """How many active devices in scope are at each exposure level."""
    stat = GroupScoreStat
    row = session.execute(
        select(
            func.coalesce(func.sum(stat.devices_none), 0),
            func.coalesce(func.sum(stat.devices_low), 0),
            func.coalesce(func.sum(stat.devices_medium), 0),
            func.coalesce(func.sum(stat.devices_high), 0),
        ).where(in_scope(stat.device_group_id, scope))
    ).one()
    return DistributionView(none=int(row[0]), low=int(row[1]), medium=int(row[2]), high=int(row[3]))


def score_history(
    session: Session, scope: Scope, days: int = 30, *, today: date | None = None
) -> list[HistoryPointView]:
    """Daily exposure score and Secure Score over the last ``days`` days, oldest first.

    Only days with a snapshot appear; a day with exposure sums but no Secure Score sums shows
    a Secure Score of 100 (nothing applicable), like :func:`engine.secure_score`.
    """
    end = today or datetime.now(UTC).date()
    start = end - timedelta(days=max(days, 1) - 1)
    snap = ScoreSnapshot
    exposure_rows = session.execute(
        select(
            snap.day,
            func.sum(snap.active_devices),
            func.sum(snap.high_value_devices),
            func.sum(snap.weight_low_normal),
            func.sum(snap.exposure_weighted),
            func.sum(snap.exposure_high),
            func.sum(snap.exposure_weighted_after),
            func.sum(snap.exposure_high_after),
        )
        .where(in_scope(snap.device_group_id, scope), snap.day >= start, snap.day <= end)
        .group_by(snap.day)
    ).all()
    secure_rows = session.execute(
        select(
            SecureSnapshot.day,
            func.sum(SecureSnapshot.passed_weight),
            func.sum(SecureSnapshot.total_weight),
            func.sum(SecureSnapshot.passed_weight_after),
        )
        .where(
            in_scope(SecureSnapshot.device_group_id, scope),
            SecureSnapshot.day >= start,
            SecureSnapshot.day <= end,
        )
        .group_by(SecureSnapshot.day)
    ).all()
    exposure_by_day = {
        day: (
            engine.ExposureSums(
                int(a or 0), int(h or 0), float(w or 0), float(ew or 0), float(eh or 0)
            ).score(),
            engine.ExposureSums(
                int(a or 0), int(h or 0), float(w or 0), float(ewa or 0), float(eha or 0)
            ).score(),
        )
        for day, a, h, w, ew, eh, ewa, eha in exposure_rows
    }
    secure_by_day = {
        day: (
            engine.secure_score(float(p or 0), float(t or 0)),
            engine.secure_score(float(pa or 0), float(t or 0)),
        )
        for day, p, t, pa in secure_rows
    }
    days_seen = sorted(set(exposure_by_day) | set(secure_by_day))
    return [
        HistoryPointView(
            day=day,
            exposure_score=round(exposure_by_day.get(day, (0.0, 0.0))[0], 2),
            secure_score=round(secure_by_day.get(day, (100.0, 100.0))[0], 2),
            exposure_score_after_exceptions=round(exposure_by_day.get(day, (0.0, 0.0))[1], 2),
            secure_score_after_exceptions=round(secure_by_day.get(day, (100.0, 100.0))[1], 2),
        )
        for day in days_seen
    ]
