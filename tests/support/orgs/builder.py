"""The test-organisation builder: inventory for tests in the fewest words (flush, never commit)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from remedium.intel.models import SecurityConfiguration, Vulnerability
from remedium.inventory.models import (
    ConfigurationAssessment,
    Device,
    DeviceGroup,
    InstalledSoftware,
    Software,
    Weakness,
)
from remedium.scoring.engine import vulnerability_points

_seq = itertools.count(1)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_group(session: Session, name: str | None = None) -> DeviceGroup:
    group = DeviceGroup(name=name or f"group-{next(_seq)}")
    session.add(group)
    session.flush()
    return group


def make_device(
    session: Session,
    group: DeviceGroup,
    name: str | None = None,
    *,
    value: str = "Normal",
    internet_facing: bool = False,
    os_platform: str = "Windows11",
    last_seen: datetime | None = None,
    intune: bool = False,
) -> Device:
    name = name or f"device-{next(_seq)}"
    device = Device(
        machine_id=hashlib.sha1(name.encode()).hexdigest(),
        identity_key=f"host:{name}",
        name=name,
        device_group_id=group.id,
        os_platform=os_platform,
        device_value=value,
        internet_facing=internet_facing,
        is_intune_managed=intune,
        is_aad_joined=intune,
        first_seen=NOW - timedelta(days=60),
        last_seen=last_seen or NOW,
        tags=[],
    )
    session.add(device)
    session.flush()
    return device


def make_software(
    session: Session, vendor: str, product: str, *, display_name: str | None = None
) -> Software:
    software = Software(
        vendor=vendor,
        product=product,
        display_name=display_name or product.replace("_", " ").title(),
        display_vendor=vendor.title(),
        product_key=f"{vendor}-_-{product}",
    )
    session.add(software)
    session.flush()
    return software


def make_vulnerability(
    session: Session,
    cve: str,
    *,
    cvss: float = 7.5,
    severity: str = "High",
    kev: bool = False,
    exploit: bool = False,
    epss: float | None = None,
) -> Vulnerability:
    vulnerability = Vulnerability(
        id=cve,
        name=cve,
        severity=severity,
        cvss_v3_score=cvss,
        kev_listed=kev,
        public_exploit=exploit,
        epss=epss,
        exposure_points=vulnerability_points(
            cvss_score=cvss, severity=severity, kev_listed=kev, public_exploit=exploit, epss=epss
        ),
    )
    session.add(vulnerability)
    session.flush()
    return vulnerability


def install(session: Session, device: Device, software: Software, version: str) -> None:
    session.add(
        InstalledSoftware(
            device_id=device.id,
            software_id=software.id,
            version=version,
            first_seen=NOW,
            last_seen=NOW,
        )
    )
    session.flush()


def add_weakness(
    session: Session,
    device: Device,
    software: Software,
    vulnerability: Vulnerability,
    *,
    installed_version: str = "1.0",
    fixed_version: str | None = "2.0",
    fixed_at: datetime | None = None,
) -> Weakness:
    weakness = Weakness(
        device_id=device.id,
        software_id=software.id,
        vulnerability_id=vulnerability.id,
        installed_version=installed_version,
        fixed_version=fixed_version,
        first_seen=NOW,
        last_seen=NOW,
        fixed_at=fixed_at,
    )
    session.add(weakness)
    session.flush()
    return weakness


def make_configuration(
    session: Session, scid: str, *, category: str = "OS", weight: float = 5.0
) -> SecurityConfiguration:
    configuration = SecurityConfiguration(
        id=scid, name=f"Check {scid}", category=category, weight=weight
    )
    session.add(configuration)
    session.flush()
    return configuration


def assess(
    session: Session, device: Device, configuration: SecurityConfiguration, *, compliant: bool
) -> None:
    session.add(
        ConfigurationAssessment(
            device_id=device.id,
            configuration_id=configuration.id,
            is_compliant=compliant,
            first_seen=NOW,
            last_seen=NOW,
        )
    )
    session.flush()
