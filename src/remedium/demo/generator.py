"""A realistic organisation, replayed through the real import pipeline over 30 days.

Everything follows from the seed: groups, devices, installed versions, failing configuration
checks, the days patches roll out, devices join and new CVEs or KEV listings appear. Each day is
written as a native-format report and imported with ``importers.service.import_report``, then
``scoring.service.snapshot_scores`` records the day, so the history is made the way a real one is.

Day -30 and today are full scans of every device; the days between carry only the devices that
changed that day (a complete scan of each of them), which keeps the build fast.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.demo.catalog import (
    APPLIANCES,
    BRANCHES,
    CATALOG,
    GROUPS,
    affected,
    display_of,
    load_data,
    versions_of,
)
from remedium.demo.history import DemoHistory
from remedium.importers.models import ImportRun
from remedium.importers.service import import_report
from remedium.scoring.service import snapshot_scores

DEMO_SOURCE = "remedium-demo"
DAYS = 30
SCAN_HOUR = 6


@dataclass(slots=True)
class DemoSummary:
    """What the demo build made, and how long it took."""

    devices: int = 0
    device_groups: int = 0
    vulnerabilities: int = 0
    imports: int = 0
    findings_added: int = 0
    findings_fixed: int = 0
    seconds: float = 0.0
    per_day: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DemoDevice:
    """One generated device and its evolving state."""

    name: str
    group: str
    kind: str
    os_platform: str
    os_version: str
    value: str
    intune: bool
    internet_facing: bool
    ip: str
    join_day: int
    software: dict[str, int]  # product key -> index into its version list
    failing: set[str]
    platform_family: str


def _os_for(kind: str, rng: random.Random) -> tuple[str, str, str]:  # noqa: PLR0911 - one return per OS share
    """(os_platform, os_version, family) for a device of ``kind``."""
    roll = rng.random()
    if kind == "engineering":
        if roll < 0.5:
            return "macOS", rng.choice(("14.7.1", "15.1.1")), "mac"
        if roll < 0.8:
            return "Windows11", "23H2", "win_eng"
        return "Linux", rng.choice(("Ubuntu 22.04", "Ubuntu 24.04", "Fedora 40")), "linux_desktop"
    if kind in ("workstation", "branch", "finance"):
        if roll < (0.7 if kind != "branch" else 0.45):
            return "Windows11", rng.choice(("22H2", "23H2", "24H2")), "win"
        return "Windows10", "22H2", "win"
    if kind == "server":
        if roll < 0.25:
            return "WindowsServer2022", "21H2", "winserver"
        if roll < 0.45:
            return "WindowsServer2019", "1809", "winserver"
        if roll < 0.55:
            return "WindowsServer2016", "1607", "winserver"
        return (
            "Linux",
            rng.choice(("RHEL 8.9", "RHEL 9.4", "Ubuntu 20.04", "Ubuntu 22.04")),
            "linux_server",
        )
    return "Linux", rng.choice(("Ubuntu 22.04", "Debian 12", "RHEL 9.4")), "dmz"


def _checks_for(family: str) -> list[dict[str, Any]]:
    platform = {"mac": "macOS", "linux_desktop": "Linux", "linux_server": "Linux", "dmz": "Linux"}
    wanted = platform.get(family, "Windows11")
    return [
        c for c in load_data("configurations.json")["configurations"] if wanted in c["os_platforms"]
    ]


def generate_devices(count: int, rng: random.Random) -> list[DemoDevice]:
    """The organisation's devices, in a fixed order."""
    devices: list[DemoDevice] = []
    serial = 0
    for group, share, kind in GROUPS:
        size = max(1, round(count * share))
        for number in range(1, size + 1):
            serial += 1
            os_platform, os_version, family = _os_for(kind, rng)
            if kind == "workstation":
                name = f"HQ-WS-{number:04d}"
            elif kind == "branch":
                name = f"{BRANCHES[number % len(BRANCHES)]}-WS-{number:04d}"
            elif kind == "engineering":
                name = f"ENG-{'MBP' if family == 'mac' else 'LT'}-{number:04d}"
            elif kind == "finance":
                name = f"FIN-WS-{number:03d}"
            elif kind == "server":
                prefix = "dc-app" if family == "linux_server" else "DC-WIN"
                name = f"{prefix}-{number:03d}.corp.contoso.example"
            else:
                name = f"dmz-web-{number:02d}.contoso.example"
            value = "Normal"
            if kind == "finance" or (kind == "server" and rng.random() < 0.2):
                value = "High"
            elif kind == "branch" and rng.random() < 0.3:
                value = "Low"
            software: dict[str, int] = {}
            for key, (_, _, versions, shares) in CATALOG.items():
                if rng.random() < shares.get(family, 0.0):
                    latest = len(versions) - 1
                    # Most installs are current; the rest lag behind by a random amount.
                    software[key] = latest if rng.random() < 0.55 else rng.randrange(0, latest + 1)
            checks = _checks_for(family)
            failing = {c["id"] for c in checks if rng.random() < 0.12 + 0.02 * (10 - c["weight"])}
            join_day = -DAYS if rng.random() > 0.05 else -rng.randrange(0, DAYS)
            devices.append(
                DemoDevice(
                    name=name,
                    group=group,
                    kind=kind,
                    os_platform=os_platform,
                    os_version=os_version,
                    value=value,
                    intune=family in ("win", "win_eng", "mac"),
                    internet_facing=kind == "dmz",
                    ip=f"10.{10 + GROUPS.index((group, share, kind))}.{serial // 250}.{serial % 250 + 2}",  # noqa: E501
                    join_day=join_day,
                    software=software,
                    failing=failing,
                    platform_family=family,
                )
            )
    for name, key, _vendor, product, versions in APPLIANCES:
        serial += 1
        devices.append(
            DemoDevice(
                name=f"{name}.contoso.example",
                group="DMZ web servers",
                kind="appliance",
                os_platform="Other",
                os_version=f"{product} {versions[0]}",
                value="High",
                intune=False,
                internet_facing=True,
                ip=f"203.0.113.{serial % 250 + 2}",
                join_day=-DAYS,
                software={key: 0},
                failing=set(),
                platform_family="appliance",
            )
        )
    return devices


@dataclass(slots=True)
class Timeline:
    """When intelligence changes during the 30 days (all drawn from the seed)."""

    appears: dict[str, int]  # CVE -> first day it is known (others: from the start)
    kev_from: dict[str, int]  # CVE -> day it is listed in KEV (others: as the data says)


def _timeline(rng: random.Random) -> Timeline:
    entries = load_data("vulnerabilities.json")["vulnerabilities"]
    ids = sorted({e["id"] for e in entries})
    late = rng.sample(ids, k=min(8, len(ids)))
    kev_ids = sorted({e["id"] for e in entries if e.get("kev_date_added")} - set(late))
    newly_kev = rng.sample(kev_ids, k=min(3, len(kev_ids)))
    return Timeline(
        appears={cve: -rng.randrange(1, DAYS - 5) for cve in late},
        kev_from={cve: -rng.randrange(1, DAYS - 5) for cve in newly_kev},
    )


def _vulnerability_facts(day: int, timeline: Timeline) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for entry in load_data("vulnerabilities.json")["vulnerabilities"]:
        cve = entry["id"]
        if timeline.appears.get(cve, -DAYS) > day or cve in seen:
            continue
        kev = bool(entry.get("kev_date_added")) and timeline.kev_from.get(cve, -DAYS) <= day
        facts: dict[str, Any] = {
            "id": cve,
            "description": entry["description"],
            "kev_listed": kev,
            "public_exploit": bool(entry.get("public_exploit")),
            "epss": entry["epss"],
            "published_on": entry["published_on"],
        }
        if entry.get("cvss_v3_vector"):
            facts["cvss_v3_vector"] = entry["cvss_v3_vector"]
        if entry.get("severity"):
            facts["severity"] = entry["severity"]
        if kev:
            facts["kev_date_added"] = entry["kev_date_added"]
            facts["kev_ransomware"] = bool(entry.get("kev_ransomware"))
        seen[cve] = facts
    return list(seen.values())


def _known_by_product(day: int, timeline: Timeline) -> dict[str, list[dict[str, Any]]]:
    """The vulnerabilities known on ``day``, by product key (once a day, not once a device)."""
    by_product: dict[str, list[dict[str, Any]]] = {}
    for entry in load_data("vulnerabilities.json")["vulnerabilities"]:
        if timeline.appears.get(entry["id"], -DAYS) <= day:
            by_product.setdefault(entry["product_key"], []).append(entry)
    return by_product


def _device_document(
    device: DemoDevice, by_product: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    software = []
    findings = []
    for key, index in sorted(device.software.items()):
        vendor, product = key.split("-_-", 1)
        display_vendor, display_name = display_of(key)
        version = versions_of(key)[index]
        software.append(
            {
                "vendor": vendor,
                "product": product,
                "version": version,
                "display_vendor": display_vendor,
                "display_name": display_name,
            }
        )
        for entry in by_product.get(key, ()):
            fixed = affected(version, entry["ranges"])
            if fixed is not None:
                findings.append(
                    {
                        "cve": entry["id"],
                        "vendor": vendor,
                        "product": product,
                        "installed_version": version,
                        "fixed_version": fixed,
                    }
                )
    checks = _checks_for(device.platform_family) if device.kind != "appliance" else []
    return {
        "name": device.name,
        "ip_address": device.ip,
        "os_platform": device.os_platform,
        "os_version": device.os_version,
        "device_group": device.group,
        "device_value": device.value,
        "is_intune_managed": device.intune,
        "is_aad_joined": device.intune,
        "internet_facing": device.internet_facing,
        "tags": ["demo", device.kind],
        "software": software,
        "findings": findings,
        "configuration": [
            {"id": c["id"], "compliant": c["id"] not in device.failing} for c in checks
        ],
    }


def holds_demo(session: Session) -> bool:
    """True when the database already holds a demo build."""
    return (
        session.scalar(select(ImportRun.id).where(ImportRun.source == DEMO_SOURCE).limit(1))
        is not None
    )


def build_demo(
    session_or_engine: Session | Engine,
    *,
    devices: int = 2000,
    seed: int = 20261120,
    today: date | None = None,
) -> DemoSummary:
    """Build the demo organisation of about ``devices`` devices, deterministically from ``seed``.

    With an engine, each day is committed as it is imported; with a session, the caller commits.
    """

    started = time.perf_counter()
    rng = random.Random(seed)
    fleet = generate_devices(devices, rng)
    timeline = _timeline(rng)
    configurations = _configurations()
    today = today or datetime.now(UTC).date()
    summary = DemoSummary()
    history = DemoHistory(
        today=datetime.combine(today, datetime.min.time(), UTC),
        appears=timeline.appears,
        kev_from=timeline.kev_from,
        names={device.name: index for index, device in enumerate(fleet)},
    )
    with tempfile.TemporaryDirectory(prefix="remedium-demo-") as folder:
        for day in range(-DAYS, 1):
            changed = _advance(fleet, day, rng) if day > -DAYS else set(range(len(fleet)))
            changed |= history.before_import(day, fleet, lambda key: len(versions_of(key)) - 1)
            if day == 0:
                changed = set(range(len(fleet)))
            news = {c for c, d in timeline.appears.items() if d == day}
            news |= {c for c, d in timeline.kev_from.items() if d == day}
            if news:
                changed |= _devices_with(fleet, news)
            scanned = datetime.combine(today + timedelta(days=day), datetime.min.time(), UTC)
            scanned += timedelta(hours=SCAN_HOUR)
            by_product = _known_by_product(day, timeline)
            document = {
                "schema": "remedium-inventory/1",
                "source": DEMO_SOURCE,
                "scanned_at": scanned.isoformat(),
                "complete": True,
                "vulnerabilities": _vulnerability_facts(day, timeline),
                "configurations": configurations,
                "devices": [
                    _device_document(fleet[i], by_product)
                    for i in sorted(changed)
                    if fleet[i].join_day <= day
                ],
            }
            path = Path(folder) / f"day{day + DAYS:02d}.json"
            path.write_text(json.dumps(document), "utf-8")
            result = _import_day(session_or_engine, path, scanned, import_report, snapshot_scores)
            history.after_import(session_or_engine, day)
            summary.imports += 1
            summary.findings_added += result["findings_added"]
            summary.findings_fixed += result["findings_fixed"]
            summary.per_day.append({"day": scanned.date().isoformat(), **result})
    summary.devices = sum(1 for d in fleet if d.join_day <= 0)
    summary.device_groups = len({d.group for d in fleet})
    summary.vulnerabilities = len(_vulnerability_facts(0, timeline))
    summary.seconds = round(time.perf_counter() - started, 2)
    return summary


def _configurations() -> list[dict[str, Any]]:
    """The security configuration checks every day's report declares."""
    checks = load_data("configurations.json")["configurations"]
    return [
        {
            k: c[k]
            for k in (
                "id",
                "name",
                "category",
                "sub_category",
                "weight",
                "description",
                "remediation",
                "related_component",
            )
        }
        for c in checks
    ]


def _import_day(
    target: Session | Engine, path: Path, scanned: datetime, import_report: Any, snapshot: Any
) -> dict[str, Any]:
    def run(session: Session) -> dict[str, Any]:
        result = import_report(session, path, format="remedium", imported_by="demo", as_of=scanned)
        snapshot(session, scanned.date())
        data: dict[str, Any] = result.as_dict()
        return {k: data[k] for k in ("devices_added", "findings_added", "findings_fixed")}

    if isinstance(target, Session):
        return run(target)
    session = session_factory(target)()
    try:
        result = run(session)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _advance(fleet: list[DemoDevice], day: int, rng: random.Random) -> set[int]:
    """Apply one day of patching and configuration fixes; return the devices that changed.

    Devices patch in waves (a device installs all its pending updates at once, as after a
    maintenance reboot), so each day only a few percent of the fleet changes.
    """
    changed: set[int] = set()
    for index, device in enumerate(fleet):
        if device.join_day == day:
            changed.add(index)
            continue
        if rng.random() < 0.045:
            for key, version in list(device.software.items()):
                latest = len(versions_of(key)) - 1
                if version < latest:
                    device.software[key] = latest
                    changed.add(index)
        if device.failing and rng.random() < 0.02:
            device.failing.discard(sorted(device.failing)[0])
            changed.add(index)
    return changed


def _devices_with(fleet: list[DemoDevice], cves: set[str]) -> set[int]:
    products = {
        e["product_key"]
        for e in load_data("vulnerabilities.json")["vulnerabilities"]
        if e["id"] in cves
    }
    return {i for i, d in enumerate(fleet) if products & set(d.software)}
