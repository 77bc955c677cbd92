"""Progress is measured from real imports: later scans fix devices, the activity completes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.importers.service import import_report
from remedium.remediation.models import RemediationActivity
from tests.support.signin import client_for

LOG4J = "CVE-2021-44228"
SCAN = datetime.now(UTC) - timedelta(days=2)


def _device(name: str, group: str, *, vulnerable: bool) -> dict[str, Any]:
    version = "2.14.1" if vulnerable else "2.17.1"
    return {
        "name": name,
        "os_platform": "Linux",
        "device_group": group,
        "software": [{"vendor": "Apache", "product": "Log4j", "version": version}],
        "findings": (
            [
                {
                    "cve": LOG4J,
                    "vendor": "Apache",
                    "product": "Log4j",
                    "installed_version": version,
                    "fixed_version": "2.17.1",
                }
            ]
            if vulnerable
            else []
        ),
    }


def _scan(folder: Path, day: int, vulnerable: set[str]) -> Path:
    devices = [
        _device(name, group, vulnerable=name in vulnerable)
        for name, group in (("web-1", "DMZ"), ("web-2", "DMZ"), ("app-1", "Servers"))
    ]
    document = {
        "schema": "remedium-inventory/1",
        "source": "acme-collector",
        "scanned_at": (SCAN + timedelta(hours=day)).isoformat(),
        "complete": True,
        "vulnerabilities": [
            {"id": LOG4J, "cvss_v3_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}
        ],
        "devices": devices,
    }
    path = folder / f"scan-{day}.json"
    path.write_text(json.dumps(document), "utf-8")
    return path


def _import(engine: Engine, path: Path) -> None:
    with transaction(engine) as session:
        import_report(session, path)


def _activity(engine: Engine, activity_id: str) -> RemediationActivity:
    with transaction(engine) as session:
        activity = session.scalars(
            select(RemediationActivity).where(RemediationActivity.id == activity_id)
        ).one()
        session.expunge(activity)
        return activity


def test_later_imports_move_progress_to_automatic_completion(
    engine: Engine, tmp_path: Path
) -> None:
    _import(engine, _scan(tmp_path, 0, {"web-1", "web-2", "app-1"}))
    client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    reply = client.post(
        "/api/v1/remediation-activities",
        json={
            "recommendation_id": "va-_-apache-_-log4j",
            "remediation_type": "Update",
            "priority": "High",
            "due_on": (datetime.now(UTC) + timedelta(days=7)).date().isoformat(),
            "notes": "Log4Shell",
        },
    )
    assert reply.status_code == 201, reply.text
    activity_id = reply.json()["id"]
    assert reply.json()["target_devices"] == 3

    # The next scan shows web-1 upgraded: the import itself re-measures the activity.
    _import(engine, _scan(tmp_path, 1, {"web-2", "app-1"}))
    activity = _activity(engine, activity_id)
    assert (activity.fixed_devices, activity.target_devices) == (1, 3)
    assert activity.status == "Active"

    # An older scan arriving late never reopens what a newer one fixed.
    _import(engine, _scan(tmp_path, -1, {"web-1", "web-2", "app-1"}))
    assert _activity(engine, activity_id).fixed_devices == 1

    # The last scan shows every device upgraded: the activity completes by itself.
    _import(engine, _scan(tmp_path, 2, set()))
    activity = _activity(engine, activity_id)
    assert activity.status == "Completed"
    assert activity.fixed_devices == 3
    assert activity.completion_method == "System confirmation"
