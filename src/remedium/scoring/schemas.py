"""API shapes of the scores."""

from __future__ import annotations

from pydantic import BaseModel

from remedium.scoring.queries import (
    CategoryScoreView,
    DistributionView,
    ExposureScoreView,
    GroupExposureView,
    HistoryPointView,
    SecureScoreView,
)


class ScoresOut(BaseModel):
    """Exposure score and Secure Score for devices of a scope, with the breakdowns."""

    exposure: ExposureScoreView
    secure: SecureScoreView
    distribution: DistributionView
    by_group: list[GroupExposureView]


class HistoryOut(BaseModel):
    """The daily score trend of a scope, oldest day first."""

    days: int
    points: list[HistoryPointView]


__all__ = [
    "CategoryScoreView",
    "DistributionView",
    "ExposureScoreView",
    "GroupExposureView",
    "HistoryOut",
    "HistoryPointView",
    "ScoresOut",
    "SecureScoreView",
]
