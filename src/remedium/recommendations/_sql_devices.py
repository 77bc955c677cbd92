"""The recompute's statements on the target devices' own rows (steps 2-3 of
``service.recompute``): their exposure points, score and level, their Secure Score weights and
their ``device_recommendation`` rows, and the recommendations those rows name for the first
time; and the PostgreSQL settings of the recompute's transaction.
The other statements, and the conventions all of them follow, are in ``_sql.py``.
"""

from __future__ import annotations

from remedium.recommendations._sql import DEVICES, DR, MULTIPLIER, _device_filter
from remedium.recommendations.recompute_runner import Sql

# PostgreSQL: room to hash the (recommendation, group) aggregates in memory instead of sorting
# them on disk; SET LOCAL ends with the caller's transaction.
SET_WORK_MEM = Sql("SET LOCAL work_mem = '256MB'")
# PostgreSQL: no just-in-time compilation. The planner overestimates the rows of the big
# aggregates (millions instead of thousands) and spends a few tenths of a second compiling
# each of them, for statements that take about a second anyway.
NO_JIT = Sql("SET LOCAL jit = off")


def reset_device_scores(full: bool) -> Sql:
    """Zero the points, scores and weights of the target devices (those without any row)."""
    where = "" if full else f" WHERE id IN (SELECT id FROM {DEVICES})"
    return Sql(
        "UPDATE device SET exposure_points = 0.0, exposure_score = 0.0, exposure_level = 'None', "
        "secure_passed_weight = 0.0, secure_total_weight = 0.0, exposure_points_after = 0.0, "
        f"exposure_score_after = 0.0, secure_passed_weight_after = 0.0{where}"
    )


_SCORE = "(100.0 * x.points / (x.points + :k))"
_SCORE_AFTER = "(100.0 * x.after / (x.after + :k))"
_SET_EXPOSURE = (
    "exposure_points = x.points, "
    f"exposure_score = CASE WHEN x.points > 0 THEN {_SCORE} ELSE 0.0 END, "
    "exposure_level = CASE WHEN x.points <= 0 THEN 'None' "
    f"WHEN {_SCORE} < :low_max THEN 'Low' WHEN {_SCORE} < :high_min THEN 'Medium' "
    "ELSE 'High' END, "
    # Below epsilon is the float noise of subtracting every point the device has.
    "exposure_points_after = CASE WHEN x.after > :eps THEN x.after ELSE 0.0 END, "
    f"exposure_score_after = CASE WHEN x.after > :eps THEN {_SCORE_AFTER} ELSE 0.0 END"
)
UPDATE_DEVICE_EXPOSURE = Sql(
    f"UPDATE device SET {_SET_EXPOSURE} "
    f"FROM (SELECT t.device_id, sum(t.points) * {MULTIPLIER} AS points, "
    f"sum(t.points - t.covered_points) * {MULTIPLIER} AS after "
    f"FROM {DR} t JOIN device d ON d.id = t.device_id "
    "GROUP BY t.device_id, d.internet_facing) x "
    "WHERE device.id = x.device_id"
)
"""Exposure points, score and level of the devices in ``tmp_rm_dr``, as they are and after
exceptions."""


_SET_SECURE = (
    "secure_passed_weight = x.passed, secure_total_weight = x.total, "
    "secure_passed_weight_after = x.passed"
)


def _secure_weights(full: bool) -> str:
    """Per target device with assessments: the passed and the total weight of its checks."""
    return (
        "(SELECT ca.device_id, "
        "sum(CASE WHEN ca.is_compliant THEN c.weight ELSE 0.0 END) AS passed, "
        "sum(c.weight) AS total "
        "FROM configuration_assessment ca "
        "JOIN security_configuration c ON c.id = ca.configuration_id "
        f"WHERE 1 = 1{_device_filter(full, 'ca.device_id')} "
        "GROUP BY ca.device_id)"
    )


def update_device_secure_weights(full: bool) -> Sql:
    """Secure Score weights of the target devices, from their assessments."""
    return Sql(
        f"UPDATE device SET {_SET_SECURE} FROM {_secure_weights(full)} x "
        "WHERE device.id = x.device_id"
    )


def update_device_scores(full: bool) -> Sql:
    """PostgreSQL: what ``reset_device_scores``, ``UPDATE_DEVICE_EXPOSURE`` and
    ``update_device_secure_weights`` write, in one statement that writes each target device
    once. Every write of a row leaves PostgreSQL a version more to skip: three of them cost
    twice the time, and the foreign key checks of ``device_recommendation`` then walk the
    chain of versions of every device."""
    return Sql(
        f"UPDATE device SET {_SET_EXPOSURE}, {_SET_SECURE} "
        f"FROM (SELECT d.id, coalesce(e.points, 0.0) * {MULTIPLIER} AS points, "
        f"coalesce(e.after, 0.0) * {MULTIPLIER} AS after, "
        "coalesce(s.passed, 0.0) AS passed, coalesce(s.total, 0.0) AS total "
        "FROM device d LEFT JOIN (SELECT device_id, sum(points) AS points, "
        f"sum(points - covered_points) AS after FROM {DR} GROUP BY device_id) e "
        f"ON e.device_id = d.id LEFT JOIN {_secure_weights(full)} s ON s.device_id = d.id "
        f"WHERE 1 = 1{_device_filter(full, 'd.id')}) x "
        "WHERE device.id = x.id"
    )


# A failing check under a Mitigation-like/Hybrid exception counts as passed.
UPDATE_DEVICE_SECURE_AFTER = Sql(
    "UPDATE device SET secure_passed_weight_after = device.secure_passed_weight + x.w "
    f"FROM (SELECT device_id, sum(config_weight) AS w FROM {DR} "
    "WHERE configuration_id IS NOT NULL AND covered_points > 0 GROUP BY device_id) x "
    "WHERE device.id = x.device_id"
)


_REMAINING = f"(d.exposure_points - t.points * {MULTIPLIER})"
# After exceptions: the part of score_delta that the weaknesses no exception covers account
# for, measured on the device's current points, so it never exceeds score_delta
# (docs/scoring.md, "After exceptions").
_LEFT = f"(d.exposure_points - (t.points - t.covered_points) * {MULTIPLIER})"
_SCORE_LEFT = f"CASE WHEN {_LEFT} > :eps THEN 100.0 * {_LEFT} / ({_LEFT} + :k) ELSE 0.0 END"
_OPEN_AFTER = "(CASE WHEN t.rec_covered = 0 AND t.weaknesses > t.covered_weak THEN 1 ELSE 0 END)"


def insert_device_recommendations(sqlite: bool) -> Sql:
    """The ``device_recommendation`` rows of ``tmp_rm_dr``, with points and exact score deltas.

    PostgreSQL: in device order, so that each row lands on the last page of the primary key
    (device, recommendation) and every foreign key check finds its device where the one before
    found it. Sorting by the device alone is enough for both, and cheaper than by the key."""
    order = "" if sqlite else " ORDER BY t.device_id"
    return Sql(_INSERT_DEVICE_RECOMMENDATIONS + order)


# The columns of a device_recommendation row besides its key, and the rows of tmp_rm_dr as
# device_recommendation stores them.
_VALUES = (
    "weaknesses", "points", "score_delta", "config_weight", "covered_points", "open_after",
    "score_delta_after",
)  # fmt: skip
_ROWS = (
    f"SELECT t.device_id, t.recommendation_id, t.weaknesses, t.points * {MULTIPLIER} AS points, "
    f"d.exposure_score - CASE WHEN {_REMAINING} > :eps "
    f"THEN 100.0 * {_REMAINING} / ({_REMAINING} + :k) ELSE 0.0 END AS score_delta, "
    f"t.config_weight, t.covered_points * {MULTIPLIER} AS covered_points, "
    f"{_OPEN_AFTER} AS open_after, "
    f"CASE WHEN {_OPEN_AFTER} = 0 THEN 0.0 ELSE d.exposure_score - {_SCORE_LEFT} END "
    "AS score_delta_after "
    f"FROM {DR} t JOIN device d ON d.id = t.device_id"
)
_INSERT_DEVICE_RECOMMENDATIONS = (
    f"INSERT INTO device_recommendation (device_id, recommendation_id, {', '.join(_VALUES)}) "
    + _ROWS
)

# PostgreSQL, full rebuild of a table that holds rows already (the daily rebuild): only the
# rows that are gone or whose figures moved are deleted, and only the rows then missing are
# inserted; a row that did not move is neither written nor checked again. PostgreSQL checks
# both foreign keys of every inserted row, one query per row and key (about half the time of
# the insert). The result is the same rows. At 100,000 devices (1.1 million rows), back to
# back with main's delete and insert of every row (load average 1.9 to 2.2): nothing changed
# since the last rebuild, the step 16.3 and 16.9 s before, 3.6 and 4.5 s after (the recompute
# 30.5 and 31.5 s, 19.0 and 21.5 s); every row moved, 17.2 s before and 17.8 s after. No
# column is nullable: ``=`` lets the delete match the rows by hash.
# When every row moved, the table is empty after the delete and the rows go in as into an
# empty table (without looking for each in it).
_SAME_KEY = "t.device_id = dr.device_id AND t.recommendation_id = dr.recommendation_id"
COUNT_DEVICE_RECOMMENDATIONS = Sql("SELECT count(*) FROM device_recommendation")
DELETE_STALE_DEVICE_RECOMMENDATIONS = Sql(
    f"DELETE FROM device_recommendation dr WHERE NOT EXISTS (SELECT 1 FROM ({_ROWS}) t "
    f"WHERE {_SAME_KEY}" + "".join(f" AND t.{name} = dr.{name}" for name in _VALUES) + ")"
)
INSERT_NEW_DEVICE_RECOMMENDATIONS = Sql(
    _INSERT_DEVICE_RECOMMENDATIONS
    + f" WHERE NOT EXISTS (SELECT 1 FROM device_recommendation dr WHERE {_SAME_KEY}) "
    "ORDER BY t.device_id"
)
COUNT_STAGED_ROWS = Sql(f"SELECT count(*) FROM {DR}")


_NEW_RECOMMENDATIONS = (
    "SELECT t.recommendation_id, t.software_id, t.configuration_id "
    f"FROM {DR} t WHERE NOT EXISTS "
    "(SELECT 1 FROM recommendation r WHERE r.id = t.recommendation_id) "
    # Grouped, not DISTINCT: the groups come out in id order, which the ORDER BY below then
    # finds already sorted (176,930 new recommendations: 0.78 s, against 1.04 with DISTINCT).
    "GROUP BY t.recommendation_id, t.software_id, t.configuration_id"
)
"""The recommendations of ``tmp_rm_dr`` that do not exist yet."""


def create_new_recommendations(sqlite: bool) -> Sql:
    """Insert the recommendations of ``tmp_rm_dr`` that do not exist yet, with placeholder
    fields (``group_figures.refresh_recommendation_fields`` fills them in), in one statement:
    every column is named, as the model's defaults are the ORM's, not the database's."""
    is_config = "n.software_id IS NULL"
    empty_list = "'[]'" if sqlite else "CAST('[]' AS JSON)"
    return Sql(
        "INSERT INTO recommendation (id, kind, software_id, configuration_id, name, "
        "product_name, vendor, related_component, recommended_version, recommended_program, "
        "recommended_vendor, category, sub_category, severity_score, remediation_type, "
        "description, remediation_text, weaknesses, public_exploit, exploit_verified, "
        "active_alert, has_unpatchable_cve, max_severity, max_cvss, max_epss, "
        "associated_threats, tags, total_machine_count, exposed_machines_count, "
        "exposed_critical_devices, exposure_impact, config_score_impact, first_seen, updated_at) "
        f"SELECT n.recommendation_id, CASE WHEN {is_config} THEN 'configuration' "
        "ELSE 'software' END, n.software_id, n.configuration_id, n.recommendation_id, "
        f"'', '', '', '', '', '', CASE WHEN {is_config} THEN 'OS' ELSE 'Application' END, "
        f"'', 0.0, CASE WHEN {is_config} THEN 'ConfigurationChange' ELSE 'Update' END, "
        f"'', '', 0, FALSE, FALSE, FALSE, FALSE, '', 0.0, 0.0, {empty_list}, {empty_list}, "
        f"0, 0, 0, 0.0, 0.0, :as_of, :as_of FROM ({_NEW_RECOMMENDATIONS}) n "
        # In key order: the fields pass reads and writes them a span of ids at a time, and
        # SQLite's rows then lie in that order (read in key order, rows inserted in another
        # order are fetched one page each; Grype at 1,500,000: docs/imports.md).
        "ORDER BY n.recommendation_id"
    )
