"""API shapes of vulnerabilities: the read views, as the native REST API returns them."""

from __future__ import annotations

from remedium.common.paging import Page
from remedium.intel.queries import VulnerabilityView, VulnerableDeviceView, VulnerableSoftwareView

VulnerabilityPage = Page[VulnerabilityView]
VulnerableDevicePage = Page[VulnerableDeviceView]

__all__ = [
    "VulnerabilityPage",
    "VulnerabilityView",
    "VulnerableDevicePage",
    "VulnerableDeviceView",
    "VulnerableSoftwareView",
]
