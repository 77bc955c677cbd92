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

Steps 1-4 are here, 5-7 in :mod:`remedium.recommendations.group_figures`, and what every step
shares (the runner of the SQL, its fragments, the temporary tables) in ``_sql.py``.

Steps 1-3 (and the creation in 4) are also :func:`recompute_device_rows`, which a large import
runs for the devices it has finished writing while its parser reads on; the import's final
``recompute(..., settled=...)`` then does steps 4-7 for everything, and 1-3 only for the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from remedium.common import cache
from remedium.db.base import utcnow
from remedium.db.indexes import defer_indexes, restore_indexes
from remedium.recommendations._sql import (
    CHUNK,
    MULTIPLIER,
    RecomputeStats,
    Runner,
    drop_temp_tables,
    table_of,
)
from remedium.recommendations.coverage import effective_coverage
from remedium.recommendations.group_figures import (
    collect_touched_groups,
    rebuild_group_score_stat,
    rebuild_group_secure_stat,
    rebuild_recommendation_stats,
    refresh_organisation_figures,
    refresh_recommendation_fields,
    score_stat_counts,
)
from remedium.recommendations.models import DeviceRecommendation, Recommendation


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
    run = Runner(session, as_of, stats)
    with run.step("prepare"):
        drop_temp_tables(run)
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
        old_groups = score_stat_counts(run)
        _collect_touched_recommendations(run, full)
        # The recommendation rows must exist before their device rows (foreign key).
        stats.recommendations_created = _create_recommendations(run)
        stats.device_recommendations = _replace_device_recommendations(run, full)
    with run.step("recommendations"):
        stats.recommendations_deleted = _delete_orphans(run, full)
    with run.step("group_stats"):
        rebuild_group_score_stat(run)
        stats.groups_touched = collect_touched_groups(run, full, old_groups)
        # When the touched groups hold most devices, following each touched pair through its
        # group costs more than rebuilding every group's sums from the up-to-date device rows.
        regroup = everything or _most_devices_grouped(run)
        rebuild_group_secure_stat(run, regroup, covered)
    with run.step("recommendation_group_stats"):
        rebuild_recommendation_stats(run, regroup)
    with run.step("recommendation_fields"):
        stats.recommendations_touched = refresh_recommendation_fields(run, everything)
        refresh_organisation_figures(run)
    with run.step("cleanup"):
        drop_temp_tables(run)
        if everything:
            _analyze_derived_tables(run)
        if full:
            stats.devices = int(run.rows("SELECT count(*) FROM device")[0][0])
    # Every process's cached dashboard figures are stale from this commit on.
    cache.bump(session, cache.DASHBOARD)
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
    run = Runner(session, as_of, RecomputeStats(full=False))
    drop_temp_tables(run)
    _target_devices(run, device_ids)
    _stage_device_recommendations(run, False)
    covered = _apply_coverage(run, False)
    _update_devices(run, False, covered)
    _create_recommendations(run)
    _replace_device_recommendations(run, False)
    drop_temp_tables(run)


def _target_devices(run: Runner, device_ids: Collection[int]) -> int:
    """``tmp_rm_devices``: the devices whose own rows are rebuilt. Returns how many."""
    run.run("CREATE TEMPORARY TABLE tmp_rm_devices (id BIGINT PRIMARY KEY)")
    ids = sorted(set(device_ids))
    for start in range(0, len(ids), CHUNK):
        run.session.execute(
            text("INSERT INTO tmp_rm_devices (id) VALUES (:id)"),
            [{"id": i} for i in ids[start : start + CHUNK]],
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


def _most_devices_grouped(run: Runner) -> bool:
    """True when the touched groups (incremental) hold at least half of all devices."""
    within, total = run.rows(
        "SELECT coalesce(sum(CASE WHEN device_group_id IN (SELECT id FROM tmp_rm_groups) "
        "THEN 1 ELSE 0 END), 0), count(*) FROM device"
    )[0]
    return int(total) >= _FULL_FROM_DEVICES and 2 * int(within) >= int(total)


def _analyze_derived_tables(run: Runner) -> None:
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


def _device_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM tmp_rm_devices)"


def _stage_device_recommendations(run: Runner, full: bool) -> None:
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


def _update_devices(run: Runner, full: bool, covered: bool) -> None:
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
        f"FROM (SELECT t.device_id, sum(t.points) * {MULTIPLIER} AS points, "
        f"sum(t.points - t.covered_points) * {MULTIPLIER} AS after "
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


def _apply_coverage(run: Runner, full: bool) -> bool:
    """Mark in ``tmp_rm_dr`` what the exceptions in effect at ``as_of`` cover.

    ``coverage.effective_coverage`` gives the exceptions; a global one is spread over
    every group that exists now (a group created later gets it at its devices' next recompute,
    which reads the coverage afresh). A CVE exception covers that CVE's open weaknesses on every
    recommendation; a recommendation exception covers all of the recommendation's rows, and
    only Mitigation-like and Hybrid exceptions remove points. Returns whether anything is
    covered, so that the common case without exceptions costs one small query.
    """
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


def _collect_touched_recommendations(run: Runner, full: bool) -> None:
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


def _replace_device_recommendations(run: Runner, full: bool) -> int:
    """Delete and re-insert the target devices' rows, with points and exact score deltas."""
    where = "" if full else " WHERE device_id IN (SELECT id FROM tmp_rm_devices)"
    run.run(f"DELETE FROM device_recommendation{where}")
    # A full rebuild writes every row again: build the secondary index once, after them.
    deferred = defer_indexes(run.session, [table_of(DeviceRecommendation)]) if full else []
    remaining = f"(d.exposure_points - t.points * {MULTIPLIER})"
    # After exceptions: the part of score_delta that the weaknesses no exception covers account
    # for, measured on the device's current points, so it never exceeds score_delta
    # (docs/scoring.md, "After exceptions").
    left = f"(d.exposure_points - (t.points - t.covered_points) * {MULTIPLIER})"
    score_left = f"CASE WHEN {left} > :eps THEN 100.0 * {left} / ({left} + :k) ELSE 0.0 END"
    open_after = "(CASE WHEN t.rec_covered = 0 AND t.weaknesses > t.covered_weak THEN 1 ELSE 0 END)"
    written = run.run(
        "INSERT INTO device_recommendation (device_id, recommendation_id, weaknesses, points, "
        "score_delta, config_weight, covered_points, open_after, score_delta_after) "
        f"SELECT t.device_id, t.recommendation_id, t.weaknesses, t.points * {MULTIPLIER}, "
        f"d.exposure_score - CASE WHEN {remaining} > :eps "
        f"THEN 100.0 * {remaining} / ({remaining} + :k) ELSE 0.0 END, "
        f"t.config_weight, t.covered_points * {MULTIPLIER}, {open_after}, "
        f"CASE WHEN {open_after} = 0 THEN 0.0 ELSE d.exposure_score - {score_left} END "
        "FROM tmp_rm_dr t JOIN device d ON d.id = t.device_id"
    )
    restore_indexes(run.session, deferred)
    return written


def _create_recommendations(run: Runner) -> int:
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


def _delete_orphans(run: Runner, full: bool) -> int:
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
