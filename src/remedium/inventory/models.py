"""Inventory tables: device groups, devices, software, installed versions, weaknesses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime

DEVICE_VALUES = ("Low", "Normal", "High")
OS_PLATFORMS = (
    "Windows11",
    "Windows10",
    "WindowsServer2022",
    "WindowsServer2019",
    "WindowsServer2016",
    "macOS",
    "Linux",
    "iOS",
    "Android",
    "Other",
)


class DeviceGroup(Base):
    """A named set of devices: the unit of scope for remediation, exceptions and access rights."""

    __tablename__ = "device_group"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Membership rules (docs/device-groups.md): a group with rules has a rank (1 = matched
    # first); a group without rules (named by imports) has none and keeps what imports put in it.
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")


class Device(Base):
    """A machine or workload, with its last computed exposure."""

    __tablename__ = "device"
    __table_args__ = (
        CheckConstraint("device_value IN ('Low','Normal','High')", name="device_value"),
        Index("ix_device_group_seen", "device_group_id", "last_seen"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Defender's machine id: 40 hex characters, stable for the device's identity key.
    machine_id: Mapped[str] = mapped_column(String(40), unique=True)
    # How the device was recognised across sources (see docs/imports.md): e.g. "host:web-01".
    identity_key: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    device_group_id: Mapped[int] = mapped_column(ForeignKey("device_group.id"), index=True)
    # The group imports gave the device, used when no group's rules match (docs/device-groups.md).
    assigned_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_group.id", ondelete="SET NULL"), nullable=True
    )
    os_platform: Mapped[str] = mapped_column(String(40), default="Other")
    os_version: Mapped[str] = mapped_column(String(100), default="")
    os_architecture: Mapped[str] = mapped_column(String(20), default="")
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    device_value: Mapped[str] = mapped_column(String(10), default="Normal")
    is_intune_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_aad_joined: Mapped[bool] = mapped_column(Boolean, default=False)
    aad_device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    internet_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Materialised by the scoring service; see docs/scoring.md.
    exposure_points: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_score: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_level: Mapped[str] = mapped_column(String(10), default="None")
    secure_passed_weight: Mapped[float] = mapped_column(Float, default=0.0)
    secure_total_weight: Mapped[float] = mapped_column(Float, default=0.0)
    # The same figures after exceptions (docs/scoring.md, "After exceptions"): points of weaknesses
    # covered by in-effect Mitigation-like or Hybrid exceptions left out, covered checks passing.
    exposure_points_after: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_score_after: Mapped[float] = mapped_column(Float, default=0.0)
    secure_passed_weight_after: Mapped[float] = mapped_column(Float, default=0.0)


class Software(Base):
    """A software product (vendor + product), named the way Defender names it."""

    __tablename__ = "software"
    __table_args__ = (UniqueConstraint("vendor", "product"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(200))  # normalised, e.g. "google"
    product: Mapped[str] = mapped_column(String(200))  # normalised, e.g. "chrome"
    display_name: Mapped[str] = mapped_column(String(300))  # e.g. "Chrome"
    display_vendor: Mapped[str] = mapped_column(String(300), default="")  # e.g. "Google"
    # Defender's product id "google-_-chrome"; the software recommendation is "va-_-" + this.
    product_key: Mapped[str] = mapped_column(String(420), unique=True)
    purl_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    purl_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    cpe_prefix: Mapped[str | None] = mapped_column(String(300), nullable=True)
    is_operating_system: Mapped[bool] = mapped_column(Boolean, default=False)
    end_of_support_on: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Versions the vendor no longer supports (the "EOS versions" tag).
    end_of_support_versions: Mapped[list[str]] = mapped_column(JSON, default=list)


class InstalledSoftware(Base):
    """One version of a product installed on one device."""

    __tablename__ = "installed_software"
    __table_args__ = (Index("ix_installed_software_software", "software_id", "device_id"),)

    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    software_id: Mapped[int] = mapped_column(ForeignKey("software.id"), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Weakness(Base):
    """One vulnerability present on one device through one installed product.

    ``fixed_at`` is set when a later scan of the device no longer reports it.
    """

    __tablename__ = "weakness"
    __table_args__ = (
        UniqueConstraint("device_id", "software_id", "vulnerability_id"),
        Index("ix_weakness_software_open", "software_id", "fixed_at"),
        Index("ix_weakness_vulnerability", "vulnerability_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(BigId, ForeignKey("device.id", ondelete="CASCADE"))
    software_id: Mapped[int] = mapped_column(ForeignKey("software.id"))
    vulnerability_id: Mapped[str] = mapped_column(ForeignKey("vulnerability.id"))
    installed_version: Mapped[str] = mapped_column(String(100), default="")
    fixed_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str] = mapped_column(String(100), default="")
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    fixed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Where the scanner found it (a lock file, a package's path in an image), when it says.
    path: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ConfigurationAssessment(Base):
    """The latest result of one security configuration check on one device.

    A failed (non-compliant) assessment is a configuration weakness.
    """

    __tablename__ = "configuration_assessment"
    __table_args__ = (Index("ix_configuration_assessment_config", "configuration_id", "device_id"),)

    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    configuration_id: Mapped[str] = mapped_column(
        ForeignKey("security_configuration.id"), primary_key=True
    )
    is_compliant: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(100), default="")
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When the check last turned from failing to passing (None while failing or never failed).
    fixed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


def device_tags(device: Device) -> list[str]:
    """The device's tags, with the derived ones Defender shows."""
    tags: list[Any] = list(device.tags or [])
    if device.internet_facing and "internetFacing" not in tags:
        tags.append("internetFacing")
    return [str(t) for t in tags]
