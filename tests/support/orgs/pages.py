"""Scenario "pages": a small organisation for the page tests: three device groups, software with
CVEs, configuration checks, recommendations from the real recompute, and 30 days of score history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from remedium.db.session import transaction
from remedium.inventory.models import Weakness
from remedium.recommendations.service import recompute
from remedium.scoring.service import snapshot_scores
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


@dataclass(frozen=True)
class Org:
    """Ids the tests navigate to."""

    servers: int
    workstations: int
    finance: int
    server_device: int
    finance_device: int
    chrome: int


def build_pages(engine: Engine) -> Org:
    """Build the organisation and commit it; the history shows exposure falling over time."""
    now = datetime.now(UTC)
    with transaction(engine) as session:
        servers = make_group(session, "Servers")
        workstations = make_group(session, "Workstations")
        finance = make_group(session, "Finance")
        chrome = make_software(session, "google", "chrome", display_name="Chrome")
        openssl = make_software(session, "openssl", "openssl", display_name="OpenSSL")
        reader = make_software(session, "adobe", "acrobat_reader", display_name="Acrobat Reader")
        zip7 = make_software(session, "7-zip", "7-zip", display_name="7-Zip")
        chrome_kev = make_vulnerability(
            session, "CVE-2024-4671", cvss=9.6, severity="Critical", kev=True, epss=0.41
        )
        chrome_other = make_vulnerability(session, "CVE-2024-5274", cvss=8.8, epss=0.05)
        openssl_cve = make_vulnerability(
            session, "CVE-2022-3602", cvss=7.5, exploit=True, epss=0.12
        )
        reader_cve = make_vulnerability(
            session, "CVE-2023-21608", cvss=5.5, severity="Medium", epss=0.02
        )
        zip_cve = make_vulnerability(session, "CVE-2024-11477", cvss=7.8, epss=0.01)
        checks = [
            make_configuration(session, "scid-2000", category="OS", weight=8),
            make_configuration(session, "scid-3000", category="Network", weight=5),
            make_configuration(session, "scid-4000", category="Accounts", weight=6),
            make_configuration(session, "scid-5000", category="SecurityControls", weight=9),
            make_configuration(session, "scid-6000", category="Application", weight=3),
        ]
        devices = []
        for i in range(4):
            device = make_device(
                session,
                servers,
                f"srv-{i:02d}",
                value="High" if i == 0 else "Normal",
                internet_facing=i == 0,
                os_platform="WindowsServer2022",
                last_seen=now - timedelta(hours=2),
            )
            install(session, device, openssl, "3.0.6")
            add_weakness(session, device, openssl, openssl_cve, installed_version="3.0.6")
            install(session, device, chrome, "120.0")
            add_weakness(session, device, chrome, chrome_kev, installed_version="120.0")
            add_weakness(session, device, chrome, chrome_other, installed_version="120.0")
            devices.append(device)
        for i in range(6):
            device = make_device(
                session, workstations, f"ws-{i:02d}", last_seen=now - timedelta(hours=5)
            )
            install(session, device, reader, "2022.1")
            add_weakness(session, device, reader, reader_cve, installed_version="2022.1")
            if i < 3:
                install(session, device, chrome, "124.0")
                add_weakness(session, device, chrome, chrome_other, installed_version="124.0")
            devices.append(device)
        for i in range(2):
            device = make_device(
                session, finance, f"fin-{i:02d}", value="Low", last_seen=now - timedelta(hours=1)
            )
            install(session, device, zip7, "23.01")
            add_weakness(session, device, zip7, zip_cve, installed_version="23.01")
            devices.append(device)
        for n, device in enumerate(devices):
            for k, check in enumerate(checks):
                assess(session, device, check, compliant=(n + k) % 3 != 0)
        # The first weeks also had an OpenSSL hole on the workstations, fixed since.
        extra = [
            add_weakness(session, d, openssl, openssl_cve, installed_version="3.0.1")
            for d in devices[4:10]
        ]
        recompute(session)
        for days_ago in range(29, 14, -1):
            snapshot_scores(session, (now - timedelta(days=days_ago)).date())
        session.execute(
            update(Weakness)
            .values(fixed_at=now - timedelta(days=14))
            .where(Weakness.id.in_([w.id for w in extra]))
        )
        recompute(session)
        for days_ago in range(14, -1, -1):
            snapshot_scores(session, (now - timedelta(days=days_ago)).date())
        return Org(
            servers=servers.id,
            workstations=workstations.id,
            finance=finance.id,
            server_device=devices[0].id,
            finance_device=devices[-1].id,
            chrome=chrome.id,
        )
