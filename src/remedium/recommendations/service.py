"""Deriving security recommendations and every score sum from the inventory (docs/scoring.md).

:func:`recompute` is the one write path of the derived tables. It runs set-based in SQL that
SQLite and PostgreSQL both understand (``INSERT ... SELECT``, ``UPDATE ... FROM``, temporary
tables for the sets it works on); Python only loops over recommendations, a small set, to apply
the rules of :mod:`remedium.recommendations.engine` that SQL cannot (version comparison, names).

Order of the work, full or incremental:

1. what each target device's open weaknesses and failed checks add up to, per recommendation;
2. the devices' exposure points, score and level, and their Secure Score weights;
3. ``device_recommendation`` rows of those devices, with the exact ``score_delta``;
4. recommendations that appear are created, those left without exposed devices deleted;
5. ``group_score_stat`` (every group: cheap), ``group_secure_stat`` (touched groups);
6. ``recommendation_group_stat`` and ``recommendation_vulnerability`` for the touched
   (recommendation, group) pairs;
7. the fields of touched recommendations, and the organisation-wide counts and impacts of all
   recommendations (they depend on the organisation's sums, which any change moves).

Steps 1-3 (and the creation in 4) are also :func:`recompute_device_rows`, which a large import
runs for the devices it has finished writing while its parser reads on; the import's final
``recompute(..., settled=...)`` then does steps 4-7 for everything, and 1-3 only for the rest.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, insert, text, update
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.db.indexes import defer_indexes, restore_indexes
from remedium.db.types import UtcDateTime
from remedium.recommendations import engine as rules
from remedium.recommendations.models import DeviceRecommendation, Recommendation
from remedium.scoring import engine as scoring
from remedium.settings import get_settings

_TEMP_TABLES = (
    "tmp_rm_devices",
    "tmp_rm_dr",
    "tmp_rm_recs",
    "tmp_rm_groups",
    "tmp_rm_pairs",
    "tmp_rm_exp",
    "tmp_rm_inst",
    "tmp_rm_cov",
)
_CHUNK = 5000
# Points below this are float noise left by subtracting a device's only recommendation.
_EPSILON = 1e-9


@dataclass
class RecomputeStats:
    """What one :func:`recompute` did, and how long each step took (seconds)."""

    full: bool
    devices: int = 0
    device_recommendations: int = 0
    recommendations_touched: int = 0
    recommendations_created: int = 0
    recommendations_deleted: int = 0
    groups_touched: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Total time spent."""
        return sum(self.timings.values())


class _Runner:
    """Runs the recompute's SQL with the formula constants bound as parameters."""

    def __init__(self, session: Session, as_of: datetime, stats: RecomputeStats) -> None:
        self.session = session
        self.as_of = as_of
        self.cutoff = as_of - timedelta(days=get_settings().inactive_after_days)
        self.stats = stats
        self.params: dict[str, Any] = {
            "k": scoring.SATURATION,
            "face": scoring.INTERNET_FACING,
            "cfactor": scoring.CONFIGURATION_FACTOR,
            "low_weight": scoring.DEVICE_WEIGHTS["Low"],
            "normal_weight": scoring.DEVICE_WEIGHTS["Normal"],
            "low_max": scoring.LOW_BAND_MAX,
            "high_min": scoring.HIGH_BAND_MIN,
            "eps": _EPSILON,
            "cutoff": self.cutoff,
        }

    def run(self, sql: str, **extra: Any) -> int:
        """Execute one statement; returns the row count the database reports."""
        statement = text(sql)
        if ":cutoff" in sql:
            # Bound through the column type so SQLite compares timestamps in the stored shape.
            statement = statement.bindparams(bindparam("cutoff", type_=UtcDateTime()))
        params = {name: value for name, value in self.params.items() if f":{name}" in sql}
        params.update(extra)
        result = self.session.execute(statement, params)
        return int(getattr(result, "rowcount", 0) or 0)

    def rows(self, sql: str, **extra: Any) -> list[Any]:
        """Execute one query and return its rows."""
        statement = text(sql)
        if ":cutoff" in sql:
            statement = statement.bindparams(bindparam("cutoff", type_=UtcDateTime()))
        params = {name: value for name, value in self.params.items() if f":{name}" in sql}
        params.update(extra)
        return list(self.session.execute(statement, params))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step of the recompute."""
        started = time.perf_counter()
        yield
        self.stats.timings[name] = self.stats.timings.get(name, 0.0) + (
            time.perf_counter() - started
        )


# SQL fragments shared by the steps. A device's multiplier and weight, from its columns:
_MULTIPLIER = "(CASE WHEN d.internet_facing THEN :face ELSE 1.0 END)"
_WEIGHT = (
    "(CASE WHEN d.device_value = 'High' THEN 0.0 "
    "WHEN d.device_value = 'Low' THEN :low_weight ELSE :normal_weight END)"
)
_IS_HIGH = "(CASE WHEN d.device_value = 'High' THEN 1 ELSE 0 END)"
_ACTIVE = "d.last_seen >= :cutoff"


def recompute(
    session: Session,
    *,
    device_ids: Collection[int] | None = None,
    as_of: datetime | None = None,
    settled: Collection[int] = (),
) -> RecomputeStats:
    """Rebuild recommendations and score sums from the inventory; flushes, never commits.

    ``device_ids=None`` rebuilds everything. Otherwise only what the given devices touch is
    rebuilt (their points and recommendation rows, the (recommendation, group) pairs and groups
    they are in, the fields of their recommendations), and the result equals a full rebuild for
    those devices. Devices that age into inactivity on their own are picked up by the next full
    rebuild (the daily job runs one).

    ``settled`` are devices whose own rows :func:`recompute_device_rows` brought up to date
    (as of ``as_of``); with them, every recommendation and group is rebuilt from the device rows
    as a full rebuild does, and only ``device_ids`` get their own rows rebuilt.
    """
    session.flush()
    as_of = as_of or utcnow()
    full = device_ids is None or _most_devices(session, device_ids)
    # Settled devices changed recommendations and groups nobody has followed yet: all of them.
    everything = full or bool(settled)
    stats = RecomputeStats(full=full)
    run = _Runner(session, as_of, stats)
    with run.step("prepare"):
        _drop_temp_tables(run)
        if session.get_bind().dialect.name == "postgresql":
            # Room to hash the (recommendation, group) aggregates in memory instead of sorting
            # them on disk; SET LOCAL ends with the caller's transaction.
            run.run("SET LOCAL work_mem = '256MB'")
        if not full:
            assert device_ids is not None
            stats.devices = _target_devices(run, device_ids)
    with run.step("device_points"):
        _stage_device_recommendations(run, full)
        covered = _apply_coverage(run, full)
        _update_devices(run, full, covered)
    with run.step("device_recommendations"):
        old_groups = _score_stat_counts(run)
        _collect_touched_recommendations(run, full)
        # The recommendation rows must exist before their device rows (foreign key).
        stats.recommendations_created = _create_recommendations(run)
        stats.device_recommendations = _replace_device_recommendations(run, full)
    with run.step("recommendations"):
        stats.recommendations_deleted = _delete_orphans(run, full)
    with run.step("group_stats"):
        _rebuild_group_score_stat(run)
        stats.groups_touched = _collect_touched_groups(run, full, old_groups)
        # When the touched groups hold most devices, following each touched pair through its
        # group costs more than rebuilding every group's sums from the up-to-date device rows.
        regroup = everything or _most_devices_grouped(run)
        _rebuild_group_secure_stat(run, regroup, covered)
    with run.step("recommendation_group_stats"):
        _rebuild_recommendation_stats(run, regroup)
    with run.step("recommendation_fields"):
        stats.recommendations_touched = _refresh_recommendation_fields(run, everything)
        _refresh_organisation_figures(run)
    with run.step("cleanup"):
        _drop_temp_tables(run)
        if everything:
            _analyze_derived_tables(run)
        if full:
            stats.devices = int(run.rows("SELECT count(*) FROM device")[0][0])
    return stats


def recompute_device_rows(
    session: Session, device_ids: Collection[int], *, as_of: datetime
) -> None:
    """Rebuild the own rows of ``device_ids`` only: their exposure points, score and level,
    Secure Score weights and ``device_recommendation`` rows (creating the recommendations that
    appear, with placeholder fields). No recommendation or group figure moves: the caller
    passes these devices as ``settled`` to a later :func:`recompute` at the same ``as_of``,
    before it commits."""
    session.flush()
    run = _Runner(session, as_of, RecomputeStats(full=False))
    _drop_temp_tables(run)
    _target_devices(run, device_ids)
    _stage_device_recommendations(run, False)
    covered = _apply_coverage(run, False)
    _update_devices(run, False, covered)
    _create_recommendations(run)
    _replace_device_recommendations(run, False)
    _drop_temp_tables(run)


def _target_devices(run: _Runner, device_ids: Collection[int]) -> int:
    """``tmp_rm_devices``: the devices whose own rows are rebuilt. Returns how many."""
    run.run("CREATE TEMPORARY TABLE tmp_rm_devices (id BIGINT PRIMARY KEY)")
    ids = sorted(set(device_ids))
    for start in range(0, len(ids), _CHUNK):
        run.session.execute(
            text("INSERT INTO tmp_rm_devices (id) VALUES (:id)"),
            [{"id": i} for i in ids[start : start + _CHUNK]],
        )
    # PostgreSQL never analyses temporary tables itself; without statistics it guesses
    # thousands of rows and scans the big tables instead of looking devices up.
    run.run("ANALYZE tmp_rm_devices")
    return len(ids)


# Below this many devices an incremental recompute of any share of them is cheap anyway.
_FULL_FROM_DEVICES = 1000


def _most_devices(session: Session, device_ids: Collection[int]) -> bool:
    """True when the devices to recompute are at least half of a large organisation (the
    first import, a rescan of everything): one full rebuild is then cheaper than following
    every (recommendation, group) pair through its group's devices, and gives the same rows."""
    if len(device_ids) < _FULL_FROM_DEVICES:
        return False
    total = int(session.execute(text("SELECT count(*) FROM device")).scalar_one())
    return 2 * len(set(device_ids)) >= total


def _most_devices_grouped(run: _Runner) -> bool:
    """True when the touched groups (incremental) hold at least half of all devices."""
    within, total = run.rows(
        "SELECT coalesce(sum(CASE WHEN device_group_id IN (SELECT id FROM tmp_rm_groups) "
        "THEN 1 ELSE 0 END), 0), count(*) FROM device"
    )[0]
    return int(total) >= _FULL_FROM_DEVICES and 2 * int(within) >= int(total)


def _analyze_derived_tables(run: _Runner) -> None:
    """Refresh planner statistics after a full rebuild: the incremental queries start from a
    few pairs only when the planner knows how big the derived tables really are."""
    if run.session.get_bind().dialect.name == "sqlite":
        # Sample instead of scanning every row of the big tables.
        run.run("PRAGMA analysis_limit = 1000")
    for table in (
        "recommendation",
        "device_recommendation",
        "recommendation_group_stat",
        "recommendation_vulnerability",
        "group_score_stat",
        "group_secure_stat",
    ):
        run.run(f"ANALYZE {table}")


def _in_stored_order(run: _Runner) -> str:
    """SQLite: read the table itself, row by row in stored order, rather than through an
    index that sorts it by another column and jumps back to the table for every row."""
    return " NOT INDEXED" if run.session.get_bind().dialect.name == "sqlite" else ""


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _drop_temp_tables(run: _Runner) -> None:
    for name in _TEMP_TABLES:
        run.run(f"DROP TABLE IF EXISTS {name}")


def _device_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM tmp_rm_devices)"


def _stage_device_recommendations(run: _Runner, full: bool) -> None:
    """Per (device, recommendation): weaknesses, raw points (before the device multiplier)."""
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_dr ("
        "device_id BIGINT NOT NULL, recommendation_id VARCHAR(440) NOT NULL, "
        "software_id INTEGER, configuration_id VARCHAR(300), weaknesses INTEGER NOT NULL, "
        "points FLOAT NOT NULL, config_weight FLOAT NOT NULL, "
        # After exceptions (see _apply_coverage): raw points removed by Mitigation-like/Hybrid
        # exceptions, weaknesses of CVEs under an exception, recommendation under an exception.
        "covered_points FLOAT NOT NULL DEFAULT 0.0, covered_weak INTEGER NOT NULL DEFAULT 0, "
        "rec_covered INTEGER NOT NULL DEFAULT 0)"
    )
    run.run(
        "INSERT INTO tmp_rm_dr (device_id, recommendation_id, software_id, configuration_id, "
        "weaknesses, points, config_weight) "
        "SELECT x.device_id, 'va-_-' || s.product_key, s.id, NULL, x.weaknesses, x.points, 0.0 "
        # Summed per (device, product) first, then named: the product is looked up once per
        # sum, not once per weakness.
        "FROM (SELECT w.device_id, w.software_id, count(*) AS weaknesses, "
        "sum(v.exposure_points) AS points "
        "FROM weakness w JOIN vulnerability v ON v.id = w.vulnerability_id "
        f"WHERE w.fixed_at IS NULL{_device_filter(full, 'w.device_id')} "
        "GROUP BY w.device_id, w.software_id) x "
        "JOIN software s ON s.id = x.software_id"
    )
    run.run(
        "INSERT INTO tmp_rm_dr (device_id, recommendation_id, software_id, configuration_id, "
        "weaknesses, points, config_weight) "
        "SELECT ca.device_id, 'sca-_-' || c.id, NULL, c.id, 1, c.weight * :cfactor, c.weight "
        "FROM configuration_assessment ca "
        "JOIN security_configuration c ON c.id = ca.configuration_id "
        f"WHERE NOT ca.is_compliant{_device_filter(full, 'ca.device_id')}"
    )
    run.run("CREATE INDEX ix_tmp_rm_dr_device ON tmp_rm_dr (device_id)")
    run.run("ANALYZE tmp_rm_dr")


def _update_devices(run: _Runner, full: bool, covered: bool) -> None:
    """Exposure points, score and level, and Secure Score weights of the target devices, as
    they are and after exceptions."""
    where = "" if full else " WHERE id IN (SELECT id FROM tmp_rm_devices)"
    run.run(
        "UPDATE device SET exposure_points = 0.0, exposure_score = 0.0, exposure_level = 'None', "
        "secure_passed_weight = 0.0, secure_total_weight = 0.0, exposure_points_after = 0.0, "
        f"exposure_score_after = 0.0, secure_passed_weight_after = 0.0{where}"
    )
    score = "(100.0 * x.points / (x.points + :k))"
    score_after = "(100.0 * x.after / (x.after + :k))"
    run.run(
        "UPDATE device SET exposure_points = x.points, "
        f"exposure_score = CASE WHEN x.points > 0 THEN {score} ELSE 0.0 END, "
        "exposure_level = CASE WHEN x.points <= 0 THEN 'None' "
        f"WHEN {score} < :low_max THEN 'Low' WHEN {score} < :high_min THEN 'Medium' "
        "ELSE 'High' END, "
        # Below epsilon is the float noise of subtracting every point the device has.
        "exposure_points_after = CASE WHEN x.after > :eps THEN x.after ELSE 0.0 END, "
        f"exposure_score_after = CASE WHEN x.after > :eps THEN {score_after} ELSE 0.0 END "
        f"FROM (SELECT t.device_id, sum(t.points) * {_MULTIPLIER} AS points, "
        f"sum(t.points - t.covered_points) * {_MULTIPLIER} AS after "
        "FROM tmp_rm_dr t JOIN device d ON d.id = t.device_id "
        "GROUP BY t.device_id, d.internet_facing) x "
        "WHERE device.id = x.device_id"
    )
    run.run(
        "UPDATE device SET secure_passed_weight = x.passed, secure_total_weight = x.total, "
        "secure_passed_weight_after = x.passed "
        "FROM (SELECT ca.device_id, "
        "sum(CASE WHEN ca.is_compliant THEN c.weight ELSE 0.0 END) AS passed, "
        "sum(c.weight) AS total "
        "FROM configuration_assessment ca "
        "JOIN security_configuration c ON c.id = ca.configuration_id "
        f"WHERE 1 = 1{_device_filter(full, 'ca.device_id')} "
        "GROUP BY ca.device_id) x "
        "WHERE device.id = x.device_id"
    )
    if covered:
        # A failing check under a Mitigation-like/Hybrid exception counts as passed.
        run.run(
            "UPDATE device SET secure_passed_weight_after = device.secure_passed_weight + x.w "
            "FROM (SELECT device_id, sum(config_weight) AS w FROM tmp_rm_dr "
            "WHERE configuration_id IS NOT NULL AND covered_points > 0 GROUP BY device_id) x "
            "WHERE device.id = x.device_id"
        )


def _apply_coverage(run: _Runner, full: bool) -> bool:
    """Mark in ``tmp_rm_dr`` what the exceptions in effect at ``as_of`` cover.

    ``exceptions.service.effective_coverage`` gives the exceptions; a global one is spread over
    every group that exists now (a group created later gets it at its devices' next recompute,
    which reads the coverage afresh). A CVE exception covers that CVE's open weaknesses on every
    recommendation; a recommendation exception covers all of the recommendation's rows, and
    only Mitigation-like and Hybrid exceptions remove points. Returns whether anything is
    covered, so that the common case without exceptions costs one small query.
    """
    # Imported here: the exceptions feature itself calls recompute after filing and cancelling.
    from remedium.exceptions.service import effective_coverage

    coverage = effective_coverage(run.session, run.as_of)
    if not coverage:
        return False
    all_groups = [int(g) for (g,) in run.rows("SELECT id FROM device_group")]
    pairs: dict[tuple[str | None, str | None, int], int] = {}
    for item in coverage:
        mitigating = 0 if item.impact == "NoImpact" else 1
        groups = all_groups if item.device_group_ids is None else sorted(item.device_group_ids)
        for group in groups:
            key = (item.recommendation_id, item.vulnerability_id, group)
            pairs[key] = max(pairs.get(key, 0), mitigating)
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_cov (recommendation_id VARCHAR(440), "
        "vulnerability_id VARCHAR(100), device_group_id INTEGER NOT NULL, "
        "mitigating INTEGER NOT NULL)"
    )
    run.session.execute(
        text(
            "INSERT INTO tmp_rm_cov (recommendation_id, vulnerability_id, device_group_id, "
            "mitigating) VALUES (:r, :v, :g, :m)"
        ),
        [{"r": r, "v": v, "g": g, "m": m} for (r, v, g), m in pairs.items()],
    )
    run.run("ANALYZE tmp_rm_cov")
    # CVE exceptions first: the weaknesses of covered CVEs, per (device, product).
    run.run(
        "UPDATE tmp_rm_dr SET covered_points = x.cp, covered_weak = x.cw "
        "FROM (SELECT w.device_id, w.software_id, "
        "sum(CASE WHEN c.mitigating = 1 THEN v.exposure_points ELSE 0.0 END) AS cp, "
        "count(*) AS cw FROM tmp_rm_cov c "
        "JOIN weakness w ON w.vulnerability_id = c.vulnerability_id "
        "JOIN device d ON d.id = w.device_id AND d.device_group_id = c.device_group_id "
        "JOIN vulnerability v ON v.id = w.vulnerability_id "
        f"WHERE w.fixed_at IS NULL{_device_filter(full, 'w.device_id')} "
        "GROUP BY w.device_id, w.software_id) x "
        "WHERE tmp_rm_dr.device_id = x.device_id AND tmp_rm_dr.software_id = x.software_id"
    )
    # Then recommendation exceptions, which cover every weakness of the row (no double count).
    run.run(
        "UPDATE tmp_rm_dr SET rec_covered = 1, covered_points = CASE WHEN x.mitigating = 1 "
        "THEN tmp_rm_dr.points ELSE tmp_rm_dr.covered_points END "
        "FROM (SELECT d.id AS device_id, c.recommendation_id, c.mitigating FROM tmp_rm_cov c "
        "JOIN device d ON d.device_group_id = c.device_group_id "
        f"WHERE c.recommendation_id IS NOT NULL{_device_filter(full, 'd.id')}) x "
        "WHERE tmp_rm_dr.device_id = x.device_id "
        "AND tmp_rm_dr.recommendation_id = x.recommendation_id"
    )
    return True


def _collect_touched_recommendations(run: _Runner, full: bool) -> None:
    """Recommendations the target devices had before and have now, or count as installed on
    (incremental only). A product uninstalled from a device it was not exposed on is not seen
    here: its installed count is one too high until the next full rebuild."""
    if full:
        return
    run.run("CREATE TEMPORARY TABLE tmp_rm_recs (id VARCHAR(440) PRIMARY KEY)")
    run.run(
        "INSERT INTO tmp_rm_recs (id) "
        "SELECT recommendation_id FROM device_recommendation "
        "WHERE device_id IN (SELECT id FROM tmp_rm_devices) "
        "UNION SELECT recommendation_id FROM tmp_rm_dr "
        # Their installed products and assessed checks count in "installed devices".
        "UNION SELECT r.id FROM recommendation r "
        "JOIN installed_software i ON i.software_id = r.software_id "
        "WHERE i.device_id IN (SELECT id FROM tmp_rm_devices) "
        "UNION SELECT r.id FROM recommendation r "
        "JOIN configuration_assessment ca ON ca.configuration_id = r.configuration_id "
        "WHERE ca.device_id IN (SELECT id FROM tmp_rm_devices)"
    )
    run.run("ANALYZE tmp_rm_recs")


def _replace_device_recommendations(run: _Runner, full: bool) -> int:
    """Delete and re-insert the target devices' rows, with points and exact score deltas."""
    where = "" if full else " WHERE device_id IN (SELECT id FROM tmp_rm_devices)"
    run.run(f"DELETE FROM device_recommendation{where}")
    # A full rebuild writes every row again: build the secondary index once, after them.
    deferred = defer_indexes(run.session, [_table(DeviceRecommendation)]) if full else []
    remaining = f"(d.exposure_points - t.points * {_MULTIPLIER})"
    # After exceptions: what fixing it removes from the after-exceptions points is what the
    # exceptions have not already removed.
    left = f"(d.exposure_points_after - (t.points - t.covered_points) * {_MULTIPLIER})"
    score_left = f"CASE WHEN {left} > :eps THEN 100.0 * {left} / ({left} + :k) ELSE 0.0 END"
    open_after = "(CASE WHEN t.rec_covered = 0 AND t.weaknesses > t.covered_weak THEN 1 ELSE 0 END)"
    written = run.run(
        "INSERT INTO device_recommendation (device_id, recommendation_id, weaknesses, points, "
        "score_delta, config_weight, covered_points, open_after, score_delta_after) "
        f"SELECT t.device_id, t.recommendation_id, t.weaknesses, t.points * {_MULTIPLIER}, "
        f"d.exposure_score - CASE WHEN {remaining} > :eps "
        f"THEN 100.0 * {remaining} / ({remaining} + :k) ELSE 0.0 END, "
        f"t.config_weight, t.covered_points * {_MULTIPLIER}, {open_after}, "
        f"CASE WHEN {open_after} = 0 THEN 0.0 ELSE d.exposure_score_after - {score_left} END "
        "FROM tmp_rm_dr t JOIN device d ON d.id = t.device_id"
    )
    restore_indexes(run.session, deferred)
    return written


def _create_recommendations(run: _Runner) -> int:
    """Insert the recommendations that appear for the first time, with placeholder fields."""
    new = run.rows(
        "SELECT DISTINCT t.recommendation_id, t.software_id, t.configuration_id "
        "FROM tmp_rm_dr t WHERE NOT EXISTS "
        "(SELECT 1 FROM recommendation r WHERE r.id = t.recommendation_id)"
    )
    if not new:
        return 0
    rows = [
        {
            "id": rec_id,
            "kind": "software" if software_id is not None else "configuration",
            "software_id": software_id,
            "configuration_id": configuration_id,
            "name": rec_id,
            "category": "Application" if software_id is not None else "OS",
            "remediation_type": "Update" if software_id is not None else "ConfigurationChange",
            "first_seen": run.as_of,
            "updated_at": run.as_of,
        }
        for rec_id, software_id, configuration_id in new
    ]
    run.session.execute(insert(Recommendation), rows)
    return len(rows)


def _delete_orphans(run: _Runner, full: bool) -> int:
    """Delete recommendations no device is exposed to any more (their group rows cascade)."""
    within = "" if full else " AND id IN (SELECT id FROM tmp_rm_recs)"
    orphan = (
        "NOT EXISTS (SELECT 1 FROM device_recommendation dr "
        "WHERE dr.recommendation_id = recommendation.id)"
    )
    # Delete the dependent rows explicitly: cascades are not guaranteed on every connection.
    for table in ("recommendation_group_stat", "recommendation_vulnerability"):
        run.run(
            f"DELETE FROM {table} WHERE recommendation_id IN "
            f"(SELECT id FROM recommendation WHERE {orphan}{within})"
        )
    return run.run(f"DELETE FROM recommendation WHERE {orphan}{within}")


def _score_stat_counts(run: _Runner) -> dict[int, tuple[int, int]]:
    rows = run.rows(
        "SELECT device_group_id, active_devices, high_value_devices FROM group_score_stat"
    )
    return {int(g): (int(a), int(h)) for g, a, h in rows}


def _rebuild_group_score_stat(run: _Runner) -> None:
    """Exposure sums of every group: one aggregate over the device table, cheap enough always."""
    run.run("DELETE FROM group_score_stat")
    run.run(
        "INSERT INTO group_score_stat (device_group_id, active_devices, high_value_devices, "
        "weight_low_normal, exposure_weighted, exposure_high, devices_none, devices_low, "
        "devices_medium, devices_high, exposure_weighted_after, exposure_high_after) "
        f"SELECT d.device_group_id, count(*), sum({_IS_HIGH}), sum({_WEIGHT}), "
        f"sum({_WEIGHT} * d.exposure_score), "
        "sum(CASE WHEN d.device_value = 'High' THEN d.exposure_score ELSE 0.0 END), "
        "sum(CASE WHEN d.exposure_level = 'None' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN d.exposure_level = 'Low' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN d.exposure_level = 'Medium' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN d.exposure_level = 'High' THEN 1 ELSE 0 END), "
        f"sum({_WEIGHT} * d.exposure_score_after), "
        "sum(CASE WHEN d.device_value = 'High' THEN d.exposure_score_after ELSE 0.0 END) "
        f"FROM device d WHERE {_ACTIVE} GROUP BY d.device_group_id"
    )


def _collect_touched_groups(run: _Runner, full: bool, old: dict[int, tuple[int, int]]) -> int:
    """Groups of the target devices, plus groups whose active devices changed (a device moved
    out of them): the pairs rebuilt are the touched recommendations in these groups."""
    if full:
        return len(old)
    new = _score_stat_counts(run)
    changed = {g for g in set(old) | set(new) if old.get(g) != new.get(g)}
    current = {
        int(g)
        for (g,) in run.rows(
            "SELECT DISTINCT device_group_id FROM device "
            "WHERE id IN (SELECT id FROM tmp_rm_devices)"
        )
    }
    groups = sorted(changed | current)
    run.run("CREATE TEMPORARY TABLE tmp_rm_groups (id INTEGER PRIMARY KEY)")
    if groups:
        run.session.execute(
            text("INSERT INTO tmp_rm_groups (id) VALUES (:id)"), [{"id": g} for g in groups]
        )
    run.run("ANALYZE tmp_rm_groups")
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_pairs (recommendation_id VARCHAR(440) NOT NULL, "
        "device_group_id INTEGER NOT NULL, PRIMARY KEY (recommendation_id, device_group_id))"
    )
    run.run(
        "INSERT INTO tmp_rm_pairs (recommendation_id, device_group_id) "
        "SELECT r.id, g.id FROM tmp_rm_recs r CROSS JOIN tmp_rm_groups g "
        "WHERE EXISTS (SELECT 1 FROM recommendation x WHERE x.id = r.id)"
    )
    run.run("ANALYZE tmp_rm_pairs")
    return len(groups)


def _rebuild_group_secure_stat(run: _Runner, full: bool, covered: bool) -> None:
    """Secure Score sums by (group, category) over active devices, for the touched groups; the
    after-exceptions passed weight adds the failing checks under a mitigating exception."""
    within = "" if full else " AND d.device_group_id IN (SELECT id FROM tmp_rm_groups)"
    where = "" if full else " WHERE device_group_id IN (SELECT id FROM tmp_rm_groups)"
    run.run(f"DELETE FROM group_secure_stat{where}")
    # Count the assessments per (group, check) first and weigh them after: one lookup of the
    # check per group instead of one per assessment. The full rebuild reads the assessments in
    # stored (device) order, looking each device up (SQLite keeps the table order of a CROSS
    # JOIN); walking a group's devices instead jumps across the whole table once per group.
    assessed = (
        f"configuration_assessment ca{_in_stored_order(run)} CROSS JOIN device d "
        "WHERE d.id = ca.device_id AND "
        if full
        else "device d JOIN configuration_assessment ca ON ca.device_id = d.id WHERE "
    )
    run.run(
        "INSERT INTO group_secure_stat (device_group_id, category, passed_weight, total_weight, "
        "passed_weight_after) "
        "SELECT x.device_group_id, c.category, sum(x.passed * c.weight), sum(x.total * c.weight), "
        "sum(x.passed * c.weight) "
        "FROM (SELECT d.device_group_id, ca.configuration_id, "
        "sum(CASE WHEN ca.is_compliant THEN 1 ELSE 0 END) AS passed, count(*) AS total "
        f"FROM {assessed}{_ACTIVE}{within} "
        "GROUP BY d.device_group_id, ca.configuration_id) x "
        "JOIN security_configuration c ON c.id = x.configuration_id "
        "GROUP BY x.device_group_id, c.category"
    )
    if covered:
        run.run(
            "UPDATE group_secure_stat SET passed_weight_after = "
            "group_secure_stat.passed_weight + x.w "
            "FROM (SELECT d.device_group_id, c.category, sum(dr.config_weight) AS w "
            "FROM device_recommendation dr JOIN device d ON d.id = dr.device_id "
            "JOIN recommendation r ON r.id = dr.recommendation_id "
            "JOIN security_configuration c ON c.id = r.configuration_id "
            f"WHERE dr.covered_points > 0 AND dr.config_weight > 0 AND {_ACTIVE}{within} "
            "GROUP BY d.device_group_id, c.category) x "
            "WHERE group_secure_stat.device_group_id = x.device_group_id "
            "AND group_secure_stat.category = x.category"
        )


def _rebuild_recommendation_stats(run: _Runner, full: bool) -> None:
    """``recommendation_group_stat`` and ``recommendation_vulnerability`` for touched pairs."""
    if full:
        run.run("DELETE FROM recommendation_group_stat")
        run.run("DELETE FROM recommendation_vulnerability")
        # Every full-rebuild query below reads the big table in stored (device) order and
        # looks each device up (SQLite keeps the table order of a CROSS JOIN; PostgreSQL plans
        # it as an inner join): walking group by group through ix_device_group_seen instead
        # revisits every page of the big table once per group, which at 100,000 devices in
        # 40 groups no longer fits the cache.
        exposed_from = f"FROM device_recommendation dr{_in_stored_order(run)} CROSS JOIN device d "
        exposed_on = "d.id = dr.device_id AND "
        # Driven from the installations of products that have a recommendation, through the
        # covering index (software_id, device_id): the other products are never read. Order
        # and index are forced on SQLite: the recommendations were only just written, and with
        # statistics that call the table empty SQLite walks every installation or builds an
        # automatic index over all of them (25-50 s instead of about 1 s at 100,000 devices).
        by_software = (
            " INDEXED BY ix_installed_software_software"
            if run.session.get_bind().dialect.name == "sqlite"
            else ""
        )
        by_check = " INDEXED BY ix_configuration_assessment_config" if by_software else ""
        software_from = (
            f"FROM recommendation r CROSS JOIN installed_software i{by_software} "
            "CROSS JOIN device d "
        )
        software_on = "i.software_id = r.software_id AND d.id = i.device_id AND "
        # The full rebuild has its own queries for these two, below.
        config_from = weakness_from = ""
    else:
        exposed_on = software_on = ""
        for table in ("recommendation_group_stat", "recommendation_vulnerability"):
            run.run(
                f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM tmp_rm_pairs p "
                f"WHERE p.recommendation_id = {table}.recommendation_id "
                f"AND p.device_group_id = {table}.device_group_id)"
            )
        # Driven from the group's devices: cost follows the group size, not the organisation.
        pair_devices = (
            "FROM tmp_rm_pairs p JOIN recommendation r ON r.id = p.recommendation_id "
            "JOIN device d ON d.device_group_id = p.device_group_id "
        )
        exposed_from = (
            pair_devices + "JOIN device_recommendation dr "
            "ON dr.device_id = d.id AND dr.recommendation_id = p.recommendation_id "
        )
        software_from = (
            pair_devices + "JOIN installed_software i "
            "ON i.device_id = d.id AND i.software_id = r.software_id "
        )
        config_from = (
            pair_devices + "JOIN configuration_assessment ca "
            "ON ca.device_id = d.id AND ca.configuration_id = r.configuration_id "
        )
        # The unary plus keeps SQLite off ix_weakness_software_open, which would read every open
        # weakness of the product once per device of the group (quadratic on large imports):
        # the (device, software, vulnerability) unique index answers each device directly.
        weakness_from = (
            pair_devices
            + "JOIN weakness w ON w.device_id = d.id AND w.software_id = +r.software_id "
        )
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_exp (recommendation_id VARCHAR(440) NOT NULL, "
        "device_group_id INTEGER NOT NULL, exposed INTEGER, critical INTEGER, facing INTEGER, "
        "delta_weighted FLOAT, delta_high FLOAT, config_weight FLOAT, exposed_after INTEGER, "
        "delta_weighted_after FLOAT, delta_high_after FLOAT, config_weight_after FLOAT)"
    )
    run.run(
        "INSERT INTO tmp_rm_exp SELECT dr.recommendation_id, d.device_group_id, count(*), "
        f"sum({_IS_HIGH}), sum(CASE WHEN d.internet_facing THEN 1 ELSE 0 END), "
        f"sum({_WEIGHT} * dr.score_delta), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta ELSE 0.0 END), "
        "sum(dr.config_weight), sum(dr.open_after), "
        f"sum({_WEIGHT} * dr.score_delta_after), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta_after ELSE 0.0 END), "
        "sum(dr.open_after * dr.config_weight) "
        f"{exposed_from}WHERE {exposed_on}{_ACTIVE} "
        "GROUP BY dr.recommendation_id, d.device_group_id"
    )
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_inst (recommendation_id VARCHAR(440) NOT NULL, "
        "device_group_id INTEGER NOT NULL, installed INTEGER)"
    )
    run.run(
        "INSERT INTO tmp_rm_inst SELECT r.id, d.device_group_id, count(DISTINCT d.id) "
        f"{software_from}WHERE {software_on}r.kind = 'software' AND {_ACTIVE} "
        "GROUP BY r.id, d.device_group_id"
    )
    if full:
        # Nearly every check has a recommendation somewhere: read all assessments in device
        # order and aggregate before naming the recommendation (as for the vulnerabilities).
        run.run(
            "INSERT INTO tmp_rm_inst SELECT r.id, x.device_group_id, x.installed "
            "FROM (SELECT ca.configuration_id, d.device_group_id, count(*) AS installed "
            # The narrow covering index (configuration_id, device_id) holds all it needs.
            f"FROM configuration_assessment ca{by_check} CROSS JOIN device d "
            f"WHERE d.id = ca.device_id AND {_ACTIVE} "
            "GROUP BY ca.configuration_id, d.device_group_id) x "
            "JOIN recommendation r ON r.configuration_id = x.configuration_id"
        )
    else:
        run.run(
            "INSERT INTO tmp_rm_inst SELECT r.id, d.device_group_id, count(*) "
            f"{config_from}WHERE r.kind = 'configuration' AND {_ACTIVE} "
            "GROUP BY r.id, d.device_group_id"
        )
    run.run(
        "INSERT INTO recommendation_group_stat (recommendation_id, device_group_id, "
        "exposed_devices, exposed_critical_devices, installed_devices, delta_weighted, "
        "delta_high, config_weight, internet_facing_devices, exposed_devices_after, "
        "delta_weighted_after, delta_high_after, config_weight_after) "
        "SELECT k.recommendation_id, k.device_group_id, coalesce(e.exposed, 0), "
        "coalesce(e.critical, 0), coalesce(i.installed, 0), coalesce(e.delta_weighted, 0.0), "
        "coalesce(e.delta_high, 0.0), coalesce(e.config_weight, 0.0), coalesce(e.facing, 0), "
        "coalesce(e.exposed_after, 0), coalesce(e.delta_weighted_after, 0.0), "
        "coalesce(e.delta_high_after, 0.0), coalesce(e.config_weight_after, 0.0) "
        "FROM (SELECT recommendation_id, device_group_id FROM tmp_rm_exp "
        "UNION SELECT recommendation_id, device_group_id FROM tmp_rm_inst) k "
        "LEFT JOIN tmp_rm_exp e ON e.recommendation_id = k.recommendation_id "
        "AND e.device_group_id = k.device_group_id "
        "LEFT JOIN tmp_rm_inst i ON i.recommendation_id = k.recommendation_id "
        "AND i.device_group_id = k.device_group_id"
    )
    unfixed = "(CASE WHEN w.fixed_version IS NULL OR w.fixed_version = '' THEN 1 ELSE 0 END)"
    insert_vulnerabilities = (
        "INSERT INTO recommendation_vulnerability (recommendation_id, vulnerability_id, "
        "device_group_id, exposed_devices, fixed_version, unpatchable_devices) "
    )
    if full:
        # Aggregate the weaknesses first, reading them in device order (the order they are
        # stored in), and name the recommendation after: at 100,000 devices, visiting them
        # product by product through an index jumps all over the table.
        run.run(
            insert_vulnerabilities + "SELECT r.id, x.vulnerability_id, x.device_group_id, "
            "x.exposed, x.fixed_version, x.unpatchable FROM (SELECT w.software_id, "
            "w.vulnerability_id, d.device_group_id, count(*) AS exposed, "
            f"max(w.fixed_version) AS fixed_version, sum({unfixed}) AS unpatchable "
            f"FROM weakness w{_in_stored_order(run)} CROSS JOIN device d "
            f"WHERE d.id = w.device_id AND w.fixed_at IS NULL AND {_ACTIVE} "
            "GROUP BY w.software_id, w.vulnerability_id, d.device_group_id) x "
            "JOIN recommendation r ON r.software_id = x.software_id"
        )
        return
    run.run(
        insert_vulnerabilities + "SELECT r.id, w.vulnerability_id, d.device_group_id, count(*), "
        f"max(w.fixed_version), sum({unfixed}) "
        f"{weakness_from}WHERE r.kind = 'software' AND w.fixed_at IS NULL AND {_ACTIVE} "
        "GROUP BY r.id, w.vulnerability_id, d.device_group_id"
    )


def _touched_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM tmp_rm_recs)"


def _refresh_recommendation_fields(run: _Runner, full: bool) -> int:
    """Name, remediation type, version, threats and tags of the touched recommendations."""
    recs = run.rows(
        "SELECT r.id, r.kind, s.display_name, s.display_vendor, s.vendor, s.product, "
        "s.is_operating_system, s.end_of_support_on, s.end_of_support_versions, s.id, "
        "c.name, c.category, c.sub_category, c.weight, c.description, c.remediation, "
        "c.related_component "
        "FROM recommendation r LEFT JOIN software s ON s.id = r.software_id "
        "LEFT JOIN security_configuration c ON c.id = r.configuration_id "
        f"WHERE 1 = 1{_touched_filter(full, 'r.id')}"
    )
    if not recs:
        return 0
    threats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "weaknesses": 0,
            "public_exploit": False,
            "exploit_verified": False,
            "active_alert": False,
            "max_cvss": 0.0,
            "max_epss": 0.0,
            "max_severity": "",
            "unpatchable": False,
            "fixed_versions": set(),
        }
    )
    rank = " ".join(f"WHEN '{name}' THEN {value}" for name, value in rules.SEVERITY_RANK.items())
    postgres = run.session.get_bind().dialect.name == "postgresql"
    # The distinct fixed versions as one JSON array per recommendation (both databases build it
    # in the same pass; a separator could occur inside a version).
    versions = "json_agg" if postgres else "json_group_array"
    # One row per recommendation, in one pass over its (vulnerability, group) rows in key order,
    # summed up by the database (a product on one image can have a million): a vulnerability
    # is unpatchable when one of its groups has an exposed device without a fix.
    for row in run.rows(
        "SELECT rv.recommendation_id, count(DISTINCT rv.vulnerability_id), "
        "max(CASE WHEN v.public_exploit THEN 1 ELSE 0 END), "
        "max(CASE WHEN v.exploit_verified THEN 1 ELSE 0 END), "
        "max(CASE WHEN v.kev_listed THEN 1 ELSE 0 END), "
        "max(coalesce(v.cvss_v3_score, v.cvss_v4_score, 0.0)), max(coalesce(v.epss, 0.0)), "
        f"max(CASE v.severity {rank} ELSE 0 END), "
        "max(CASE WHEN rv.unpatchable_devices > 0 THEN 1 ELSE 0 END), "
        f"{versions}(DISTINCT rv.fixed_version) "
        "FROM recommendation_vulnerability rv "
        "JOIN vulnerability v ON v.id = rv.vulnerability_id "
        f"WHERE 1 = 1{_touched_filter(full, 'rv.recommendation_id')} "
        "GROUP BY rv.recommendation_id"
    ):
        rec_id, weaknesses, exploit, verified, kev, cvss, epss, severity, unpatchable = row[:9]
        fixed = row[9] if postgres else json.loads(row[9])
        threats[rec_id].update(
            weaknesses=int(weaknesses),
            public_exploit=bool(exploit),
            exploit_verified=bool(verified),
            active_alert=bool(kev),
            max_cvss=float(cvss),
            max_epss=float(epss),
            max_severity=rules.severity_of_rank(int(severity)),
            unpatchable=bool(unpatchable),
            fixed_versions={version for version in fixed if version is not None},
        )
    facing = {
        rec_id
        for (rec_id,) in run.rows(
            "SELECT DISTINCT recommendation_id FROM recommendation_group_stat "
            f"WHERE internet_facing_devices > 0{_touched_filter(full, 'recommendation_id')}"
        )
    }
    updates = []
    for row in recs:
        (rec_id, kind, display_name, display_vendor, vendor, product, is_os, eos_on) = row[:8]
        (eos_versions, software_id, c_name, c_category, c_sub, c_weight) = row[8:14]
        (c_description, c_remediation, c_component) = row[14:]
        facts = threats[rec_id]
        values: dict[str, Any] = {
            "id": rec_id,
            "public_exploit": facts["public_exploit"],
            "exploit_verified": facts["exploit_verified"],
            "active_alert": facts["active_alert"],
            "max_cvss": facts["max_cvss"],
            "max_epss": facts["max_epss"],
            "max_severity": facts["max_severity"],
            "updated_at": run.as_of,
        }
        if kind == "software":
            eos_at = _as_datetime(eos_on)
            advice = rules.software_advice(
                rules.SoftwareFacts(
                    display_name=display_name,
                    display_vendor=display_vendor or "",
                    end_of_support_on=eos_at,
                    has_eos_version_installed=_has_eos_version(run, software_id, eos_versions),
                    has_unpatchable_cve=facts["unpatchable"],
                    fixed_versions=tuple(sorted(facts["fixed_versions"])),
                    internet_facing_exposed=rec_id in facing,
                ),
                run.as_of,
            )
            values.update(
                name=advice.name,
                product_name=product,
                vendor=vendor,
                related_component=display_name,
                recommended_version=advice.recommended_version,
                recommended_program="",
                recommended_vendor="",
                category="OS" if is_os else "Application",
                sub_category="",
                severity_score=0.0,
                remediation_type=advice.remediation_type,
                weaknesses=facts["weaknesses"],
                has_unpatchable_cve=facts["unpatchable"],
                tags=list(advice.tags),
            )
        else:
            values.update(
                name=c_name,
                product_name="",
                vendor="",
                related_component=c_component or c_category,
                recommended_version="",
                category=c_category,
                sub_category=c_sub or "",
                severity_score=float(c_weight),
                remediation_type="ConfigurationChange",
                description=c_description or "",
                remediation_text=c_remediation or "",
                # One misconfiguration, whatever the number of devices that have it.
                weaknesses=1,
                has_unpatchable_cve=False,
                tags=list(rules.configuration_tags(internet_facing_exposed=rec_id in facing)),
            )
        updates.append(values)
    _bulk_update(run, updates)
    return len(updates)


def _refresh_organisation_figures(run: _Runner) -> None:
    """Organisation-wide counts and impacts of every recommendation, from the group rows.

    All recommendations, not only touched ones: the organisation's sums (its active devices,
    hence the weight of High-value devices, and its Secure Score weight) move with any change.
    Only rows whose figures changed are written.
    """
    sums_row = run.rows(
        "SELECT coalesce(sum(active_devices), 0), coalesce(sum(high_value_devices), 0), "
        "coalesce(sum(weight_low_normal), 0.0), coalesce(sum(exposure_weighted), 0.0), "
        "coalesce(sum(exposure_high), 0.0) FROM group_score_stat"
    )[0]
    sums = scoring.ExposureSums(
        int(sums_row[0]), int(sums_row[1]), float(sums_row[2]), float(sums_row[3]),
        float(sums_row[4]),
    )  # fmt: skip
    secure_total = float(
        run.rows("SELECT coalesce(sum(total_weight), 0.0) FROM group_secure_stat")[0][0]
    )
    updates = []
    for rec_id, total, exposed, critical, dw, dh, cw, *old in run.rows(
        "SELECT r.id, coalesce(sum(g.installed_devices), 0), coalesce(sum(g.exposed_devices), 0), "
        "coalesce(sum(g.exposed_critical_devices), 0), coalesce(sum(g.delta_weighted), 0.0), "
        "coalesce(sum(g.delta_high), 0.0), coalesce(sum(g.config_weight), 0.0), "
        "r.total_machine_count, r.exposed_machines_count, r.exposed_critical_devices, "
        "r.exposure_impact, r.config_score_impact "
        "FROM recommendation r LEFT JOIN recommendation_group_stat g "
        "ON g.recommendation_id = r.id "
        "GROUP BY r.id, r.total_machine_count, r.exposed_machines_count, "
        "r.exposed_critical_devices, r.exposure_impact, r.config_score_impact"
    ):
        values = {
            "id": rec_id,
            "total_machine_count": int(total),
            "exposed_machines_count": int(exposed),
            "exposed_critical_devices": int(critical),
            "exposure_impact": sums.impact(float(dw), float(dh)),
            "config_score_impact": scoring.secure_score_impact(float(cw), secure_total),
        }
        if _changed(old, values):
            updates.append(values)
    _bulk_update(run, updates)


_ORGANISATION_FIELDS = (
    "total_machine_count",
    "exposed_machines_count",
    "exposed_critical_devices",
    "exposure_impact",
    "config_score_impact",
)


def _changed(old: list[Any], values: dict[str, Any]) -> bool:
    return any(
        abs(float(stored or 0) - float(values[name])) > _EPSILON
        for stored, name in zip(old, _ORGANISATION_FIELDS, strict=True)
    )


def _bulk_update(run: _Runner, updates: list[dict[str, Any]]) -> None:
    for start in range(0, len(updates), _CHUNK):
        run.session.execute(update(Recommendation), updates[start : start + _CHUNK])


def _has_eos_version(run: _Runner, software_id: int | None, versions: Any) -> bool:
    """True when an active device has a version of the product the vendor no longer supports."""
    if isinstance(versions, str):  # SQLite hands JSON back as text through raw SQL
        versions = json.loads(versions)
    if software_id is None or not versions:
        return False
    found = run.session.execute(
        text(
            "SELECT 1 FROM installed_software i JOIN device d ON d.id = i.device_id "
            "WHERE i.software_id = :software_id AND i.version IN :versions AND "
            f"{_ACTIVE} LIMIT 1"
        ).bindparams(
            bindparam("versions", expanding=True), bindparam("cutoff", type_=UtcDateTime())
        ),
        {"software_id": software_id, "versions": list(versions), "cutoff": run.cutoff},
    ).first()
    return found is not None


def _as_datetime(value: Any) -> datetime | None:
    """A timestamp read through raw SQL (SQLite returns text) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
