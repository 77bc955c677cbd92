"""The import pipeline on both databases: counts, idempotence, fixes, older scans, atomicity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remedium.importers import service as pipeline
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.service import import_report
from remedium.intel.models import IntelEvent, SecurityConfiguration, Vulnerability
from remedium.inventory.models import (
    ConfigurationAssessment,
    Device,
    DeviceGroup,
    InstalledSoftware,
    Software,
    Weakness,
)

LOG4J = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"


def device(name: str, findings: list[tuple[str, str, str]] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """A device with (cve, product, version) findings, each product also listed as software."""
    entry: dict[str, Any] = {"name": name, "os_platform": "Linux", "device_group": "Servers"}
    entry["software"] = [
        {"vendor": "Apache", "product": product, "version": version}
        for _, product, version in findings
    ]
    entry["findings"] = [
        {"cve": cve, "vendor": "Apache", "product": product, "installed_version": version}
        for cve, product, version in findings
    ]
    entry.update(extra)
    return entry


def report(tmp_path: Path, scanned_at: str, devices: list[dict[str, Any]], **extra: Any) -> Path:
    document = {
        "schema": "remedium-inventory/1",
        "source": "unit-scanner",
        "scanned_at": scanned_at,
        "complete": extra.pop("complete", True),
        "vulnerabilities": extra.pop(
            "vulnerabilities", [{"id": "CVE-2021-44228", "cvss_v3_vector": LOG4J}]
        ),
        "configurations": [
            {
                "id": "scid-2000",
                "name": "Turn on Microsoft Defender Antivirus",
                "category": "SecurityControls",
                "weight": 9,
            }
        ],
        **extra,  # header fields come before the sections (docs/native-format.md)
        "devices": devices,
    }
    path = tmp_path / f"scan-{scanned_at[:10]}-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(document))
    return path


def open_weaknesses(session: Session) -> set[tuple[str, str]]:
    rows = session.execute(
        select(Device.name, Weakness.vulnerability_id)
        .join(Device, Device.id == Weakness.device_id)
        .where(Weakness.fixed_at.is_(None))
    )
    return {(name, cve) for name, cve in rows}


def test_first_import_adds_everything(session: Session, tmp_path: Path) -> None:
    path = report(
        tmp_path,
        "2026-11-01T08:00:00Z",
        [
            device(
                "web-01",
                [("CVE-2021-44228", "log4j", "2.14.1"), ("CVE-2099-0001", "httpd", "2.4.49")],
                configuration=[{"id": "scid-2000", "compliant": False}],
            ),
            device("web-02", [("CVE-2021-44228", "log4j", "2.14.1")]),
        ],
    )
    summary = import_report(session, path)
    session.commit()
    assert (summary.devices_added, summary.software_added, summary.findings_added) == (2, 2, 3)
    assert summary.configuration_results == 1
    assert open_weaknesses(session) == {
        ("web-01", "CVE-2021-44228"),
        ("web-01", "CVE-2099-0001"),
        ("web-02", "CVE-2021-44228"),
    }
    # The unknown CVE was created from what the report said; the known one was scored by CVSS.
    log4j = session.get(Vulnerability, "CVE-2021-44228")
    assert log4j is not None
    assert log4j.cvss_v3_score == 10.0
    assert log4j.severity == "Critical"
    assert log4j.exposure_points > 0
    assert session.get(Vulnerability, "CVE-2099-0001") is not None
    keys = set(session.scalars(select(Software.product_key)))
    assert keys == {"apache-_-log4j", "apache-_-httpd"}
    run = session.scalars(select(ImportRun)).one()
    assert run.summary["findings_added"] == 3
    assert run.sha256
    assert run.format == "remedium"
    assert session.scalars(select(DeviceGroup.name)).all() == ["Servers"]


def test_same_file_twice_changes_nothing(session: Session, tmp_path: Path) -> None:
    path = report(
        tmp_path,
        "2026-11-01T08:00:00Z",
        [
            device(
                "web-01",
                [("CVE-2021-44228", "log4j", "2.14.1")],
                configuration=[{"id": "scid-2000", "compliant": False}],
            )
        ],
    )
    import_report(session, path)
    session.commit()
    second = import_report(session, path)
    session.commit()
    data = second.as_dict()
    for key in (
        "devices_added",
        "devices_updated",
        "software_added",
        "findings_added",
        "findings_updated",
        "findings_fixed",
        "configuration_results",
    ):
        assert data[key] == 0, key
    assert session.scalar(select(func.count()).select_from(Weakness)) == 1
    assert session.scalar(select(func.count()).select_from(Device)) == 1


def test_newer_scan_fixes_what_it_no_longer_reports(session: Session, tmp_path: Path) -> None:
    import_report(
        session,
        report(
            tmp_path,
            "2026-11-01T08:00:00Z",
            [
                device(
                    "web-01",
                    [("CVE-2021-44228", "log4j", "2.14.1"), ("CVE-2099-0001", "httpd", "2.4.49")],
                    configuration=[{"id": "scid-2000", "compliant": False}],
                )
            ],
        ),
    )
    session.commit()
    summary = import_report(
        session,
        report(
            tmp_path,
            "2026-11-05T08:00:00Z",
            [
                device(
                    "web-01",
                    [("CVE-2099-0001", "httpd", "2.4.49")],
                    configuration=[{"id": "scid-2000", "compliant": True}],
                )
            ],
        ),
    )
    session.commit()
    assert summary.findings_fixed == 1
    assert summary.configurations_fixed == 1
    assert open_weaknesses(session) == {("web-01", "CVE-2099-0001")}
    fixed = session.scalars(
        select(Weakness).where(Weakness.vulnerability_id == "CVE-2021-44228")
    ).one()
    assert fixed.fixed_at is not None
    assert fixed.fixed_at.day == 5
    assessment = session.scalars(select(ConfigurationAssessment)).one()
    assert assessment.is_compliant
    assert assessment.fixed_at is not None
    # log4j is no longer installed: the software list of a complete scan is the inventory.
    installed = session.scalars(select(InstalledSoftware.version)).all()
    assert installed == ["2.4.49"]


def test_reappearing_weakness_is_reopened(session: Session, tmp_path: Path) -> None:
    finding = [("CVE-2021-44228", "log4j", "2.14.1")]
    import_report(session, report(tmp_path, "2026-11-01T08:00:00Z", [device("web-01", finding)]))
    import_report(session, report(tmp_path, "2026-11-02T08:00:00Z", [device("web-01")]))
    assert open_weaknesses(session) == set()
    summary = import_report(
        session, report(tmp_path, "2026-11-03T08:00:00Z", [device("web-01", finding)])
    )
    session.commit()
    assert summary.findings_reopened == 1
    assert open_weaknesses(session) == {("web-01", "CVE-2021-44228")}


def test_older_scan_neither_reopens_nor_fixes(session: Session, tmp_path: Path) -> None:
    finding = [("CVE-2021-44228", "log4j", "2.14.1")]
    other = [("CVE-2099-0001", "httpd", "2.4.49")]
    import_report(session, report(tmp_path, "2026-11-01T08:00:00Z", [device("web-01", finding)]))
    import_report(session, report(tmp_path, "2026-11-05T08:00:00Z", [device("web-01", other)]))
    session.commit()
    assert open_weaknesses(session) == {("web-01", "CVE-2099-0001")}
    # A scan from 3 November arrives late: it says log4j is there and httpd is not.
    late = import_report(
        session, report(tmp_path, "2026-11-03T08:00:00Z", [device("web-01", finding)])
    )
    session.commit()
    assert open_weaknesses(session) == {("web-01", "CVE-2099-0001")}
    assert late.findings_fixed == 0
    assert late.findings_added == 0
    assert late.findings_reopened == 0
    assert any("older than the latest scan" in s["reason"] for s in late.skipped)


def test_partial_report_does_not_fix(session: Session, tmp_path: Path) -> None:
    import_report(
        session,
        report(
            tmp_path,
            "2026-11-01T08:00:00Z",
            [device("web-01", [("CVE-2021-44228", "log4j", "2.14.1")])],
        ),
    )
    summary = import_report(
        session, report(tmp_path, "2026-11-02T08:00:00Z", [device("web-01")], complete=False)
    )
    assert summary.findings_fixed == 0
    assert open_weaknesses(session) == {("web-01", "CVE-2021-44228")}


def test_device_identity_across_names_and_assets(session: Session, tmp_path: Path) -> None:
    import_report(
        session,
        report(
            tmp_path,
            "2026-11-01T08:00:00Z",
            [
                device("WEB-01.corp.example", ip_address="10.0.0.5"),
                device("db-01", asset_id="i-0abc"),
                {"name": "10.9.9.9"},
            ],
        ),
    )
    summary = import_report(
        session,
        report(
            tmp_path,
            "2026-11-02T08:00:00Z",
            [
                device("web-01"),  # short name of a known FQDN
                device("database-renamed", asset_id="I-0ABC"),  # asset id wins over the name
                {"name": "10.9.9.9", "os_platform": "Linux"},  # only an address: matched by it
            ],
        ),
    )
    session.commit()
    assert summary.devices_added == 0
    assert session.scalar(select(func.count()).select_from(Device)) == 3
    renamed = session.scalars(select(Device).where(Device.identity_key == "asset:i-0abc")).one()
    assert renamed.name == "database-renamed"
    assert summary.devices_updated == 2  # the rename and the new OS platform


def test_device_group_option_overrides_the_report(session: Session, tmp_path: Path) -> None:
    import_report(
        session,
        report(tmp_path, "2026-11-01T08:00:00Z", [device("web-01")]),
        device_group="Finance",
    )
    group = session.scalars(
        select(DeviceGroup).join(Device, Device.device_group_id == DeviceGroup.id)
    ).one()
    assert group.name == "Finance"


def test_unknown_configuration_check_is_skipped_with_reason(
    session: Session, tmp_path: Path
) -> None:
    summary = import_report(
        session,
        report(
            tmp_path,
            "2026-11-01T08:00:00Z",
            [device("web-01", configuration=[{"id": "scid-9999", "compliant": False}])],
        ),
    )
    assert summary.skipped == [
        {"reason": "result of a configuration check remedium does not know", "count": 1}
    ]
    assert session.get(SecurityConfiguration, "scid-2000") is not None


def test_worsening_intel_in_a_report_records_an_event(session: Session, tmp_path: Path) -> None:
    import_report(session, report(tmp_path, "2026-11-01T08:00:00Z", [device("web-01")]))
    import_report(
        session,
        report(
            tmp_path,
            "2026-11-02T08:00:00Z",
            [device("web-01")],
            vulnerabilities=[
                {"id": "CVE-2021-44228", "cvss_v3_vector": LOG4J, "kev_listed": True, "epss": 0.9}
            ],
        ),
    )
    kinds = set(session.scalars(select(IntelEvent.kind)))
    assert kinds == {"kev_listed", "epss_increase"}


def test_fault_half_way_leaves_nothing(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = [
        device(f"host-{i:04d}", [("CVE-2021-44228", "log4j", "2.14.1")]) for i in range(2000)
    ]
    path = report(tmp_path, "2026-11-01T08:00:00Z", devices)
    calls = {"n": 0}
    original = pipeline.ReportWriter._write_findings

    def failing(self: pipeline.ReportWriter, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch: the first one is already written
            raise RuntimeError("disk on fire")
        original(self, *args)

    monkeypatch.setattr(pipeline.ReportWriter, "_write_findings", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_report(session, path)
    assert calls["n"] == 2
    session.rollback()
    for model in (Device, Weakness, Software, Vulnerability, ImportRun, DeviceGroup):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__


def test_bad_file_writes_nothing(session: Session, tmp_path: Path) -> None:
    devices = [device(f"host-{i}") for i in range(10)]
    devices[7]["device_value"] = 3
    with pytest.raises(ReportError, match=r"devices\[7\]\.device_value"):
        import_report(session, report(tmp_path, "2026-11-01T08:00:00Z", devices))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Device)) == 0
