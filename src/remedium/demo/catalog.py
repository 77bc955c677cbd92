"""The demo organisation's fixed facts: its device groups, the products it installs, its appliances,
and the data files of real vulnerability facts (``data/``), with the version rules they need.

Both the generator (the devices and their daily scans) and the history (what people did) read it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

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


def versions_of(key: str) -> tuple[str, ...]:
    """The versions of a catalog product or appliance, oldest to newest."""
    if key in CATALOG:
        return CATALOG[key][2]
    return next(a[4] for a in APPLIANCES if a[1] == key)


def display_of(key: str) -> tuple[str, str]:
    """The display vendor and name of a catalog product or appliance."""
    if key in CATALOG:
        return CATALOG[key][0], CATALOG[key][1]
    return next((a[2], a[3]) for a in APPLIANCES if a[1] == key)
