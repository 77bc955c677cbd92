"""Steps 5-7 of the recompute (see ``service``): the groups' score sums, the per-group rows of
each recommendation (``recommendation_group_stat``, ``recommendation_vulnerability``), and the
fields and organisation-wide figures of the recommendations. The SQL is in ``_sql.py``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from remedium.recommendations import _sql as sql
from remedium.recommendations import _sql_fields as fields_sql
from remedium.recommendations import engine as rules
from remedium.recommendations import recompute_tables as work
from remedium.recommendations.models import Recommendation
from remedium.recommendations.recompute_runner import CHUNK, EPSILON, Runner
from remedium.scoring import engine as scoring


def score_stat_counts(run: Runner) -> dict[int, tuple[int, int]]:
    """Active and High-value devices of every group, as ``group_score_stat`` holds them."""
    return {int(g): (int(a), int(h)) for g, a, h in run.rows(sql.GROUP_SCORE_COUNTS)}


def rebuild_group_score_stat(run: Runner) -> None:
    """Exposure sums of every group: one aggregate over the device table, cheap enough always."""
    run.run(sql.DELETE_GROUP_SCORE_STAT)
    run.run(sql.INSERT_GROUP_SCORE_STAT)


def collect_touched_groups(run: Runner, full: bool, old: dict[int, tuple[int, int]]) -> int:
    """Groups of the target devices, plus groups whose active devices changed (a device moved
    out of them): the pairs rebuilt are the touched recommendations in these groups."""
    if full:
        return len(old)
    new = score_stat_counts(run)
    changed = {g for g in set(old) | set(new) if old.get(g) != new.get(g)}
    current = {int(g) for (g,) in run.rows(sql.GROUPS_OF_TARGET_DEVICES)}
    groups = sorted(changed | current)
    run.create(work.touched_groups)
    run.fill(work.touched_groups, [{"id": g} for g in groups])
    run.run(sql.analyze(work.touched_groups))
    run.create(work.touched_pairs)
    run.run(sql.COLLECT_TOUCHED_PAIRS)
    run.run(sql.analyze(work.touched_pairs))
    return len(groups)


def rebuild_group_secure_stat(run: Runner, full: bool, covered: bool) -> None:
    """Secure Score sums by (group, category) over active devices, for the touched groups; the
    after-exceptions passed weight adds the failing checks under a mitigating exception."""
    run.run(sql.delete_group_secure_stat(full))
    run.run(sql.insert_group_secure_stat(full, run.sqlite))
    if covered:
        run.run(sql.update_group_secure_after(full))


def rebuild_recommendation_stats(run: Runner, full: bool) -> None:
    """``recommendation_group_stat`` and ``recommendation_vulnerability`` for touched pairs
    (every pair in a full rebuild), through the work tables ``tmp_rm_exp`` and ``tmp_rm_inst``."""
    for table in sql.GROUP_ROW_TABLES:
        run.run(sql.delete_all(table) if full else sql.delete_touched_pairs(table))
    run.create(work.exposed_by_group)
    run.run(sql.insert_exposed_by_group(full, run.sqlite))
    run.create(work.installed_by_group)
    run.run(sql.insert_installed_software(full, run.sqlite))
    run.run(sql.insert_assessed_checks(full, run.sqlite))
    run.run(sql.INSERT_RECOMMENDATION_GROUP_STAT)
    run.run(sql.insert_recommendation_vulnerabilities(full, run.sqlite))


# What the vulnerabilities of a recommendation add up to (``_threat_facts``): weaknesses, public
# exploit, exploit verified, active alert, max CVSS, max EPSS, max severity, unpatchable, and
# the fixed versions; a recommendation without any has these.
_Threats = tuple[int, bool, bool, bool, float, float, str, bool, tuple[str, ...]]
_NO_THREATS: _Threats = (0, False, False, False, 0.0, 0.0, "", False, ())


def _threat_facts(run: Runner, full: bool, span: fields_sql.Span) -> dict[str, _Threats]:
    """What the vulnerabilities of each touched recommendation of ``span`` add up to."""
    threats: dict[str, _Threats] = {}
    sqlite = run.sqlite
    severity_of_rank = rules.severity_of_rank
    for row in run.rows(fields_sql.recommendation_threats(full, sqlite, rules.SEVERITY_RANK, span)):
        rec_id, weaknesses, exploit, verified, kev, cvss, epss, severity, unpatchable = row[:9]
        fixed = json.loads(row[9]) if sqlite else row[9]
        threats[rec_id] = (
            int(weaknesses),
            bool(exploit),
            bool(verified),
            bool(kev),
            float(cvss),
            float(epss),
            severity_of_rank(int(severity)),
            bool(unpatchable),
            tuple(sorted({version for version in fixed if version is not None})),
        )
    return threats


class _Organisation:
    """The organisation's sums that turn a recommendation's group sums into its
    organisation-wide figures (counts, exposure impact, Secure Score impact)."""

    def __init__(self, run: Runner) -> None:
        row = run.rows(fields_sql.ORGANISATION_EXPOSURE_SUMS)[0]
        self.sums = scoring.ExposureSums(
            int(row[0]), int(row[1]), float(row[2]), float(row[3]), float(row[4])
        )
        self.secure_total = float(run.rows(fields_sql.ORGANISATION_SECURE_TOTAL)[0][0])

    def figures(self, rec_id: str, sums: tuple[Any, ...]) -> dict[str, Any]:
        """The figures of one recommendation from (installed, exposed, critical, delta
        weighted, delta high, config weight) summed over its groups."""
        total, exposed, critical, weighted, high, config = sums
        return {
            "id": rec_id,
            "total_machine_count": int(total),
            "exposed_machines_count": int(exposed),
            "exposed_critical_devices": int(critical),
            "exposure_impact": self.sums.impact(float(weighted), float(high)),
            "config_score_impact": scoring.secure_score_impact(float(config), self.secure_total),
        }


_NO_GROUPS = (0, 0, 0, 0.0, 0.0, 0.0)


def refresh_recommendation_fields(run: Runner, full: bool) -> int:
    """Name, remediation type, version, threats, tags and organisation-wide figures of the
    touched recommendations (every one when ``full``), each written once, ``CHUNK`` of them at
    a time: memory stays flat however many there are (one image can name 100,000 products).
    Then the organisation-wide figures of the untouched ones, where they moved."""
    organisation = _Organisation(run)
    written = 0
    after: str | None = None
    while (last := run.scalar(fields_sql.span_end(full, after, CHUNK))) is not None:
        written += _refresh_span(run, full, fields_sql.Span(after, last), organisation)
        after = last
    if not full:
        _refresh_untouched_figures(run, organisation)
    return written


def _refresh_span(
    run: Runner, full: bool, span: fields_sql.Span, organisation: _Organisation
) -> int:
    """The fields of the touched recommendations of ``span``; returns how many there were."""
    recs = run.rows(fields_sql.recommendation_facts(full, span))
    if not recs:
        return 0
    threats = _threat_facts(run, full, span)
    facing = {
        rec_id for (rec_id,) in run.rows(fields_sql.internet_facing_recommendations(full, span))
    }
    group_sums = {
        row[0]: tuple(row[1:]) for row in run.rows(fields_sql.touched_figure_sums(full, span))
    }
    updates: list[dict[str, Any]] = []
    for row in recs:
        rec_id, kind = row[0], row[1]
        facts = threats.get(rec_id, _NO_THREATS)
        values = organisation.figures(rec_id, group_sums.get(rec_id, _NO_GROUPS))
        values.update(
            public_exploit=facts[1],
            exploit_verified=facts[2],
            active_alert=facts[3],
            max_cvss=facts[4],
            max_epss=facts[5],
            max_severity=facts[6],
            updated_at=run.as_of,
        )
        if kind == "software":
            values.update(_software_fields(run, row, facts, rec_id in facing))
        else:
            values.update(_configuration_fields(row, rec_id in facing))
        updates.append(values)
    _bulk_update(run, updates)
    return len(recs)


def _software_fields(
    run: Runner, row: tuple[Any, ...], facts: _Threats, facing: bool
) -> dict[str, Any]:
    """The fields of a software recommendation (a row of ``recommendation_facts``)."""
    (display_name, display_vendor, vendor, product, is_os, eos_on, eos_versions) = row[2:9]
    advice = rules.software_advice(
        rules.SoftwareFacts(
            display_name=display_name,
            display_vendor=display_vendor or "",
            end_of_support_on=_as_datetime(eos_on),
            has_eos_version_installed=_has_eos_version(run, row[9], eos_versions),
            has_unpatchable_cve=facts[7],
            fixed_versions=facts[8],
            internet_facing_exposed=facing,
        ),
        run.as_of,
    )
    return {
        "name": advice.name,
        "product_name": product,
        "vendor": vendor,
        "related_component": display_name,
        "recommended_version": advice.recommended_version,
        "recommended_program": "",
        "recommended_vendor": "",
        "category": "OS" if is_os else "Application",
        "sub_category": "",
        "severity_score": 0.0,
        "remediation_type": advice.remediation_type,
        "weaknesses": facts[0],
        "has_unpatchable_cve": facts[7],
        "tags": list(advice.tags),
    }


def _configuration_fields(row: tuple[Any, ...], facing: bool) -> dict[str, Any]:
    """The fields of a configuration recommendation (a row of ``recommendation_facts``)."""
    (name, category, sub_category, weight, description, remediation, component) = row[10:17]
    return {
        "name": name,
        "product_name": "",
        "vendor": "",
        "related_component": component or category,
        "recommended_version": "",
        "category": category,
        "sub_category": sub_category or "",
        "severity_score": float(weight),
        "remediation_type": "ConfigurationChange",
        "description": description or "",
        "remediation_text": remediation or "",
        # One misconfiguration, whatever the number of devices that have it.
        "weaknesses": 1,
        "has_unpatchable_cve": False,
        "tags": list(rules.configuration_tags(internet_facing_exposed=facing)),
    }


def _refresh_untouched_figures(run: Runner, organisation: _Organisation) -> None:
    """Organisation-wide counts and impacts of the recommendations the fields pass did not
    touch, from the group rows: the organisation's sums (its active devices, hence the weight
    of High-value devices, and its Secure Score weight) move with any change. Only rows whose
    figures changed are written."""
    updates = []
    for rec_id, *sums_and_old in run.rows(fields_sql.ORGANISATION_FIGURES):
        values = organisation.figures(rec_id, tuple(sums_and_old[:6]))
        if _changed(sums_and_old[6:], values):
            updates.append(values)
            if len(updates) == CHUNK:
                _bulk_update(run, updates)
                updates.clear()
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
    run.update_by_id(Recommendation.__table__, updates)  # type: ignore[arg-type]


def _has_eos_version(run: Runner, software_id: int | None, versions: Any) -> bool:
    """True when an active device has a version of the product the vendor no longer supports."""
    if isinstance(versions, str):  # SQLite hands JSON back as text through raw SQL
        versions = json.loads(versions)
    if software_id is None or not versions:
        return False
    found = run.rows(fields_sql.eos_version_installed(software_id, list(versions)))
    return bool(found)


def _as_datetime(value: Any) -> datetime | None:
    """A timestamp read through raw SQL (SQLite returns text) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
