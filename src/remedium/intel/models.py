"""Vulnerabilities, their threat facts and history, and security configuration checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime

SEVERITIES = ("Low", "Medium", "High", "Critical")
# A source's own word for a vulnerability it cannot rate (Grype's "Unknown"), kept when nothing
# else rates it: docs/formats.md. Not a rank of SEVERITIES (filters and charts list those four).
UNRATED = "Unknown"
CONFIGURATION_CATEGORIES = ("Accounts", "Application", "Network", "OS", "SecurityControls")
CATEGORY_LABELS = {
    "Accounts": "Accounts",
    "Application": "Application",
    "Network": "Network",
    "OS": "Operating system",
    "SecurityControls": "Security controls",
}


class Vulnerability(Base):
    """A CVE or vendor advisory, with the facts that decide how much it matters."""

    __tablename__ = "vulnerability"
    __table_args__ = (
        CheckConstraint(
            "severity IN ('Low','Medium','High','Critical','Unknown')", name="severity"
        ),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. CVE-2024-3094
    name: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(10), default="Medium")
    cvss_v3_vector: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cvss_v3_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    cvss_v4_vector: Mapped[str | None] = mapped_column(String(300), nullable=True)
    cvss_v4_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    published_on: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_on: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    public_exploit: Mapped[bool] = mapped_column(Boolean, default=False)
    exploit_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    exploit_in_kit: Mapped[bool] = mapped_column(Boolean, default=False)
    exploit_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    exploit_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Listed in CISA's Known Exploited Vulnerabilities catalog (actively exploited).
    kev_listed: Mapped[bool] = mapped_column(Boolean, default=False)
    kev_date_added: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    kev_due_date: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    kev_ransomware: Mapped[bool] = mapped_column(Boolean, default=False)
    epss: Mapped[float | None] = mapped_column(Float, nullable=True)
    epss_percentile: Mapped[float | None] = mapped_column(Float, nullable=True)
    cwe_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Exposure points of one weakness of this vulnerability (docs/scoring.md), kept in step
    # with the facts above by remedium.scoring.engine.vulnerability_points.
    exposure_points: Mapped[float] = mapped_column(Float, default=0.0)


class IntelEvent(Base):
    """A dated change in the threat picture of one vulnerability (exceptions react to these)."""

    __tablename__ = "intel_event"
    __table_args__ = (
        Index("ix_intel_event_vulnerability_time", "vulnerability_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vulnerability_id: Mapped[str] = mapped_column(ForeignKey("vulnerability.id"))
    # kev_listed | public_exploit | exploit_verified | epss_increase | severity_increase | published
    kind: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(String(200), nullable=True)
    new_value: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str] = mapped_column(String(100), default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SecurityConfiguration(Base):
    """A security configuration check (``scid-…`` or an XCCDF rule id)."""

    __tablename__ = "security_configuration"
    __table_args__ = (
        CheckConstraint(
            "category IN ('Accounts','Application','Network','OS','SecurityControls')",
            name="category",
        ),
    )

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(20))
    sub_category: Mapped[str] = mapped_column(String(200), default="")
    # 1-10: what a failure of this check costs in Secure Score (Defender's severityScore).
    weight: Mapped[float] = mapped_column(Float, default=5.0)
    description: Mapped[str] = mapped_column(Text, default="")
    remediation: Mapped[str] = mapped_column(Text, default="")
    related_component: Mapped[str] = mapped_column(String(200), default="")
    os_platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    benchmarks: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AffectedPackage(Base):
    """One range of versions of one package (OSV) or CPE product (NVD) that a vulnerability
    affects; inventory is matched against these rows (docs/matching.md).

    ``match_key`` is the normalised join key: ``purl:<type>/<namespace>/<name>`` for OSV ranges,
    ``cpe:<vendor>:<product>`` for NVD configurations. Bounds follow OSV: ``introduced`` is the
    first affected version ("0" or "" = from the start), ``fixed`` the first unaffected one,
    ``last_affected`` the last affected one; ``version_range`` spells the range for people (and
    carries NVD's ``>start`` exclusive lower bound, which has no column of its own).
    """

    __tablename__ = "affected_package"
    __table_args__ = (
        Index("ix_affected_package_key", "match_key", "vulnerability_id"),
        Index("ix_affected_package_vulnerability", "vulnerability_id", "source"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vulnerability_id: Mapped[str] = mapped_column(ForeignKey("vulnerability.id"))
    match_key: Mapped[str] = mapped_column(String(400))
    # The OSV ecosystem ("npm", "PyPI", "Debian:12"), or "" for CPE-based (NVD) ranges.
    ecosystem: Mapped[str] = mapped_column(String(100), default="")
    package: Mapped[str] = mapped_column(String(300), default="")
    purl: Mapped[str] = mapped_column(String(400), default="")
    cpe: Mapped[str] = mapped_column(String(400), default="")
    introduced: Mapped[str] = mapped_column(String(100), default="")
    fixed: Mapped[str] = mapped_column(String(100), default="")
    last_affected: Mapped[str] = mapped_column(String(100), default="")
    version_range: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(40), default="")  # osv | nvd | cve5
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
