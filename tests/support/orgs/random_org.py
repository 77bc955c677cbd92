"""Scenario "random": a seeded random organisation with every kind of device, for property-style
checks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from remedium.intel.models import SecurityConfiguration, Vulnerability
from remedium.inventory.models import Device, Software
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

CATEGORIES = ("Accounts", "Application", "Network", "OS", "SecurityControls")


@dataclass
class RandomOrg:
    """What was built, so that tests can change it."""

    rng: random.Random
    group_ids: list[int]
    devices: list[Device]
    software: list[Software]
    vulnerabilities: dict[int, list[Vulnerability]] = field(default_factory=dict)
    configurations: list[SecurityConfiguration] = field(default_factory=list)


def build_random_org(session: Session, *, seed: int, devices: int) -> RandomOrg:
    """Groups of mixed devices (High/Low/Normal, internet facing, inactive) with software
    weaknesses and configuration results."""
    rng = random.Random(seed)
    groups = [make_group(session, f"rand-{seed}-{i}") for i in range(4)]
    products = [make_software(session, f"vendor{i}", f"product{i}") for i in range(6)]
    org = RandomOrg(rng, [g.id for g in groups], [], products)
    for index, software in enumerate(products):
        org.vulnerabilities[software.id] = [
            make_vulnerability(
                session,
                f"CVE-2026-{seed:02d}{index:02d}{n:02d}",
                cvss=round(rng.uniform(2.0, 10.0), 1),
                kev=rng.random() < 0.2,
                exploit=rng.random() < 0.4,
                epss=rng.choice([None, 0.01, 0.3, 0.9]),
            )
            for n in range(4)
        ]
    org.configurations = [
        make_configuration(
            session,
            f"scid-{seed}-{i}",
            category=CATEGORIES[i % 5],
            weight=float(rng.randint(1, 10)),
        )
        for i in range(6)
    ]
    for n in range(devices):
        device = make_device(
            session,
            rng.choice(groups),
            f"rand-{seed}-{n}",
            value=rng.choice(["Low", "Normal", "Normal", "High"]),
            internet_facing=rng.random() < 0.3,
            last_seen=NOW - timedelta(days=45) if rng.random() < 0.1 else NOW,
        )
        org.devices.append(device)
        for software in rng.sample(products, 3):
            install(session, device, software, "1.0")
            for vulnerability in org.vulnerabilities[software.id]:
                if rng.random() < 0.5:
                    add_weakness(
                        session,
                        device,
                        software,
                        vulnerability,
                        fixed_version=rng.choice(["2.0", "2.10", "2.9.1", None, "2.0"]),
                    )
        for configuration in org.configurations:
            if rng.random() < 0.8:
                assess(session, device, configuration, compliant=rng.random() < 0.6)
    return org
