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

Steps 1-4 are here, 5-7 in :mod:`remedium.recommendations.group_figures`. Every statement they
run is in ``_sql.py``, the temporary work tables are declared in ``recompute_tables.py``, and
``recompute_runner.py`` executes both.

Steps 1-3 (and the creation in 4) are also :func:`recompute_device_rows`, which a large import
runs for the devices it has finished writing while its parser reads on; the import's final
``recompute(..., settled=...)`` then does steps 4-7 for everything, and 1-3 only for the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.orm import Session

from remedium.common import cache
from remedium.db.base import utcnow
from remedium.db.indexes import defer_indexes, restore_indexes
from remedium.recommendations import _sql as sql
from remedium.recommendations import _sql_devices as device_sql
from remedium.recommendations import recompute_tables as work
from remedium.recommendations.coverage import effective_coverage
from remedium.recommendations.group_figures import (
    collect_touched_groups,
    rebuild_group_score_stat,
    rebuild_group_secure_stat,
    rebuild_recommendation_stats,
    refresh_recommendation_fields,
    score_stat_counts,
)
from remedium.recommendations.models import DeviceRecommendation
from remedium.recommendations.recompute_runner import RecomputeStats, Runner

__all__ = ["RecomputeStats", "forget_group", "recompute", "recompute_device_rows"]


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
    stats = RecomputeStats(full=False)
    run = Runner(session, as_of or utcnow(), stats)
    full = stats.full = device_ids is None or _most_devices(run, device_ids)
    # Settled devices changed recommendations and groups nobody has followed yet: all of them.
    everything = full or bool(settled)
    with run.step("prepare"):
        run.drop_work_tables()
        if not run.sqlite:
            run.run(device_sql.SET_WORK_MEM)
            run.run(device_sql.NO_JIT)
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
    with run.step("cleanup"):
        run.drop_work_tables()
        if everything:
            _analyze_derived_tables(run)
        if full:
            stats.devices = int(run.scalar(sql.COUNT_DEVICES))
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
    run.drop_work_tables()
    _target_devices(run, device_ids)
    _stage_device_recommendations(run, False)
    covered = _apply_coverage(run, False)
    _update_devices(run, False, covered)
    _create_recommendations(run)
    _replace_device_recommendations(run, False)
    run.drop_work_tables()


def forget_group(session: Session, group_id: int) -> None:
    """Delete a device group's recommendation rows, before the group itself goes: they carry no
    foreign key to cascade from it (models). The recompute that moved the group's devices out
    has left none: this keeps it so whatever led there."""
    run = Runner(session, utcnow(), RecomputeStats(full=False))
    for table in sql.GROUP_ROW_TABLES:
        run.run(sql.delete_group_rows(table, group_id))


def _target_devices(run: Runner, device_ids: Collection[int]) -> int:
    """``tmp_rm_devices``: the devices whose own rows are rebuilt. Returns how many."""
    run.create(work.target_devices)
    ids = sorted(set(device_ids))
    run.fill(work.target_devices, [{"id": i} for i in ids])
    # PostgreSQL never analyses temporary tables itself; without statistics it guesses
    # thousands of rows and scans the big tables instead of looking devices up.
    run.run(sql.analyze(work.target_devices))
    return len(ids)


# Below this many devices an incremental recompute of any share of them is cheap anyway.
_FULL_FROM_DEVICES = 1000


def _most_devices(run: Runner, device_ids: Collection[int]) -> bool:
    """True when the devices to recompute are at least half of a large organisation (the
    first import, a rescan of everything): one full rebuild is then cheaper than following
    every (recommendation, group) pair through its group's devices, and gives the same rows."""
    if len(device_ids) < _FULL_FROM_DEVICES:
        return False
    total = int(run.scalar(sql.COUNT_DEVICES))
    return 2 * len(set(device_ids)) >= total


def _most_devices_grouped(run: Runner) -> bool:
    """True when the touched groups (incremental) hold at least half of all active devices, in
    a large organisation, or in a small one when at least half of its recommendations were
    touched (an image naming 100,000 products: the set-based rebuild of every group row then
    beats following each pair, 5.6 against 7.8 s at 1,500,000 findings)."""
    within, total = run.rows(sql.DEVICES_IN_TOUCHED_GROUPS)[0]
    if 2 * int(within) < int(total):
        return False
    if int(total) >= _FULL_FROM_DEVICES:
        return True
    touched, every = run.rows(sql.TOUCHED_RECOMMENDATION_SHARE)[0]
    return 2 * int(touched) >= int(every) > 0


def _analyze_derived_tables(run: Runner) -> None:
    """Refresh planner statistics after a full rebuild: the incremental queries start from a
    few pairs only when the planner knows how big the derived tables really are."""
    if run.sqlite:
        run.run(sql.LIMIT_ANALYSIS)
    for table in sql.DERIVED_TABLES:
        run.run(sql.analyze(table))


def _stage_device_recommendations(run: Runner, full: bool) -> None:
    """Per (device, recommendation): weaknesses, raw points (before the device multiplier)."""
    run.create(work.device_recommendation_work)
    run.run(sql.stage_software_points(full))
    run.run(sql.stage_failed_checks(full))
    # PostgreSQL's full rebuild reads the work table whole, by hash: the index goes unused.
    if run.sqlite or not full:
        run.create_index(work.device_recommendation_work_by_device)
    run.run(sql.analyze(work.device_recommendation_work))


def _update_devices(run: Runner, full: bool, covered: bool) -> None:
    """Exposure points, score and level, and Secure Score weights of the target devices, as
    they are and after exceptions. PostgreSQL writes each device once (a row version per
    write); SQLite, which rewrites a row in place, keeps the three simpler statements whose plans
    it was measured with."""
    if run.sqlite:
        run.run(device_sql.reset_device_scores(full))
        run.run(device_sql.UPDATE_DEVICE_EXPOSURE)
        run.run(device_sql.update_device_secure_weights(full))
    else:
        run.run(device_sql.update_device_scores(full))
    if covered:
        run.run(device_sql.UPDATE_DEVICE_SECURE_AFTER)


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
    all_groups = [int(g) for (g,) in run.rows(sql.ALL_GROUP_IDS)]
    pairs: dict[tuple[str | None, str | None, int], int] = {}
    for item in coverage:
        mitigating = 0 if item.impact == "NoImpact" else 1
        groups = all_groups if item.device_group_ids is None else sorted(item.device_group_ids)
        for group in groups:
            key = (item.recommendation_id, item.vulnerability_id, group)
            pairs[key] = max(pairs.get(key, 0), mitigating)
    run.create(work.coverage)
    run.fill(
        work.coverage,
        [
            {"recommendation_id": r, "vulnerability_id": v, "device_group_id": g, "mitigating": m}
            for (r, v, g), m in pairs.items()
        ],
    )
    run.run(sql.analyze(work.coverage))
    run.run(sql.cover_vulnerabilities(full))
    run.run(sql.cover_recommendations(full))
    return True


def _collect_touched_recommendations(run: Runner, full: bool) -> None:
    """Recommendations the target devices had before and have now, or count as installed on
    (incremental only). A product uninstalled from a device it was not exposed on is not seen
    here: its installed count is one too high until the next full rebuild."""
    if full:
        return
    run.create(work.touched_recommendations)
    run.run(sql.COLLECT_TOUCHED_RECOMMENDATIONS)
    run.run(sql.analyze(work.touched_recommendations))


def _replace_device_recommendations(run: Runner, full: bool) -> int:
    """Delete and re-insert the target devices' rows, with points and exact score deltas.
    Returns how many rows the target devices have now."""
    if full and not run.sqlite and _keep_unchanged_rows(run):
        run.run(device_sql.INSERT_NEW_DEVICE_RECOMMENDATIONS)
        return int(run.scalar(device_sql.COUNT_STAGED_ROWS))
    run.run(sql.delete_device_recommendations(full))
    # A full rebuild writes every row again: build the secondary index once, after them.
    table: Table = DeviceRecommendation.__table__  # type: ignore[assignment]
    deferred = defer_indexes(run.session, [table]) if full else []
    written = run.run(device_sql.insert_device_recommendations(run.sqlite))
    restore_indexes(run.session, deferred)
    return written


def _keep_unchanged_rows(run: Runner) -> bool:
    """PostgreSQL, full rebuild: delete the rows that are gone or whose figures moved, and
    keep the others as they are (see _sql_devices). True when some rows stay, so that only the
    missing ones are to be inserted; False when none were there or none stay."""
    held = int(run.scalar(device_sql.COUNT_DEVICE_RECOMMENDATIONS))
    return held > 0 and run.run(device_sql.DELETE_STALE_DEVICE_RECOMMENDATIONS) < held


def _create_recommendations(run: Runner) -> int:
    """Insert the recommendations that appear for the first time, with placeholder fields."""
    # One INSERT ... SELECT: the ORM's insert of 17,700 rows as dictionaries took 0.8 s.
    return run.run(device_sql.create_new_recommendations(run.sqlite))


def _delete_orphans(run: Runner, full: bool) -> int:
    """Delete recommendations no device is exposed to any more, their group rows first (they
    carry no foreign key to cascade from it: models)."""
    for table in sql.GROUP_ROW_TABLES:
        run.run(sql.delete_orphan_rows(full, table))
    return run.run(sql.delete_orphans(full))
