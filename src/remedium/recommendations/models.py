"""Security recommendations and the per-device, per-group figures they are ranked by.

Everything here is derived data, rebuilt by ``recommendations.service.recompute`` from the
inventory and intelligence tables. The per-group rows let every figure be computed for any set of
device groups (a user's scope) without touching devices: see docs/scoring.md.

The three tables of rows the recompute writes by the million (``device_recommendation``,
``recommendation_group_stat``, ``recommendation_vulnerability``) carry no foreign keys: the
recompute writes each row from a join with the rows it names, in the same transaction, and
deletes a recommendation's and a group's rows itself before the recommendation or the group
goes. The keys, checked per row, took 12 of the 27 s of a PostgreSQL full recompute at 100,000
devices (docs/imports.md); ``tests/recommendations/test_derived_integrity.py`` checks that no row
names a missing one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime

# The tables this module's foreign keys point at (security_configuration, vulnerability): the ORM
# resolves them when it writes recommendations, also in a process that imports no intelligence
# module of its own (``remedium jobs run``'s recompute).
from remedium.intel import models as _intel_models  # noqa: F401 - loaded for its tables

# remedium derives ConfigurationChange, Update, Upgrade and AttentionRequired (no published fix);
# Uninstall stays a valid type for recommendations other sources name (docs/scoring.md).
REMEDIATION_TYPES = ("ConfigurationChange", "Update", "Upgrade", "AttentionRequired", "Uninstall")


class Recommendation(Base):
    """One action that removes weaknesses, with the fields of Defender's recommendation entity.

    Counts and impacts stored here are organisation-wide; scoped figures come from
    :class:`RecommendationGroupStat`.
    """

    __tablename__ = "recommendation"
    # The recompute joins inventory rows to their recommendation through these.
    __table_args__ = (
        Index("ix_recommendation_software", "software_id"),
        Index("ix_recommendation_configuration", "configuration_id"),
    )

    # "va-_-google-_-chrome" for software, "sca-_-scid-2000" for configuration.
    id: Mapped[str] = mapped_column(String(440), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # software | configuration
    software_id: Mapped[int | None] = mapped_column(ForeignKey("software.id"), nullable=True)
    configuration_id: Mapped[str | None] = mapped_column(
        ForeignKey("security_configuration.id"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(600))
    product_name: Mapped[str] = mapped_column(String(200), default="")
    vendor: Mapped[str] = mapped_column(String(200), default="")
    related_component: Mapped[str] = mapped_column(String(300), default="")
    recommended_version: Mapped[str] = mapped_column(String(100), default="")
    recommended_program: Mapped[str] = mapped_column(String(300), default="")
    recommended_vendor: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(
        String(20)
    )  # Accounts|Application|Network|OS|SecurityControls
    sub_category: Mapped[str] = mapped_column(String(200), default="")
    severity_score: Mapped[float] = mapped_column(Float, default=0.0)
    remediation_type: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    remediation_text: Mapped[str] = mapped_column(Text, default="")
    weaknesses: Mapped[int] = mapped_column(Integer, default=0)
    public_exploit: Mapped[bool] = mapped_column(Boolean, default=False)
    exploit_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    active_alert: Mapped[bool] = mapped_column(Boolean, default=False)  # a CVE listed in KEV
    has_unpatchable_cve: Mapped[bool] = mapped_column(Boolean, default=False)
    max_severity: Mapped[str] = mapped_column(String(10), default="")
    max_cvss: Mapped[float] = mapped_column(Float, default=0.0)
    max_epss: Mapped[float] = mapped_column(Float, default=0.0)
    associated_threats: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Organisation-wide figures as of the last recompute (also derivable from the group rows).
    total_machine_count: Mapped[int] = mapped_column(Integer, default=0)
    exposed_machines_count: Mapped[int] = mapped_column(Integer, default=0)
    exposed_critical_devices: Mapped[int] = mapped_column(Integer, default=0)
    exposure_impact: Mapped[float] = mapped_column(Float, default=0.0)
    config_score_impact: Mapped[float] = mapped_column(Float, default=0.0)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeviceRecommendation(Base):
    """What one recommendation would remove from one device (an exposed device)."""

    __tablename__ = "device_recommendation"
    __table_args__ = (Index("ix_device_recommendation_rec", "recommendation_id", "device_id"),)

    # device.id and recommendation.id, without foreign keys (see the module's docstring).
    device_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recommendation_id: Mapped[str] = mapped_column(String(440), primary_key=True)
    weaknesses: Mapped[int] = mapped_column(Integer, default=0)
    # Exposure points this recommendation contributes to the device.
    points: Mapped[float] = mapped_column(Float, default=0.0)
    # How much the device's exposure score falls when this recommendation is fixed on it.
    score_delta: Mapped[float] = mapped_column(Float, default=0.0)
    # Secure-score weight of the failing configuration check (configuration recommendations).
    config_weight: Mapped[float] = mapped_column(Float, default=0.0)
    # After exceptions (docs/scoring.md): points removed by Mitigation-like/Hybrid exceptions;
    # whether some of its weaknesses stay uncovered by any exception (1) or not (0); and how far
    # the device's after-exceptions score falls when the recommendation is fixed on it (0 when
    # nothing stays uncovered).
    covered_points: Mapped[float] = mapped_column(Float, default=0.0)
    open_after: Mapped[int] = mapped_column(Integer, default=1)
    score_delta_after: Mapped[float] = mapped_column(Float, default=0.0)


class RecommendationGroupStat(Base):
    """A recommendation's decomposable sums over the active devices of one device group."""

    __tablename__ = "recommendation_group_stat"
    __table_args__ = (Index("ix_recommendation_group_stat_group", "device_group_id"),)

    # recommendation.id and device_group.id, without foreign keys (see the module's docstring).
    recommendation_id: Mapped[str] = mapped_column(String(440), primary_key=True)
    device_group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exposed_devices: Mapped[int] = mapped_column(Integer, default=0)
    exposed_critical_devices: Mapped[int] = mapped_column(Integer, default=0)
    installed_devices: Mapped[int] = mapped_column(Integer, default=0)
    # Sum over exposed Low/Normal devices of device weight x score_delta.
    delta_weighted: Mapped[float] = mapped_column(Float, default=0.0)
    # Sum over exposed High-value devices of score_delta (their weight depends on the scope).
    delta_high: Mapped[float] = mapped_column(Float, default=0.0)
    # Sum of the failing check's weight over exposed devices (Secure Score impact).
    config_weight: Mapped[float] = mapped_column(Float, default=0.0)
    # Exposed devices that are internet facing (the "internetFacing" tag).
    internet_facing_devices: Mapped[int] = mapped_column(Integer, default=0)
    # After exceptions: exposed devices with weaknesses no exception covers, and the delta sums
    # over them, with after-exceptions score deltas; covered failing-check weight.
    exposed_devices_after: Mapped[int] = mapped_column(Integer, default=0)
    delta_weighted_after: Mapped[float] = mapped_column(Float, default=0.0)
    delta_high_after: Mapped[float] = mapped_column(Float, default=0.0)
    config_weight_after: Mapped[float] = mapped_column(Float, default=0.0)


class RecommendationVulnerability(Base):
    """Which vulnerabilities a recommendation removes, per device group, with device counts."""

    __tablename__ = "recommendation_vulnerability"

    # recommendation.id, vulnerability.id and device_group.id, without foreign keys (see the
    # module's docstring).
    recommendation_id: Mapped[str] = mapped_column(String(440), primary_key=True)
    vulnerability_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    device_group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exposed_devices: Mapped[int] = mapped_column(Integer, default=0)
    # The version that fixes this vulnerability (the highest one reported in the group), and
    # how many exposed devices have no fix for it: both feed the recommended version and the
    # "No security update" tag without rescanning weaknesses.
    fixed_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    unpatchable_devices: Mapped[int] = mapped_column(Integer, default=0)
