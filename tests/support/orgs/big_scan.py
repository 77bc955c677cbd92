"""Scenario "big-scan": a generated native-format report large enough that importing it takes a
few seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRODUCTS = [
    ("Apache", "log4j", "2.14.1", "2.17.1", "CVE-2021-44228"),
    ("OpenSSL", "openssl", "1.1.1k", "1.1.1l", "CVE-2021-3711"),
    ("Google", "chrome", "100.0.1", "101.0.0", "CVE-2022-1096"),
    ("Mozilla", "firefox", "98.0", "98.0.2", "CVE-2022-26485"),
    ("Oracle", "jre", "8u301", "8u311", "CVE-2021-35567"),
    ("7-Zip", "7-zip", "21.06", "21.07", "CVE-2022-29072"),
]


def write_scan(path: Path, devices: int, *, prefix: str = "host") -> Path:
    """``devices`` devices, each with every product above and its finding."""
    document: dict[str, Any] = {
        "schema": "remedium-inventory/1",
        "source": "backup-test",
        "scanned_at": "2026-11-01T08:00:00Z",
        "devices": [
            {
                "name": f"{prefix}-{n:05d}",
                "software": [
                    {"vendor": vendor, "product": product, "version": version}
                    for vendor, product, version, _fixed, _cve in PRODUCTS
                ],
                "findings": [
                    {
                        "cve": cve,
                        "vendor": vendor,
                        "product": product,
                        "installed_version": version,
                        "fixed_version": fixed,
                    }
                    for vendor, product, version, fixed, cve in PRODUCTS
                ],
            }
            for n in range(devices)
        ],
    }
    path.write_text(json.dumps(document))
    return path
