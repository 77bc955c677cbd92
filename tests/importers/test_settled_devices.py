"""While the parser process reads a large report, the importing process rebuilds the own rows of
the devices the report has moved past ("settled": points, scores, ``device_recommendation``);
the final recompute then rebuilds every recommendation and group and only the other devices'
rows. The result must be exactly what a full rebuild gives, on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from remedium.changes import service as changes_service
from remedium.importers.service import import_report
from remedium.recommendations import service as recommendations
from remedium.settings import get_settings

DERIVED = (
    "device",
    "device_recommendation",
    "recommendation",
    "recommendation_group_stat",
    "recommendation_vulnerability",
    "group_score_stat",
    "group_secure_stat",
)
# Columns that say when, not what.
WHEN = {"updated_at", "created_at", "first_seen", "last_seen", "exposure_updated_at"}


def derived(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived table, rows sorted, floats rounded (sums may add up in another order),
    ids replaced by names (PostgreSQL does not take back ids a rolled-back import used)."""
    names = {
        "device_id": dict(session.execute(text("SELECT id, name FROM device")).all()),
        "device_group_id": dict(session.execute(text("SELECT id, name FROM device_group")).all()),
        "software_id": dict(session.execute(text("SELECT id, product_key FROM software")).all()),
    }
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in DERIVED:
        result = session.execute(text(f"SELECT * FROM {table}"))
        columns = [
            (i, names["device_id"] if table == "device" and name == "id" else names.get(name))
            for i, name in enumerate(result.keys())
            if name not in WHEN
        ]
        rows = [
            tuple(
                (named.get(row[i], row[i]) if named is not None else row[i])
                if not isinstance(row[i], float)
                else round(row[i], 6)
                for i, named in columns
            )
            for row in result
        ]
        tables[table] = sorted(rows, key=repr)
    return tables


def report(tmp_path: Path, devices: int) -> Path:
    """A native report over several batches: 60 findings per device, a device named again at
    the end (its rows must be rebuilt once more), one vulnerability whose facts change late."""
    entries: list[dict[str, Any]] = []
    for index in range(devices):
        findings = [
            {
                "cve": f"CVE-2024-{1000 + (index * 3 + k) % 900}",
                "vendor": "acme",
                "product": f"tool{k % 12}",
                "installed_version": f"1.{k % 12}",
                "fixed_version": f"1.{k % 12}.{index % 3 + 1}",
                "severity": ("Low", "Medium", "High", "Critical")[k % 4],
            }
            for k in range(60)
        ]
        entries.append(
            {
                "name": f"node-{index:04d}",
                "os_platform": "Linux",
                "device_group": ("Servers", "Workstations", "Lab")[index % 3],
                "device_value": "High" if index % 10 == 0 else "Normal",
                "internet_facing": index % 7 == 0,
                "findings": findings,
            }
        )
    # The first device again, with one more finding, after every other device.
    entries.append({"name": "node-0000", "findings": [dict(entries[1]["findings"][0])]})
    # A vulnerability seen early, rated higher late in the file.
    late = dict(entries[2]["findings"][0])
    late["severity"] = "Critical"
    late["cvss_v3_vector"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    entries.append({"name": f"node-{devices - 1:04d}", "findings": [late]})
    document = {
        "schema": "remedium-inventory/1",
        "source": "unit-scanner",
        "scanned_at": "2026-11-01T08:00:00Z",
        "devices": entries,
    }
    path = tmp_path / "large.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def settling(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Reports parsed in a parser process, devices settled 25 at a time; yields how many
    devices each early rebuild took."""
    monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(changes_service, "_SETTLE_FROM", 25)
    calls: list[int] = []
    original = recommendations.recompute_device_rows

    def spy(session: Session, device_ids: Any, *, as_of: Any) -> None:
        calls.append(len(device_ids))
        original(session, device_ids, as_of=as_of)

    monkeypatch.setattr(recommendations, "recompute_device_rows", spy)
    yield calls
    monkeypatch.undo()
    get_settings.cache_clear()


def test_settled_devices_give_what_a_full_rebuild_gives(
    session: Session, tmp_path: Path, settling: list[int]
) -> None:
    path = report(tmp_path, devices=300)  # 18,000 findings: several batches
    summary = import_report(session, path)
    assert summary.findings_added == 300 * 60 + 2  # the two late findings are new
    assert settling, "no device was settled during the import"
    assert sum(settling) >= 200
    imported = derived(session)
    assert len(imported["device_recommendation"]) == 300 * 12
    if session.get_bind().dialect.name == "sqlite":  # references made without checks hold
        assert session.execute(text("PRAGMA foreign_key_check")).all() == []

    recommendations.recompute(session)  # everything again, from the inventory alone
    assert derived(session) == imported


def test_settling_gives_what_an_import_without_it_gives(
    session: Session, tmp_path: Path, settling: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = report(tmp_path, devices=300)
    import_report(session, path)
    assert settling
    with_settling = derived(session)
    session.rollback()

    monkeypatch.setattr(changes_service, "_SETTLE_FROM", 10**9)  # never settles
    import_report(session, path)
    assert derived(session) == with_settling


def trivy_cluster(tmp_path: Path, workloads: int) -> Path:
    """A ``trivy k8s`` report; a late workload rates an early vulnerability higher, which moves
    the points of devices settled long before."""
    low = "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"
    high = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"

    def vulnerability(cve: int, package: int, vector: str, score: float) -> dict[str, Any]:
        return {
            "VulnerabilityID": f"CVE-2024-{cve}",
            "PkgName": f"pkg{package}",
            "InstalledVersion": f"1.{package}",
            "FixedVersion": f"1.{package}.1",
            "Severity": "LOW" if score < 4 else "CRITICAL",
            "CVSS": {"nvd": {"V3Vector": vector, "V3Score": score}},
        }

    resources = [
        {
            "Namespace": "default",
            "Kind": "Deployment",
            "Name": f"app-{index:04d}",
            "Results": [
                {
                    "Target": "app (debian 12.5)",
                    "Class": "os-pkgs",
                    "Type": "debian",
                    "Vulnerabilities": [
                        vulnerability(2000 + (index + k) % 500, k % 10, low, 2.0) for k in range(40)
                    ],
                }
            ],
        }
        for index in range(workloads)
    ]
    late = dict(resources[0], Name="late-app")
    late["Results"] = [
        dict(late["Results"][0], Vulnerabilities=[vulnerability(2000, 0, high, 9.8)])
    ]
    resources.append(late)
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({"ClusterName": "unit", "Vulnerabilities": resources}))
    return path


def test_a_vulnerability_rated_again_late_moves_the_settled_devices_too(
    session: Session, tmp_path: Path, settling: list[int]
) -> None:
    summary = import_report(session, trivy_cluster(tmp_path, workloads=400))
    assert settling
    assert summary.vulnerabilities_updated >= 1  # CVE-2024-2000, rated again
    imported = derived(session)
    recommendations.recompute(session)
    assert derived(session) == imported
