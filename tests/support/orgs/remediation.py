"""Scenario "remediation": a small organisation with one software recommendation across two
device groups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from remedium.connectors.models import ConnectorConfig
from remedium.db.session import transaction
from remedium.inventory.models import Weakness
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

RECOMMENDATION = "va-_-google-_-chrome"


@dataclass
class Org:
    """Ids of what :func:`build_org` made."""

    group_a: int
    group_b: int
    devices_a: list[int]
    devices_b: list[int]


def build_org(engine: Engine, *, devices_per_group: int = 2) -> Org:
    """Groups A and B, each with exposed Chrome devices; a switched-on connection "tickets"."""
    now = datetime.now(UTC)
    with transaction(engine) as session:
        chrome = make_software(session, "google", "chrome")
        cve1 = make_vulnerability(session, "CVE-2026-0001", cvss=9.8, severity="Critical")
        cve2 = make_vulnerability(session, "CVE-2026-0002", cvss=5.0, severity="Medium")
        ids: dict[str, list[int]] = {}
        groups = {}
        for label in ("A", "B"):
            group = make_group(session, f"group-{label}")
            groups[label] = group.id
            ids[label] = []
            for n in range(devices_per_group):
                device = make_device(
                    session, group, f"{label.lower()}-{n}", last_seen=now, intune=n == 0
                )
                install(session, device, chrome, "1.0")
                add_weakness(session, device, chrome, cve1)
                if n == 0:
                    add_weakness(session, device, chrome, cve2)
                ids[label].append(device.id)
        session.add(ConnectorConfig(name="tickets", kind="jira", enabled=True, config={}))
        session.add(ConnectorConfig(name="off", kind="jira", enabled=False, config={}))
        recompute(session)
    return Org(groups["A"], groups["B"], ids["A"], ids["B"])


def fix_devices(session: Session, device_ids: list[int]) -> None:
    """A later scan no longer shows the devices' weaknesses: close them and recompute."""
    session.execute(
        update(Weakness)
        .where(Weakness.device_id.in_(device_ids))
        .values(fixed_at=datetime.now(UTC))
    )
    recompute(session, device_ids=device_ids)
