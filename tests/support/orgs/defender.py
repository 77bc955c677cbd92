"""Scenario "defender": the organisation the Defender API tests read (the ``org`` fixture of
tests/defender/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.db.session import session_factory
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    add_weakness,
    assess,
    install,
    make_configuration,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

GROUPS = ("GroupOne", "GroupTwo")
DEVICES = ("ws-01", "ws-02", "srv-01", "srv-02")


@dataclass
class Organisation:
    """What the tests built, by name."""

    groups: dict[str, DeviceGroup]
    devices: dict[str, Device]


def build_defender(session: Session) -> Organisation:
    """Two device groups, four devices, Chrome and Firefox with CVEs, one failing check.

    GroupOne: ws-01 (High value, internet facing, Chrome with CVE-A and CVE-B, failing scid-1),
    ws-02 (Chrome with CVE-B, Firefox with CVE-C, passing scid-1).
    GroupTwo: srv-01 (Linux, Chrome with CVE-A), srv-02 (Linux, nothing vulnerable).
    """
    now = utcnow()
    one, two = make_group(session, "GroupOne"), make_group(session, "GroupTwo")
    ws1 = make_device(session, one, "ws-01", value="High", internet_facing=True, last_seen=now)
    ws2 = make_device(session, one, "ws-02", last_seen=now, intune=True)
    srv1 = make_device(session, two, "srv-01", os_platform="Linux", last_seen=now)
    srv2 = make_device(session, two, "srv-02", os_platform="Linux", last_seen=now)
    ws1.tags = ["Finance", "VIP"]
    ws1.os_version = "10.0.22631"
    ws1.os_architecture = "x64"
    ws1.ip_address = "10.0.0.11"
    chrome = make_software(session, "google", "chrome")
    firefox = make_software(session, "mozilla", "firefox")
    cve_a = make_vulnerability(session, "CVE-2024-0001", cvss=9.8, severity="Critical", kev=True)
    cve_b = make_vulnerability(session, "CVE-2024-0002", cvss=6.5, severity="Medium", exploit=True)
    cve_c = make_vulnerability(session, "CVE-2024-0003", cvss=4.3, severity="Medium")
    for device in (ws1, ws2, srv1, srv2):
        install(session, device, chrome, "1.0")
    install(session, ws2, firefox, "1.0")
    add_weakness(session, ws1, chrome, cve_a)
    add_weakness(session, ws1, chrome, cve_b)
    add_weakness(session, ws2, chrome, cve_b)
    add_weakness(session, srv1, chrome, cve_a)
    add_weakness(session, ws2, firefox, cve_c)
    check = make_configuration(session, "scid-1", category="OS", weight=8.0)
    assess(session, ws1, check, compliant=False)
    assess(session, ws2, check, compliant=True)
    recompute(session, as_of=now)
    session.commit()
    return Organisation(
        groups={"GroupOne": one, "GroupTwo": two},
        devices={d.name: d for d in (ws1, ws2, srv1, srv2)},
    )


def build_defender_org(engine: Engine) -> None:
    """Build and commit the organisation on ``engine`` (the scenario's template)."""
    with session_factory(engine)() as session:
        build_defender(session)


def load_defender(session: Session) -> Organisation:
    """The organisation as :func:`build_defender` returned it, read back from a copy."""
    groups = session.scalars(select(DeviceGroup).where(DeviceGroup.name.in_(GROUPS)))
    devices = session.scalars(select(Device).where(Device.name.in_(DEVICES)))
    return Organisation(groups={g.name: g for g in groups}, devices={d.name: d for d in devices})
