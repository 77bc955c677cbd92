"""Scenario "exceptions": a small organisation for the exception tests, built from inventory
and a real recompute.

Groups Alpha and Beta, one device each with Chrome 1.0 carrying CVE-2026-1001 (High, no
exploit, not in KEV); a third group Gamma with three clean devices. Principals for each role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from remedium.auth.principal import Principal, Right, Scope
from remedium.inventory.models import Device, DeviceGroup, Software
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    NOW,
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

CHROME = "va-_-google-_-chrome"
CVE = "CVE-2026-1001"
ADMIN = Principal(user_id=1, name="ada", rights=frozenset({Right.ADMIN}))
ANALYST = Principal(user_id=2, name="ana", rights=frozenset({Right.VIEW, Right.EXCEPTIONS}))
REVIEWER = Principal(user_id=3, name="rex", rights=frozenset({Right.VIEW, Right.EXCEPTIONS}))
VIEWER = Principal(user_id=4, name="vic", rights=frozenset({Right.VIEW}))
LATER = NOW + timedelta(hours=1)


@dataclass
class Org:
    alpha: DeviceGroup
    beta: DeviceGroup
    gamma: DeviceGroup
    a1: Device
    b1: Device
    chrome: Software
    clean: list[Device]

    def scoped(self, *groups: DeviceGroup, name: str = "sam") -> Principal:
        """An analyst limited to ``groups``."""
        return Principal(
            user_id=10 + len(name),
            name=name,
            rights=frozenset({Right.VIEW, Right.EXCEPTIONS}),
            scope=Scope(frozenset(g.id for g in groups)),
        )


def build(session: Session) -> Org:
    """Build and recompute the organisation (flushes, never commits)."""
    alpha, beta, gamma = (
        make_group(session, "Alpha"),
        make_group(session, "Beta"),
        make_group(session, "Gamma"),
    )
    a1 = make_device(session, alpha, "ex-a1")
    b1 = make_device(session, beta, "ex-b1")
    chrome = make_software(session, "google", "chrome")
    cve = make_vulnerability(session, CVE, cvss=7.5, severity="High")
    for device in (a1, b1):
        install(session, device, chrome, "1.0")
        add_weakness(session, device, chrome, cve, installed_version="1.0")
    clean = [make_device(session, gamma, f"ex-g{n}") for n in range(3)]
    recompute(session, as_of=NOW)
    return Org(alpha, beta, gamma, a1, b1, chrome, clean)
