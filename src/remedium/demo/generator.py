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
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.demo.history import DemoHistory
from remedium.importers.models import ImportRun

DEMO_SOURCE = "remedium-demo"
DAYS = 30
SCAN_HOUR = 6

# (name, share of devices, kind)
GROUPS = (
    ("Headquarters workstations", 0.30, "workstation"),
    ("Branch offices", 0.18, "branch"),
    ("Engineering laptops", 0.15, "engineering"),
    ("Finance", 0.08, "finance"),
    ("Datacenter servers", 0.22, "server"),
    ("DMZ web servers", 0.07, "dmz"),
)
BRANCHES = ("LYO", "MAD", "MIL", "OSL", "WAW", "BCN", "GVA", "DUB")

# product_key: (display vendor, display name, versions oldest to newest, {kind: share installed})
CATALOG: dict[str, tuple[str, str, tuple[str, ...], dict[str, float]]] = {
    "google-_-chrome": (
        "Google",
        "Chrome",
        (
            "112.0.5615.49",
            "116.0.5845.96",
            "119.0.6045.159",
            "120.0.6099.109",
            "124.0.6367.118",
            "128.0.6613.84",
            "131.0.6778.86",
        ),
        {"win": 0.9, "mac": 0.8},
    ),
    "microsoft-_-edge_chromium": (
        "Microsoft",
        "Edge",
        ("115.0.1901.203", "116.0.1938.81", "131.0.2903.70"),
        {"win": 1.0},
    ),
    "mozilla-_-firefox": (
        "Mozilla",
        "Firefox",
        ("115.0", "117.0.1", "128.0", "131.0.2", "133.0"),
        {"win": 0.35, "mac": 0.4, "linux_desktop": 0.9},
    ),
    "microsoft-_-office": (
        "Microsoft",
        "Office",
        ("16.0.16731.20234", "16.0.17928.20156"),
        {"win": 0.95, "mac": 0.7},
    ),
    "microsoft-_-teams": (
        "Microsoft",
        "Teams",
        ("24215.1007.3082.1590",),
        {"win": 0.95, "mac": 0.9},
    ),
    "zoom-_-zoom": ("Zoom", "Zoom", ("5.15.5", "5.16.5", "6.2.11"), {"win": 0.45, "mac": 0.6}),
    "adobe-_-acrobat_reader_dc": (
        "Adobe",
        "Acrobat Reader DC",
        ("22.003.20282", "23.003.20284", "23.006.20320", "24.004.20220"),
        {"win": 0.7, "mac": 0.5},
    ),
    "igor_pavlov-_-7-zip": (
        "Igor Pavlov",
        "7-Zip",
        ("19.00", "23.01", "24.08", "24.09"),
        {"win": 0.5, "winserver": 0.4},
    ),
    "rarlab-_-winrar": ("RARLAB", "WinRAR", ("6.02", "6.22", "6.24", "7.12"), {"win": 0.15}),
    "notepad-plus-plus-_-notepad++": (
        "Notepad++",
        "Notepad++",
        ("8.4.9", "8.5.6", "8.6.9"),
        {"win": 0.3, "winserver": 0.5},
    ),
    "videolan-_-vlc_media_player": (
        "VideoLAN",
        "VLC media player",
        ("3.0.18", "3.0.20", "3.0.21"),
        {"win": 0.3, "mac": 0.3},
    ),
    "dominik_reichl-_-keepass": ("Dominik Reichl", "KeePass", ("2.53.1", "2.57"), {"win": 0.1}),
    "simon_tatham-_-putty": (
        "Simon Tatham",
        "PuTTY",
        ("0.76", "0.79", "0.81", "0.82"),
        {"win_eng": 0.6, "winserver": 0.6},
    ),
    "git-scm-_-git": (
        "Git",
        "Git",
        ("2.39.0", "2.43.0", "2.45.0", "2.47.1"),
        {"win_eng": 0.9, "mac": 0.8, "linux_desktop": 0.9},
    ),
    "python-_-python": (
        "Python Software Foundation",
        "Python",
        ("3.11.0", "3.11.3", "3.11.9"),
        {"win_eng": 0.7, "mac": 0.7, "linux_desktop": 0.9},
    ),
    "nodejs-_-node.js": (
        "OpenJS Foundation",
        "Node.js",
        ("18.17.1", "18.20.4", "20.8.0", "20.18.1"),
        {"win_eng": 0.5, "mac": 0.5, "linux_desktop": 0.5},
    ),
    "oracle-_-jdk": (
        "Oracle",
        "JDK",
        ("17.0.2", "17.0.13"),
        {"win_eng": 0.3, "winserver": 0.2, "linux_server": 0.3},
    ),
    "openbsd-_-openssh": (
        "OpenBSD",
        "OpenSSH",
        ("8.4p1", "8.9p1", "9.2p1", "9.6p1", "9.8p1", "9.9p1"),
        {"linux_server": 1.0, "linux_desktop": 1.0, "dmz": 1.0},
    ),
    "openssl-_-openssl": (
        "OpenSSL",
        "OpenSSL",
        ("1.1.1k", "1.1.1w", "3.0.2", "3.0.7", "3.0.13", "3.0.15"),
        {"linux_server": 1.0, "linux_desktop": 1.0, "dmz": 1.0},
    ),
    "haxx-_-curl": (
        "haxx",
        "curl",
        ("7.81.0", "8.2.1", "8.5.0", "8.11.0"),
        {"linux_server": 1.0, "linux_desktop": 1.0, "dmz": 1.0},
    ),
    "gnu-_-glibc": (
        "GNU",
        "glibc",
        ("2.31", "2.35", "2.39"),
        {"linux_server": 1.0, "linux_desktop": 1.0, "dmz": 1.0},
    ),
    "sudo_project-_-sudo": (
        "sudo project",
        "sudo",
        ("1.8.31", "1.9.9", "1.9.15p5"),
        {"linux_server": 1.0, "linux_desktop": 1.0, "dmz": 1.0},
    ),
    "tukaani-_-xz": (
        "Tukaani",
        "XZ Utils",
        ("5.4.5", "5.6.0", "5.6.1", "5.6.2"),
        {"linux_desktop": 0.6, "linux_server": 0.4},
    ),
    "apache-_-http_server": (
        "Apache",
        "HTTP Server",
        ("2.4.48", "2.4.49", "2.4.54", "2.4.57", "2.4.62"),
        {"dmz": 0.6, "linux_server": 0.2},
    ),
    "f5-_-nginx": (
        "F5",
        "nginx",
        ("1.18.0", "1.22.1", "1.24.0", "1.26.2"),
        {"dmz": 0.5, "linux_server": 0.15},
    ),
    "apache-_-log4j": (
        "Apache",
        "Log4j",
        ("2.14.1", "2.16.0", "2.17.0", "2.17.1", "2.24.1"),
        {"linux_server": 0.35, "dmz": 0.3, "winserver": 0.15},
    ),
    "apache-_-tomcat": (
        "Apache",
        "Tomcat",
        ("9.0.30", "9.0.75", "9.0.82", "9.0.98", "9.0.99"),
        {"linux_server": 0.3, "dmz": 0.3},
    ),
    "vmware-_-spring_framework": (
        "VMware",
        "Spring Framework",
        ("5.3.17", "5.3.18", "5.3.39"),
        {"linux_server": 0.2, "dmz": 0.2},
    ),
    "jenkins-_-jenkins": (
        "Jenkins",
        "Jenkins",
        ("2.426", "2.440", "2.479.1"),
        {"linux_server": 0.03},
    ),
    "apache-_-activemq": ("Apache", "ActiveMQ", ("5.18.2", "5.18.3"), {"linux_server": 0.03}),
    "atlassian-_-confluence_data_center": (
        "Atlassian",
        "Confluence Data Center",
        ("8.3.2", "8.5.4"),
        {"linux_server": 0.02},
    ),
}
APPLIANCES = (
    (
        "fw-edge-01",
        "paloaltonetworks-_-pan-os",
        "Palo Alto Networks",
        "PAN-OS",
        ("11.1.2", "11.1.2-h3"),
    ),
    (
        "fw-edge-02",
        "paloaltonetworks-_-pan-os",
        "Palo Alto Networks",
        "PAN-OS",
        ("11.1.2", "11.1.2-h3"),
    ),
    ("adc-01", "citrix-_-netscaler_adc", "Citrix", "NetScaler ADC", ("13.1-37.38", "13.1-49.15")),
    ("adc-02", "citrix-_-netscaler_adc", "Citrix", "NetScaler ADC", ("13.1-37.38", "13.1-49.15")),
)


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


@cache
def load_data(name: str) -> dict[str, Any]:
    """One of the demo's data files (``vulnerabilities.json``, ``configurations.json``)."""
    text = resources.files("remedium.demo").joinpath("data", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_TOKEN = re.compile(r"\d+|[a-z]+")


@cache  # a few hundred distinct versions, compared hundreds of thousands of times per build
def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sortable key for dotted versions with letters (``1.1.1n``, ``9.8p1``, ``11.1.2-h3``)."""
    return tuple(
        (1, int(token)) if token.isdigit() else (0, token)
        for token in _TOKEN.findall(version.lower())
    )


def affected(version: str, ranges: list[dict[str, str]]) -> str | None:
    """The fixed version when ``version`` falls in one of ``ranges``, else None."""
    key = version_key(version)
    for span in ranges:
        introduced = span.get("introduced")
        if introduced and key < version_key(introduced):
            continue
        if key < version_key(span["fixed"]):
            return span["fixed"]
    return None


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


def _versions(key: str) -> tuple[str, ...]:
    if key in CATALOG:
        return CATALOG[key][2]
    return next(a[4] for a in APPLIANCES if a[1] == key)


def _display(key: str) -> tuple[str, str]:
    if key in CATALOG:
        return CATALOG[key][0], CATALOG[key][1]
    return next((a[2], a[3]) for a in APPLIANCES if a[1] == key)


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
        display_vendor, display_name = _display(key)
        version = _versions(key)[index]
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
    from remedium.importers.service import import_report
    from remedium.scoring.service import snapshot_scores

    started = time.perf_counter()
    rng = random.Random(seed)
    fleet = generate_devices(devices, rng)
    timeline = _timeline(rng)
    checks = load_data("configurations.json")["configurations"]
    configurations = [
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
            changed |= history.before_import(day, fleet, lambda key: len(_versions(key)) - 1)
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
                latest = len(_versions(key)) - 1
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
