"""API shapes of the inventory: the read views, as the native REST API returns them."""

from __future__ import annotations

from remedium.common.paging import Page
from remedium.inventory.queries import (
    DeviceGroupView,
    DeviceRecommendationView,
    DeviceSoftwareView,
    DeviceView,
    DeviceWeaknessView,
)
from remedium.inventory.software_queries import SoftwareVersionView, SoftwareView

DevicePage = Page[DeviceView]
SoftwarePage = Page[SoftwareView]

__all__ = [
    "DeviceGroupView",
    "DevicePage",
    "DeviceRecommendationView",
    "DeviceSoftwareView",
    "DeviceView",
    "DeviceWeaknessView",
    "SoftwarePage",
    "SoftwareVersionView",
    "SoftwareView",
]
