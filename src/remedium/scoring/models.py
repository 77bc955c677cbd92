"""Per-group score sums (current and daily history).

Scores of any set of device groups are computed from these sums with the formulas in
docs/scoring.md, so a user limited to some groups sees exact figures for those groups.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base


class GroupScoreStat(Base):
    """Exposure sums over the active devices of one device group."""

    __tablename__ = "group_score_stat"

    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )
    active_devices: Mapped[int] = mapped_column(Integer, default=0)
    high_value_devices: Mapped[int] = mapped_column(Integer, default=0)
    # Sum of the weights of active Low/Normal devices (Normal 1, Low 0.75).
    weight_low_normal: Mapped[float] = mapped_column(Float, default=0.0)
    # Sum over active Low/Normal devices of weight x exposure score.
    exposure_weighted: Mapped[float] = mapped_column(Float, default=0.0)
    # Sum over active High-value devices of exposure score.
    exposure_high: Mapped[float] = mapped_column(Float, default=0.0)
    # The same two sums over the devices' after-exceptions scores (weights do not change).
    exposure_weighted_after: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_high_after: Mapped[float] = mapped_column(Float, default=0.0)
    # Device exposure distribution (active devices by exposure level).
    devices_none: Mapped[int] = mapped_column(Integer, default=0)
    devices_low: Mapped[int] = mapped_column(Integer, default=0)
    devices_medium: Mapped[int] = mapped_column(Integer, default=0)
    devices_high: Mapped[int] = mapped_column(Integer, default=0)


class GroupSecureStat(Base):
    """Secure Score sums over the active devices of one device group, by category."""

    __tablename__ = "group_secure_stat"

    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    passed_weight: Mapped[float] = mapped_column(Float, default=0.0)
    total_weight: Mapped[float] = mapped_column(Float, default=0.0)
    # Passed weight counting failing checks covered by Mitigation-like/Hybrid exceptions.
    passed_weight_after: Mapped[float] = mapped_column(Float, default=0.0)


class ScoreSnapshot(Base):
    """One day's exposure sums for one device group (the history behind the trend chart)."""

    __tablename__ = "score_snapshot"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )
    active_devices: Mapped[int] = mapped_column(Integer, default=0)
    high_value_devices: Mapped[int] = mapped_column(Integer, default=0)
    weight_low_normal: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_weighted: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_high: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_weighted_after: Mapped[float] = mapped_column(Float, default=0.0)
    exposure_high_after: Mapped[float] = mapped_column(Float, default=0.0)


class SecureSnapshot(Base):
    """One day's Secure Score sums for one device group and category."""

    __tablename__ = "secure_snapshot"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    device_group_id: Mapped[int] = mapped_column(
        ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    passed_weight: Mapped[float] = mapped_column(Float, default=0.0)
    total_weight: Mapped[float] = mapped_column(Float, default=0.0)
    # Passed weight counting failing checks covered by Mitigation-like/Hybrid exceptions.
    passed_weight_after: Mapped[float] = mapped_column(Float, default=0.0)
