"""Steps 5-7 of the recompute (see ``service``): the groups' score sums, the per-group rows of
each recommendation (``recommendation_group_stat``, ``recommendation_vulnerability``), and the
fields and organisation-wide figures of the recommendations."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text, update

from remedium.db.types import UtcDateTime
from remedium.recommendations import engine as rules
from remedium.recommendations._sql import (
    ACTIVE,
    CHUNK,
    EPSILON,
    IS_HIGH,
    WEIGHT,
    Runner,
    in_stored_order,
)
from remedium.recommendations.models import Recommendation
from remedium.scoring import engine as scoring


def score_stat_counts(run: Runner) -> dict[int, tuple[int, int]]:
    rows = run.rows(
        "SELECT device_group_id, active_devices, high_value_devices FROM group_score_stat"
    )
    return {int(g): (int(a), int(h)) for g, a, h in rows}


def rebuild_group_score_stat(run: Runner) -> None:
    """Exposure sums of every group: one aggregate over the device table, cheap enough always."""
    run.run("DELETE FROM group_score_stat")
    run.run(
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


def collect_touched_groups(run: Runner, full: bool, old: dict[int, tuple[int, int]]) -> int:
    """Groups of the target devices, plus groups whose active devices changed (a device moved
    out of them): the pairs rebuilt are the touched recommendations in these groups."""
    if full:
        return len(old)
    new = score_stat_counts(run)
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


def rebuild_group_secure_stat(run: Runner, full: bool, covered: bool) -> None:
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
        f"configuration_assessment ca{in_stored_order(run)} CROSS JOIN device d "
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
        f"FROM {assessed}{ACTIVE}{within} "
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
            f"WHERE dr.covered_points > 0 AND dr.config_weight > 0 AND {ACTIVE}{within} "
            "GROUP BY d.device_group_id, c.category) x "
            "WHERE group_secure_stat.device_group_id = x.device_group_id "
            "AND group_secure_stat.category = x.category"
        )


def rebuild_recommendation_stats(run: Runner, full: bool) -> None:
    """``recommendation_group_stat`` and ``recommendation_vulnerability`` for touched pairs."""
    if full:
        run.run("DELETE FROM recommendation_group_stat")
        run.run("DELETE FROM recommendation_vulnerability")
        # Every full-rebuild query below reads the big table in stored (device) order and
        # looks each device up (SQLite keeps the table order of a CROSS JOIN; PostgreSQL plans
        # it as an inner join): walking group by group through ix_device_group_seen instead
        # revisits every page of the big table once per group, which at 100,000 devices in
        # 40 groups no longer fits the cache.
        exposed_from = f"FROM device_recommendation dr{in_stored_order(run)} CROSS JOIN device d "
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
        f"sum({IS_HIGH}), sum(CASE WHEN d.internet_facing THEN 1 ELSE 0 END), "
        f"sum({WEIGHT} * dr.score_delta), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta ELSE 0.0 END), "
        "sum(dr.config_weight), sum(dr.open_after), "
        f"sum({WEIGHT} * dr.score_delta_after), "
        "sum(CASE WHEN d.device_value = 'High' THEN dr.score_delta_after ELSE 0.0 END), "
        "sum(dr.open_after * dr.config_weight) "
        f"{exposed_from}WHERE {exposed_on}{ACTIVE} "
        "GROUP BY dr.recommendation_id, d.device_group_id"
    )
    run.run(
        "CREATE TEMPORARY TABLE tmp_rm_inst (recommendation_id VARCHAR(440) NOT NULL, "
        "device_group_id INTEGER NOT NULL, installed INTEGER)"
    )
    run.run(
        "INSERT INTO tmp_rm_inst SELECT r.id, d.device_group_id, count(DISTINCT d.id) "
        f"{software_from}WHERE {software_on}r.kind = 'software' AND {ACTIVE} "
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
            f"WHERE d.id = ca.device_id AND {ACTIVE} "
            "GROUP BY ca.configuration_id, d.device_group_id) x "
            "JOIN recommendation r ON r.configuration_id = x.configuration_id"
        )
    else:
        run.run(
            "INSERT INTO tmp_rm_inst SELECT r.id, d.device_group_id, count(*) "
            f"{config_from}WHERE r.kind = 'configuration' AND {ACTIVE} "
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
            f"FROM weakness w{in_stored_order(run)} CROSS JOIN device d "
            f"WHERE d.id = w.device_id AND w.fixed_at IS NULL AND {ACTIVE} "
            "GROUP BY w.software_id, w.vulnerability_id, d.device_group_id) x "
            "JOIN recommendation r ON r.software_id = x.software_id"
        )
        return
    run.run(
        insert_vulnerabilities + "SELECT r.id, w.vulnerability_id, d.device_group_id, count(*), "
        f"max(w.fixed_version), sum({unfixed}) "
        f"{weakness_from}WHERE r.kind = 'software' AND w.fixed_at IS NULL AND {ACTIVE} "
        "GROUP BY r.id, w.vulnerability_id, d.device_group_id"
    )


def _touched_filter(full: bool, column: str) -> str:
    return "" if full else f" AND {column} IN (SELECT id FROM tmp_rm_recs)"


def refresh_recommendation_fields(run: Runner, full: bool) -> int:
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


def refresh_organisation_figures(run: Runner) -> None:
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
        abs(float(stored or 0) - float(values[name])) > EPSILON
        for stored, name in zip(old, _ORGANISATION_FIELDS, strict=True)
    )


def _bulk_update(run: Runner, updates: list[dict[str, Any]]) -> None:
    for start in range(0, len(updates), CHUNK):
        run.session.execute(update(Recommendation), updates[start : start + CHUNK])


def _has_eos_version(run: Runner, software_id: int | None, versions: Any) -> bool:
    """True when an active device has a version of the product the vendor no longer supports."""
    if isinstance(versions, str):  # SQLite hands JSON back as text through raw SQL
        versions = json.loads(versions)
    if software_id is None or not versions:
        return False
    found = run.session.execute(
        text(
            "SELECT 1 FROM installed_software i JOIN device d ON d.id = i.device_id "
            "WHERE i.software_id = :software_id AND i.version IN :versions AND "
            f"{ACTIVE} LIMIT 1"
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
