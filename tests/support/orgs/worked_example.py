"""Scenario "worked-example": the worked example of docs/scoring.md, built with the builder.

Group North: n1 (Normal, internet facing) and n2 (Low). Group South: s1 (High) and s2 (Normal,
last seen 60 days ago: inactive). Chrome has CVE-2026-0001 (CVSS 8.0, in KEV: 16 points) and
CVE-2026-0002 (CVSS 5.0, public exploit, EPSS 0.2: 9 points). Check scid-1 (OS, weight 6: 3 points)
fails on n1 and s1 and passes on n2; check scid-2 (Network, weight 4) passes on n1, n2 and s1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from remedium.inventory.models import Device, DeviceGroup
from tests.support.orgs.builder import (
    NOW,
    add_weakness,
    assess,
    install,
    make_configuration,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

CHROME = "va-_-google-_-chrome"
SCID1 = "sca-_-scid-1"


@dataclass
class Example:
    """The example's groups and devices."""

    north: DeviceGroup
    south: DeviceGroup
    n1: Device
    n2: Device
    s1: Device
    s2: Device


def build_example(session: Session) -> Example:
    """Create the example's inventory (no derived data)."""
    north, south = make_group(session, "North"), make_group(session, "South")
    n1 = make_device(session, north, "n1", internet_facing=True)
    n2 = make_device(session, north, "n2", value="Low")
    s1 = make_device(session, south, "s1", value="High")
    s2 = make_device(session, south, "s2", last_seen=NOW - timedelta(days=60))
    chrome = make_software(session, "google", "chrome")
    kev = make_vulnerability(session, "CVE-2026-0001", cvss=8.0, kev=True)
    exploited = make_vulnerability(
        session, "CVE-2026-0002", cvss=5.0, severity="Medium", exploit=True, epss=0.2
    )
    for device in (n1, n2, s1, s2):
        install(session, device, chrome, "119.0.6045.105")
        add_weakness(
            session, device, chrome, kev, installed_version="119.0.6045.105",
            fixed_version="120.0.6099.9",
        )  # fmt: skip
    for device in (n1, s1):
        add_weakness(
            session, device, chrome, exploited, installed_version="119.0.6045.105",
            fixed_version="120.0.6099.71",
        )  # fmt: skip
    scid1 = make_configuration(session, "scid-1", category="OS", weight=6.0)
    scid2 = make_configuration(session, "scid-2", category="Network", weight=4.0)
    assess(session, n1, scid1, compliant=False)
    assess(session, n2, scid1, compliant=True)
    assess(session, s1, scid1, compliant=False)
    for device in (n1, n2, s1):
        assess(session, device, scid2, compliant=True)
    return Example(north, south, n1, n2, s1, s2)
