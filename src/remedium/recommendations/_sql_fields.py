"""The statements of the recompute's last step (``group_figures.refresh_recommendation_fields``):
the facts, threats and organisation-wide figures of the recommendations, read a span of ids at
a time, then the figures of the untouched ones. Reviewed as ``_sql.py`` is (its docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from remedium.recommendations._sql import ACTIVE, RECS
from remedium.recommendations.recompute_runner import Sql


@dataclass(frozen=True, slots=True)
class Span:
    """A run of recommendation ids in the database's own order: those after ``after`` (from
    the first when ``None``) up to ``last``. The fields pass reads and writes one span at a
    time, so its memory does not grow with the number of recommendations."""

    after: str | None
    last: str

    def where(self, column: str) -> str:
        low = "" if self.after is None else f" AND {column} > :span_after"
        return f"{low} AND {column} <= :span_last"

    @property
    def params(self) -> dict[str, object]:
        found: dict[str, object] = {"span_last": self.last}
        if self.after is not None:
            found["span_after"] = self.after
        return found


def _in_span(full: bool, column: str, span: Span) -> str:
    """``column`` in ``span`` and, when not ``full``, touched: the touched ids are read within
    the span (read whole, the list of touched ids would be walked again for every span)."""
    if full:
        return span.where(column)
    touched = f"SELECT id FROM {RECS} WHERE 1 = 1{span.where('id')}"
    return f"{span.where(column)} AND {column} IN ({touched})"


def span_end(full: bool, after: str | None, size: int) -> Sql:
    """The last id of the next ``size`` touched recommendations after ``after`` (``NULL`` past
    the last one): every recommendation in a full rebuild, else those of ``tmp_rm_recs``
    (read in its key order; one that no longer exists is skipped by the statements below)."""
    table = "recommendation" if full else RECS
    low = "" if after is None else " WHERE id > :span_after"
    return Sql(
        f"SELECT max(id) FROM (SELECT id FROM {table}{low} ORDER BY id LIMIT {int(size)}) x",
        params={} if after is None else {"span_after": after},
    )


def recommendation_facts(full: bool, span: Span) -> Sql:
    """The product or check of each touched recommendation of ``span`` (every one in a full
    rebuild)."""
    return Sql(
        "SELECT r.id, r.kind, s.display_name, s.display_vendor, s.vendor, s.product, "
        "s.is_operating_system, s.end_of_support_on, s.end_of_support_versions, s.id, "
        "c.name, c.category, c.sub_category, c.weight, c.description, c.remediation, "
        "c.related_component "
        "FROM recommendation r LEFT JOIN software s ON s.id = r.software_id "
        "LEFT JOIN security_configuration c ON c.id = r.configuration_id "
        f"WHERE 1 = 1{_in_span(full, 'r.id', span)}",
        params=span.params,
    )


def recommendation_threats(
    full: bool, sqlite: bool, severity_rank: Mapping[str, int], span: Span
) -> Sql:
    """One row per touched recommendation of ``span``, in one pass over its (vulnerability,
    group) rows in key order, summed up by the database (a product on one image can have a
    million): a vulnerability is unpatchable when one of its groups has an exposed device
    without a fix. The distinct fixed versions come as one JSON array (a separator could occur
    inside a version)."""
    rank = " ".join(f"WHEN '{name}' THEN {int(value)}" for name, value in severity_rank.items())
    versions = "json_group_array" if sqlite else "json_agg"
    return Sql(
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
        f"WHERE 1 = 1{_in_span(full, 'rv.recommendation_id', span)} "
        "GROUP BY rv.recommendation_id",
        params=span.params,
    )


def internet_facing_recommendations(full: bool, span: Span) -> Sql:
    """The touched recommendations of ``span`` with an exposed internet-facing device."""
    return Sql(
        "SELECT DISTINCT recommendation_id FROM recommendation_group_stat "
        f"WHERE internet_facing_devices > 0{_in_span(full, 'recommendation_id', span)}",
        params=span.params,
    )


def eos_version_installed(software_id: int, versions: Sequence[str]) -> Sql:
    """An active device with one of ``versions`` of the product installed (one row or none)."""
    return Sql(
        "SELECT 1 FROM installed_software i JOIN device d ON d.id = i.device_id "
        f"WHERE i.software_id = :software_id AND i.version IN :versions AND {ACTIVE} LIMIT 1",
        params={"software_id": software_id, "versions": list(versions)},
        expanding=("versions",),
    )


ORGANISATION_EXPOSURE_SUMS = Sql(
    "SELECT coalesce(sum(active_devices), 0), coalesce(sum(high_value_devices), 0), "
    "coalesce(sum(weight_low_normal), 0.0), coalesce(sum(exposure_weighted), 0.0), "
    "coalesce(sum(exposure_high), 0.0) FROM group_score_stat"
)
ORGANISATION_SECURE_TOTAL = Sql("SELECT coalesce(sum(total_weight), 0.0) FROM group_secure_stat")
_FIGURE_SUMS = (
    "coalesce(sum(g.installed_devices), 0), coalesce(sum(g.exposed_devices), 0), "
    "coalesce(sum(g.exposed_critical_devices), 0), coalesce(sum(g.delta_weighted), 0.0), "
    "coalesce(sum(g.delta_high), 0.0), coalesce(sum(g.config_weight), 0.0)"
)


def touched_figure_sums(full: bool, span: Span) -> Sql:
    """Per touched recommendation of ``span`` with group rows: the sums of its
    organisation-wide figures (``refresh_recommendation_fields`` writes them with its other
    fields)."""
    return Sql(
        f"SELECT g.recommendation_id, {_FIGURE_SUMS} FROM recommendation_group_stat g "
        f"WHERE 1 = 1{_in_span(full, 'g.recommendation_id', span)} "
        "GROUP BY g.recommendation_id",
        params=span.params,
    )


ORGANISATION_FIGURES = Sql(
    f"SELECT r.id, {_FIGURE_SUMS}, "
    "r.total_machine_count, r.exposed_machines_count, r.exposed_critical_devices, "
    "r.exposure_impact, r.config_score_impact "
    "FROM recommendation r LEFT JOIN recommendation_group_stat g "
    "ON g.recommendation_id = r.id "
    f"WHERE r.id NOT IN (SELECT id FROM {RECS}) "
    "GROUP BY r.id, r.total_machine_count, r.exposed_machines_count, "
    "r.exposed_critical_devices, r.exposure_impact, r.config_score_impact"
)
"""Per recommendation the fields pass did not touch (``tmp_rm_recs``): its organisation-wide
sums from the group rows, and its stored figures."""
