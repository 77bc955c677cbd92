"""API shapes of security recommendations: the read views, as the REST API returns them."""

from __future__ import annotations

from remedium.common.paging import Page
from remedium.intel.queries import VulnerabilityView
from remedium.recommendations.queries import ExposedDeviceView, RecommendationView

RecommendationPage = Page[RecommendationView]
ExposedDevicePage = Page[ExposedDeviceView]

__all__ = [
    "ExposedDevicePage",
    "ExposedDeviceView",
    "RecommendationPage",
    "RecommendationView",
    "VulnerabilityView",
]
