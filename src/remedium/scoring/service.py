"""The write side of scoring: vulnerability points, daily snapshots, and sums-to-score helpers.

Device points, device scores and the per-group sums are rebuilt by
:func:`remedium.recommendations.service.recompute` (one pass derives recommendations and scores
together); read-side scoped queries live in :mod:`remedium.scoring.queries`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Date, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from remedium.common import cache
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Weakness
from remedium.scoring import engine
from remedium.scoring.models import GroupScoreStat, GroupSecureStat, ScoreSnapshot, SecureSnapshot

_CHUNK = 1000
# Points are stored rounded to 6 places by the formula; smaller differences are not changes.
_TOLERANCE = 1e-9


def refresh_vulnerability_points(
    session: Session, vulnerability_ids: Collection[str] | None = None
) -> set[int]:
    """Recompute ``vulnerability.exposure_points`` from each vulnerability's facts.

    Only the given vulnerabilities (all when ``None``). Returns the ids of the devices that have
    open weaknesses of a vulnerability whose points changed: pass them to
    ``recommendations.service.recompute(device_ids=...)``. Flushes, never commits.
    """
    session.flush()
    query = select(
        Vulnerability.id,
        Vulnerability.cvss_v3_score,
        Vulnerability.cvss_v4_score,
        Vulnerability.severity,
        Vulnerability.kev_listed,
        Vulnerability.public_exploit,
        Vulnerability.epss,
        Vulnerability.exposure_points,
    )
    rows = []
    if vulnerability_ids is None:
        rows = list(session.execute(query))
    else:
        ids = sorted(set(vulnerability_ids))
        for start in range(0, len(ids), _CHUNK):
            rows.extend(
                session.execute(query.where(Vulnerability.id.in_(ids[start : start + _CHUNK])))
            )
    changes = []
    for vid, cvss3, cvss4, severity, kev, exploit, epss, stored in rows:
        points = engine.vulnerability_points(
            cvss_score=cvss3 if cvss3 is not None else cvss4,
            severity=severity,
            kev_listed=bool(kev),
            public_exploit=bool(exploit),
            epss=epss,
        )
        if abs(points - float(stored or 0.0)) > _TOLERANCE:
            changes.append({"id": vid, "exposure_points": points})
    for start in range(0, len(changes), _CHUNK):
        session.execute(update(Vulnerability), changes[start : start + _CHUNK])
    changed_ids = [change["id"] for change in changes]
    devices: set[int] = set()
    for start in range(0, len(changed_ids), _CHUNK):
        devices.update(
            session.scalars(
                select(Weakness.device_id)
                .where(
                    Weakness.vulnerability_id.in_(changed_ids[start : start + _CHUNK]),
                    Weakness.fixed_at.is_(None),
                )
                .distinct()
            )
        )
    return devices


def snapshot_scores(session: Session, day: date) -> int:
    """Copy today's per-group sums into the history for ``day``, replacing that day.

    Returns the number of group rows written. Flushes, never commits.
    """
    session.flush()
    cache.bump(session, cache.DASHBOARD)  # the dashboard's history moves
    session.execute(delete(ScoreSnapshot).where(ScoreSnapshot.day == day))
    session.execute(delete(SecureSnapshot).where(SecureSnapshot.day == day))
    stat = GroupScoreStat
    session.execute(
        insert(ScoreSnapshot).from_select(
            [
                "day",
                "device_group_id",
                "active_devices",
                "high_value_devices",
                "weight_low_normal",
                "exposure_weighted",
                "exposure_high",
                "exposure_weighted_after",
                "exposure_high_after",
            ],
            select(
                _day_literal(day),
                stat.device_group_id,
                stat.active_devices,
                stat.high_value_devices,
                stat.weight_low_normal,
                stat.exposure_weighted,
                stat.exposure_high,
                stat.exposure_weighted_after,
                stat.exposure_high_after,
            ),
        )
    )
    secure = GroupSecureStat
    session.execute(
        insert(SecureSnapshot).from_select(
            [
                "day",
                "device_group_id",
                "category",
                "passed_weight",
                "total_weight",
                "passed_weight_after",
            ],
            select(
                _day_literal(day),
                secure.device_group_id,
                secure.category,
                secure.passed_weight,
                secure.total_weight,
                secure.passed_weight_after,
            ),
        )
    )
    # Counted, not taken from rowcount: drivers disagree on it for INSERT ... SELECT.
    written = session.execute(
        select(func.count()).select_from(ScoreSnapshot).where(ScoreSnapshot.day == day)
    ).scalar_one()
    return int(written)


def _day_literal(day: date) -> Any:
    return literal(day, Date()).label("day")


def exposure_sums_of(rows: Iterable[GroupScoreStat | ScoreSnapshot]) -> engine.ExposureSums:
    """The exposure sums of a set of groups, from their ``group_score_stat`` (or snapshot) rows."""
    sums = engine.ExposureSums()
    for row in rows:
        sums += engine.ExposureSums(
            row.active_devices,
            row.high_value_devices,
            row.weight_low_normal,
            row.exposure_weighted,
            row.exposure_high,
        )
    return sums


def exposure_score_of(rows: Iterable[GroupScoreStat | ScoreSnapshot]) -> float:
    """The exposure score (0-100) of a set of groups, from their sum rows."""
    return exposure_sums_of(rows).score()


def secure_score_of(rows: Iterable[GroupSecureStat | SecureSnapshot]) -> float:
    """Secure Score (0-100) of a set of groups (and categories), from their sum rows."""
    passed = total = 0.0
    for row in rows:
        passed += row.passed_weight
        total += row.total_weight
    return engine.secure_score(passed, total)


@dataclass(frozen=True, slots=True)
class PreviewDevice:
    """One active device an exception would cover, as the preview needs it."""

    device_value: str
    points_after: float  # the device's after-exceptions points now
    removed: float  # the points the exception would remove that no exception removes yet
    config_weight: float = 0.0  # failing-check weight it would count as passed


def preview_after_exceptions(
    sums_after: engine.ExposureSums,
    passed_after: float,
    secure_total: float,
    devices: Iterable[PreviewDevice],
) -> tuple[float, float]:
    """Exposure score and Secure Score after exceptions if one more Mitigation-like exception
    covered ``devices``: pure, from the scope's current after-exceptions sums.

    Each device's score falls from ``f(P)`` to ``f(P - removed)``; weights and active counts do
    not change, so the scope's score falls by ``sums_after.impact`` of those falls (exact, as in
    docs/scoring.md "After exceptions"); covered failing checks add their weight to the passed
    weight.
    """
    delta_weighted = delta_high = config = 0.0
    for device in devices:
        before = engine.exposure_score(device.points_after)
        after = engine.exposure_score(max(device.points_after - device.removed, 0.0))
        if device.device_value == "High":
            delta_high += before - after
        else:
            delta_weighted += engine.DEVICE_WEIGHTS.get(device.device_value, 1.0) * (before - after)
        config += device.config_weight
    exposure = sums_after.score() - sums_after.impact(delta_weighted, delta_high)
    return max(exposure, 0.0), engine.secure_score(passed_after + config, secure_total)
