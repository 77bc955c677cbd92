"""Every SQL statement of the recompute (``service.recompute``), in one reviewed module.

Each statement is a named constant or a function whose typed arguments are its bind parameters
(and the switches that choose its shape: full or incremental, SQLite or PostgreSQL); it returns
an ``Sql``, which only ``recompute_runner.Runner`` executes, binding the scoring formula's
constants (``FormulaParams``) wherever a statement names them. The work tables are the
``Table`` objects of :mod:`remedium.recommendations.recompute_tables`, named from them.

Statements are text, not Core expressions, because their shape is tuned to both planners
(``NOT INDEXED``, ``INDEXED BY``, the table order of ``CROSS JOIN``, a unary plus that keeps
SQLite off an index); ``tests/recommendations/test_recompute_tables.py`` runs each of them.
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import Table

from remedium.recommendations import recompute_tables as work
from remedium.recommendations.recompute_runner import Sql

# The work tables, by the names their Table objects give them.
DEVICES = work.target_devices.name
DR = work.device_recommendation_work.name
RECS = work.touched_recommendations.name
GROUPS = work.touched_groups.name
PAIRS = work.touched_pairs.name
EXP = work.exposed_by_group.name
INST = work.installed_by_group.name
COV = work.coverage.name
# The per-group rows of a recommendation, deleted and rebuilt together.
GroupRowTable = Literal["recommendation_group_stat", "recommendation_vulnerability"]
GROUP_ROW_TABLES: tuple[GroupRowTable, ...] = get_args(GroupRowTable)


# Fragments shared by the statements. A device's multiplier and weight, from its columns:
MULTIPLIER = "(CASE WHEN d.internet_facing THEN :face ELSE 1.0 END)"
WEIGHT = (
    "(CASE WHEN d.device_value = 'High' THEN 0.0 "
    "WHEN d.device_value = 'Low' THEN :low_weight ELSE :normal_weight END)"
)
IS_HIGH = "(CASE WHEN d.device_value = 'High' THEN 1 ELSE 0 END)"
ACTIVE = "d.last_seen >= :cutoff"
WEAKNESS_UNIQUE_INDEX = "sqlite_autoindex_weakness_1"  # SQLite's name: weakness's UNIQUE (...)


def _stored_order(sqlite: bool) -> str:
    """SQLite: read the table itself, row by row in stored order, rather than through an
    index that sorts it by another column and jumps back to the table for every row."""
    return " NOT INDEXED" if sqlite else ""


def _device_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM {DEVICES})"


def _touched_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM {RECS})"


# The derived tables whose statistics a full rebuild refreshes.
DerivedTable = Literal[
    "recommendation", "device_recommendation", "recommendation_group_stat",
    "recommendation_vulnerability", "group_score_stat", "group_secure_stat",
]  # fmt: skip
DERIVED_TABLES: tuple[DerivedTable, ...] = get_args(DerivedTable)


def analyze(table: Table | DerivedTable) -> Sql:
    """Refresh the planner's statistics of one table (PostgreSQL never analyses temporary
    tables itself; without statistics it guesses thousands of rows)."""
    name = table if isinstance(table, str) else table.name
    return Sql(f"ANALYZE {name}")


# SQLite: sample instead of scanning every row of the big tables.
LIMIT_ANALYSIS = Sql("PRAGMA analysis_limit = 1000")
COUNT_DEVICES = Sql("SELECT count(*) FROM device")
# Active devices, from the groups' sums (just rebuilt): not a scan of the device table.
DEVICES_IN_TOUCHED_GROUPS = Sql(
    f"SELECT coalesce(sum(CASE WHEN device_group_id IN (SELECT id FROM {GROUPS}) "
    "THEN active_devices ELSE 0 END), 0), coalesce(sum(active_devices), 0) "
    "FROM group_score_stat"
)
TOUCHED_RECOMMENDATION_SHARE = Sql(
    f"SELECT (SELECT count(*) FROM {RECS}), (SELECT count(*) FROM recommendation)"
)
ALL_GROUP_IDS = Sql("SELECT id FROM device_group")


# Steps 1-4 (service.py): the target devices' own rows.


def stage_software_points(full: bool) -> Sql:
    """``tmp_rm_dr`` rows of the open weaknesses, per (device, product)."""
    return Sql(
        f"INSERT INTO {DR} (device_id, recommendation_id, software_id, configuration_id, "
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


def stage_failed_checks(full: bool) -> Sql:
    """``tmp_rm_dr`` rows of the failed configuration checks."""
    return Sql(
        f"INSERT INTO {DR} (device_id, recommendation_id, software_id, configuration_id, "
        "weaknesses, points, config_weight) "
        "SELECT ca.device_id, 'sca-_-' || c.id, NULL, c.id, 1, c.weight * :cfactor, c.weight "
        "FROM configuration_assessment ca "
        "JOIN security_configuration c ON c.id = ca.configuration_id "
        f"WHERE NOT ca.is_compliant{_device_filter(full, 'ca.device_id')}"
    )


def cover_vulnerabilities(full: bool) -> Sql:
    """CVE exceptions: the weaknesses of covered CVEs, per (device, product)."""
    return Sql(
        f"UPDATE {DR} SET covered_points = x.cp, covered_weak = x.cw "
        "FROM (SELECT w.device_id, w.software_id, "
        "sum(CASE WHEN c.mitigating = 1 THEN v.exposure_points ELSE 0.0 END) AS cp, "
        f"count(*) AS cw FROM {COV} c "
        "JOIN weakness w ON w.vulnerability_id = c.vulnerability_id "
        "JOIN device d ON d.id = w.device_id AND d.device_group_id = c.device_group_id "
        "JOIN vulnerability v ON v.id = w.vulnerability_id "
        f"WHERE w.fixed_at IS NULL{_device_filter(full, 'w.device_id')} "
        "GROUP BY w.device_id, w.software_id) x "
        f"WHERE {DR}.device_id = x.device_id AND {DR}.software_id = x.software_id"
    )


def cover_recommendations(full: bool) -> Sql:
    """Recommendation exceptions, which cover every weakness of the row (no double count)."""
    return Sql(
        f"UPDATE {DR} SET rec_covered = 1, covered_points = CASE WHEN x.mitigating = 1 "
        f"THEN {DR}.points ELSE {DR}.covered_points END "
        f"FROM (SELECT d.id AS device_id, c.recommendation_id, c.mitigating FROM {COV} c "
        "JOIN device d ON d.device_group_id = c.device_group_id "
        f"WHERE c.recommendation_id IS NOT NULL{_device_filter(full, 'd.id')}) x "
        f"WHERE {DR}.device_id = x.device_id "
        f"AND {DR}.recommendation_id = x.recommendation_id"
    )


COLLECT_TOUCHED_RECOMMENDATIONS = Sql(
    f"INSERT INTO {RECS} (id) "
    "SELECT recommendation_id FROM device_recommendation "
    f"WHERE device_id IN (SELECT id FROM {DEVICES}) "
    f"UNION SELECT recommendation_id FROM {DR} "
    # Their installed products and assessed checks count in "installed devices".
    "UNION SELECT r.id FROM recommendation r "
    "JOIN installed_software i ON i.software_id = r.software_id "
    f"WHERE i.device_id IN (SELECT id FROM {DEVICES}) "
    "UNION SELECT r.id FROM recommendation r "
    "JOIN configuration_assessment ca ON ca.configuration_id = r.configuration_id "
    f"WHERE ca.device_id IN (SELECT id FROM {DEVICES})"
)
"""Recommendations the target devices had before, have now, or count as installed on."""


def delete_device_recommendations(full: bool) -> Sql:
    """The target devices' ``device_recommendation`` rows, before they are written again."""
    where = "" if full else f" WHERE device_id IN (SELECT id FROM {DEVICES})"
    return Sql(f"DELETE FROM device_recommendation{where}")


_ORPHAN = (
    "NOT EXISTS (SELECT 1 FROM device_recommendation dr "
    "WHERE dr.recommendation_id = recommendation.id)"
)


def delete_group_rows(table: GroupRowTable, group_id: int) -> Sql:
    """The rows (``table``) of one device group, before the group goes."""
    return Sql(f"DELETE FROM {table} WHERE device_group_id = :group_id", {"group_id": group_id})


def delete_orphan_rows(full: bool, table: GroupRowTable) -> Sql:
    """The group rows (``table``) of recommendations no device is exposed to any more."""
    within = "" if full else f" AND id IN (SELECT id FROM {RECS})"
    return Sql(
        f"DELETE FROM {table} WHERE recommendation_id IN "
        f"(SELECT id FROM recommendation WHERE {_ORPHAN}{within})"
    )


def delete_orphans(full: bool) -> Sql:
    """Recommendations no device is exposed to any more."""
    within = "" if full else f" AND id IN (SELECT id FROM {RECS})"
    return Sql(f"DELETE FROM recommendation WHERE {_ORPHAN}{within}")


# Steps 5-7 (group_figures.py): the groups' sums and the recommendations' figures.

GROUP_SCORE_COUNTS = Sql(
    "SELECT device_group_id, active_devices, high_value_devices FROM group_score_stat"
)
DELETE_GROUP_SCORE_STAT = Sql("DELETE FROM group_score_stat")
INSERT_GROUP_SCORE_STAT = Sql(
    "INSERT INTO group_score_stat (device_group_id, active_devices, high_value_devices, "
    "weight_low_normal, exposure_weighted, exposure_high, devices_none, devices_low, "
    "devices_medium, devices_high, exposure_weighted_after, exposure_high_after) "
    f"SELECT d.device_group_id, count(*), sum({IS_HIGH}), sum({WEIGHT}), "
    f"sum({WEIGHT} * d.exposure_score), "
    "sum(CASE WHEN d.device_value = 'High' THEN d.exposure_score ELSE 0.0 END), "
    "sum(CASE WHEN d.exposure_level = 'None' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN d.exposure_level = 'Low' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN d.exposure_level = 'Medium' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN d.exposure_level = 'High' THEN 1 ELSE 0 END), "
    f"sum({WEIGHT} * d.exposure_score_after), "
    "sum(CASE WHEN d.device_value = 'High' THEN d.exposure_score_after ELSE 0.0 END) "
    f"FROM device d WHERE {ACTIVE} GROUP BY d.device_group_id"
)
"""Exposure sums of every group: one aggregate over the device table, cheap enough always."""

GROUPS_OF_TARGET_DEVICES = Sql(
    f"SELECT DISTINCT device_group_id FROM device WHERE id IN (SELECT id FROM {DEVICES})"
)
COLLECT_TOUCHED_PAIRS = Sql(
    f"INSERT INTO {PAIRS} (recommendation_id, device_group_id) "
    f"SELECT r.id, g.id FROM {RECS} r CROSS JOIN {GROUPS} g "
    "WHERE EXISTS (SELECT 1 FROM recommendation x WHERE x.id = r.id)"
)
"""The touched recommendations that still exist, in every touched group."""


def delete_group_secure_stat(full: bool) -> Sql:
    """The Secure Score sums of the touched groups (every group in a full rebuild)."""
    where = "" if full else f" WHERE device_group_id IN (SELECT id FROM {GROUPS})"
    return Sql(f"DELETE FROM group_secure_stat{where}")


def _within_groups(full: bool) -> str:
    return "" if full else f" AND d.device_group_id IN (SELECT id FROM {GROUPS})"


def insert_group_secure_stat(full: bool, sqlite: bool) -> Sql:
    """Secure Score sums by (group, category) over the active devices of the touched groups."""
    # Count the assessments per (group, check) first and weigh them after: one lookup of the
    # check per group instead of one per assessment. The full rebuild reads the assessments in
    # stored (device) order, looking each device up (SQLite keeps the table order of a CROSS
    # JOIN); walking a group's devices instead jumps across the whole table once per group.
    assessed = (
        f"configuration_assessment ca{_stored_order(sqlite)} CROSS JOIN device d "
        "WHERE d.id = ca.device_id AND "
        if full
        else "device d JOIN configuration_assessment ca ON ca.device_id = d.id WHERE "
    )
    return Sql(
        "INSERT INTO group_secure_stat (device_group_id, category, passed_weight, total_weight, "
        "passed_weight_after) "
        "SELECT x.device_group_id, c.category, sum(x.passed * c.weight), sum(x.total * c.weight), "
        "sum(x.passed * c.weight) "
        "FROM (SELECT d.device_group_id, ca.configuration_id, "
        "sum(CASE WHEN ca.is_compliant THEN 1 ELSE 0 END) AS passed, count(*) AS total "
        f"FROM {assessed}{ACTIVE}{_within_groups(full)} "
        "GROUP BY d.device_group_id, ca.configuration_id) x "
        "JOIN security_configuration c ON c.id = x.configuration_id "
        "GROUP BY x.device_group_id, c.category"
    )


def update_group_secure_after(full: bool) -> Sql:
    """The after-exceptions passed weight adds the failing checks under a mitigating
    exception."""
    return Sql(
        "UPDATE group_secure_stat SET passed_weight_after = "
        "group_secure_stat.passed_weight + x.w "
        "FROM (SELECT d.device_group_id, c.category, sum(dr.config_weight) AS w "
        "FROM device_recommendation dr JOIN device d ON d.id = dr.device_id "
        "JOIN recommendation r ON r.id = dr.recommendation_id "
        "JOIN security_configuration c ON c.id = r.configuration_id "
        f"WHERE dr.covered_points > 0 AND dr.config_weight > 0 AND {ACTIVE}"
        f"{_within_groups(full)} "
        "GROUP BY d.device_group_id, c.category) x "
        "WHERE group_secure_stat.device_group_id = x.device_group_id "
        "AND group_secure_stat.category = x.category"
    )


def delete_all(table: GroupRowTable) -> Sql:
    """Every row of one of a recommendation's per-group tables (full rebuild)."""
    return Sql(f"DELETE FROM {table}")


def delete_touched_pairs(table: GroupRowTable) -> Sql:
    """The rows of the touched (recommendation, group) pairs in one per-group table."""
    return Sql(
        f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {PAIRS} p "
        f"WHERE p.recommendation_id = {table}.recommendation_id "
        f"AND p.device_group_id = {table}.device_group_id)"
    )


# Incremental: driven from the touched pairs' groups (the cost follows the group's size).
_PAIR_DEVICES = (
    f"FROM {PAIRS} p JOIN recommendation r ON r.id = p.recommendation_id "
    "JOIN device d ON d.device_group_id = p.device_group_id "
)
# PostgreSQL, incremental: the touched groups' active devices, read once through
# ix_device_group_seen and kept (d); each statement then reads the rows of those devices only
# (by device, or by product or check and matched against d by hash), instead of following every
# row of a touched recommendation across the organisation to its device.
_GROUP_DEVICES = (
    "WITH d AS MATERIALIZED (SELECT id, device_group_id, device_value, internet_facing, "
    "last_seen "
    f"FROM device WHERE device_group_id IN (SELECT id FROM {GROUPS}) AND last_seen >= :cutoff) "
)
_IN_PAIRS = (
    f"JOIN {PAIRS} p ON p.recommendation_id = r.id AND p.device_group_id = d.device_group_id "
)


def insert_exposed_by_group(full: bool, sqlite: bool) -> Sql:
    """``tmp_rm_exp``: exposed devices and score deltas per (recommendation, group)."""
    if full:
        # Every full-rebuild query reads the big table in stored (device) order and looks
        # each device up (SQLite keeps the table order of a CROSS JOIN; PostgreSQL plans it as
        # an inner join): walking group by group through ix_device_group_seen instead revisits
        # every page of the big table once per group, which at 100,000 devices in 40 groups
        # no longer fits the cache.
        source = (
            f"FROM device_recommendation dr{_stored_order(sqlite)} CROSS JOIN device d "
            "WHERE d.id = dr.device_id AND "
        )
    elif sqlite:
        source = (
            _PAIR_DEVICES + "JOIN device_recommendation dr "
            "ON dr.device_id = d.id AND dr.recommendation_id = p.recommendation_id WHERE "
        )
    else:
        source = (
            "FROM d JOIN device_recommendation dr ON dr.device_id = d.id "
            f"JOIN {PAIRS} p ON p.recommendation_id = dr.recommendation_id "
            "AND p.device_group_id = d.device_group_id WHERE "
        )
    with_devices = "" if full or sqlite else _GROUP_DEVICES
    return Sql(
        f"INSERT INTO {EXP} {with_devices}SELECT dr.recommendation_id, d.device_group_id, "
        f"count(*), sum({IS_HIGH}), sum(CASE WHEN d.internet_facing THEN 1 ELSE 0 END), "
        f"sum({WEIGHT} * dr.score_delta), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta ELSE 0.0 END), "
        "sum(dr.config_weight), sum(dr.open_after), "
        f"sum({WEIGHT} * dr.score_delta_after), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta_after ELSE 0.0 END), "
        "sum(dr.open_after * dr.config_weight) "
        f"{source}{ACTIVE} "
        "GROUP BY dr.recommendation_id, d.device_group_id"
    )


def insert_installed_software(full: bool, sqlite: bool) -> Sql:
    """``tmp_rm_inst``: active devices with the product of a software recommendation."""
    if full and not sqlite:
        # PostgreSQL: each (product, device) once, in the index's order, then every device
        # matched by hash (looking each up took three times as long) and counted plainly.
        return Sql(
            f"INSERT INTO {INST} SELECT r.id, d.device_group_id, count(*) "
            "FROM (SELECT DISTINCT software_id, device_id FROM installed_software "
            "WHERE software_id IN (SELECT software_id FROM recommendation)) i "
            "JOIN recommendation r ON r.software_id = i.software_id "
            f"JOIN device d ON d.id = i.device_id WHERE {ACTIVE} "
            "GROUP BY r.id, d.device_group_id"
        )
    if full:
        # Driven from the installations of products that have a recommendation, through the
        # covering index (software_id, device_id): the other products are never read. Order
        # and index are forced on SQLite: the recommendations were only just written, and with
        # statistics that call the table empty SQLite walks every installation or builds an
        # automatic index over all of them (25-50 s instead of about 1 s at 100,000 devices).
        by_software = " INDEXED BY ix_installed_software_software"
        source = (
            f"FROM recommendation r CROSS JOIN installed_software i{by_software} "
            "CROSS JOIN device d "
            "WHERE i.software_id = r.software_id AND d.id = i.device_id AND "
        )
    elif sqlite:
        source = (
            _PAIR_DEVICES + "JOIN installed_software i "
            "ON i.device_id = d.id AND i.software_id = r.software_id WHERE "
        )
    else:
        source = (
            f"FROM {PAIRS} p JOIN recommendation r ON r.id = p.recommendation_id "
            "JOIN installed_software i ON i.software_id = r.software_id "
            "JOIN d ON d.id = i.device_id AND d.device_group_id = p.device_group_id WHERE "
        )
    with_devices = "" if full or sqlite else _GROUP_DEVICES
    return Sql(
        f"INSERT INTO {INST} {with_devices}SELECT r.id, d.device_group_id, count(DISTINCT d.id) "
        f"{source}r.kind = 'software' AND {ACTIVE} "
        "GROUP BY r.id, d.device_group_id"
    )


def insert_assessed_checks(full: bool, sqlite: bool) -> Sql:
    """``tmp_rm_inst``: active devices assessed on the check of a configuration
    recommendation."""
    if full:
        # Nearly every check has a recommendation somewhere: read all assessments in device
        # order and aggregate before naming the recommendation (as for the vulnerabilities).
        by_check = " INDEXED BY ix_configuration_assessment_config" if sqlite else ""
        return Sql(
            f"INSERT INTO {INST} SELECT r.id, x.device_group_id, x.installed "
            "FROM (SELECT ca.configuration_id, d.device_group_id, count(*) AS installed "
            # The narrow covering index (configuration_id, device_id) holds all it needs.
            f"FROM configuration_assessment ca{by_check} CROSS JOIN device d "
            f"WHERE d.id = ca.device_id AND {ACTIVE} "
            "GROUP BY ca.configuration_id, d.device_group_id) x "
            "JOIN recommendation r ON r.configuration_id = x.configuration_id"
        )
    source = (
        _PAIR_DEVICES + "JOIN configuration_assessment ca "
        "ON ca.device_id = d.id AND ca.configuration_id = r.configuration_id "
        if sqlite
        else _GROUP_DEVICES + "SELECT r.id, d.device_group_id, count(*) FROM d "
        "JOIN configuration_assessment ca ON ca.device_id = d.id "
        "JOIN recommendation r ON r.configuration_id = ca.configuration_id " + _IN_PAIRS
    )
    select = "SELECT r.id, d.device_group_id, count(*) " if sqlite else ""
    return Sql(
        f"INSERT INTO {INST} {select}{source}WHERE r.kind = 'configuration' AND {ACTIVE} "
        "GROUP BY r.id, d.device_group_id"
    )


INSERT_RECOMMENDATION_GROUP_STAT = Sql(
    "INSERT INTO recommendation_group_stat (recommendation_id, device_group_id, "
    "exposed_devices, exposed_critical_devices, installed_devices, delta_weighted, "
    "delta_high, config_weight, internet_facing_devices, exposed_devices_after, "
    "delta_weighted_after, delta_high_after, config_weight_after) "
    "SELECT k.recommendation_id, k.device_group_id, coalesce(e.exposed, 0), "
    "coalesce(e.critical, 0), coalesce(i.installed, 0), coalesce(e.delta_weighted, 0.0), "
    "coalesce(e.delta_high, 0.0), coalesce(e.config_weight, 0.0), coalesce(e.facing, 0), "
    "coalesce(e.exposed_after, 0), coalesce(e.delta_weighted_after, 0.0), "
    "coalesce(e.delta_high_after, 0.0), coalesce(e.config_weight_after, 0.0) "
    f"FROM (SELECT recommendation_id, device_group_id FROM {EXP} "
    f"UNION SELECT recommendation_id, device_group_id FROM {INST}) k "
    f"LEFT JOIN {EXP} e ON e.recommendation_id = k.recommendation_id "
    "AND e.device_group_id = k.device_group_id "
    f"LEFT JOIN {INST} i ON i.recommendation_id = k.recommendation_id "
    "AND i.device_group_id = k.device_group_id"
)
"""``recommendation_group_stat`` from the two work tables, one row per pair in either."""

_UNFIXED = "(CASE WHEN w.fixed_version IS NULL OR w.fixed_version = '' THEN 1 ELSE 0 END)"
_INSERT_VULNERABILITIES = (
    "INSERT INTO recommendation_vulnerability (recommendation_id, vulnerability_id, "
    "device_group_id, exposed_devices, fixed_version, unpatchable_devices) "
)


def insert_recommendation_vulnerabilities(full: bool, sqlite: bool) -> Sql:
    """``recommendation_vulnerability``: exposed devices per (recommendation, CVE, group)."""
    if full:
        # Aggregate the weaknesses first, reading them in device order (the order they are
        # stored in), and name the recommendation after: at 100,000 devices, visiting them
        # product by product through an index jumps all over the table.
        weaknesses = (
            f"FROM weakness w{_stored_order(sqlite)} CROSS JOIN device d "
            f"WHERE d.id = w.device_id AND w.fixed_at IS NULL AND {ACTIVE} "
        )
        if sqlite:
            counted = (
                "(SELECT w.software_id, w.vulnerability_id, d.device_group_id, "
                "count(*) AS exposed, max(w.fixed_version) AS fixed_version, "
                f"sum({_UNFIXED}) AS unpatchable "
                f"{weaknesses}GROUP BY w.software_id, w.vulnerability_id, d.device_group_id)"
            )
        else:
            # PostgreSQL: counted per fixed version first (one count per weakness instead of
            # three aggregates: a fifth faster), and written in key order (each row lands
            # beside the one before).
            counted = (
                "(SELECT software_id, vulnerability_id, device_group_id, sum(n) AS exposed, "
                "max(fixed_version) AS fixed_version, sum(CASE WHEN fixed_version IS NULL OR "
                "fixed_version = '' THEN n ELSE 0 END) AS unpatchable FROM "
                "(SELECT w.software_id, w.vulnerability_id, d.device_group_id, w.fixed_version, "
                f"count(*) AS n {weaknesses}GROUP BY w.software_id, w.vulnerability_id, "
                "d.device_group_id, w.fixed_version) y "
                "GROUP BY software_id, vulnerability_id, device_group_id)"
            )
        # Written in key order: each row lands beside the one before, and SQLite's rows lie in
        # the order the recompute reads them in (by recommendation, ``_sql_fields``).
        in_order = " ORDER BY r.id, x.vulnerability_id, x.device_group_id"
        return Sql(
            _INSERT_VULNERABILITIES + "SELECT r.id, x.vulnerability_id, x.device_group_id, "
            f"x.exposed, x.fixed_version, x.unpatchable FROM {counted} x "
            f"JOIN recommendation r ON r.software_id = x.software_id{in_order}"
        )
    # SQLite's own plan read all of a product's weaknesses per device (84 s of a re-import into
    # the demo); forced: pairs, then devices, then the unique index (0.3 s; plan tested).
    source = (
        f"FROM {PAIRS} p CROSS JOIN recommendation r CROSS JOIN device d CROSS JOIN weakness w "
        f"INDEXED BY {WEAKNESS_UNIQUE_INDEX} WHERE r.id = p.recommendation_id AND "
        "d.device_group_id = p.device_group_id AND w.device_id = d.id AND "
        if sqlite
        else "FROM d JOIN weakness w ON w.device_id = d.id "
        "JOIN recommendation r ON r.software_id = w.software_id " + _IN_PAIRS + "WHERE "
    )
    with_devices = "" if sqlite else _GROUP_DEVICES
    return Sql(
        _INSERT_VULNERABILITIES + with_devices + "SELECT r.id, w.vulnerability_id, "
        "d.device_group_id, count(*), "
        f"max(w.fixed_version), sum({_UNFIXED}) {source}w.software_id = r.software_id AND "
        f"r.kind = 'software' AND w.fixed_at IS NULL AND {ACTIVE} "
        "GROUP BY r.id, w.vulnerability_id, d.device_group_id"
    )
