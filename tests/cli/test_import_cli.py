"""``remedium import`` in a subprocess against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from remedium.db.session import session_factory
from remedium.inventory.models import Device, Weakness

REMEDIUM = Path(sys.executable).with_name("remedium")


def native_document() -> dict[str, Any]:
    """Two devices, one with log4j and its Log4Shell finding."""
    return {
        "schema": "remedium-inventory/1",
        "source": "cli-test",
        "scanned_at": "2026-11-01T08:00:00Z",
        "devices": [
            {
                "name": "web-01",
                "software": [{"vendor": "Apache", "product": "log4j", "version": "2.14.1"}],
                "findings": [
                    {
                        "cve": "CVE-2021-44228",
                        "vendor": "Apache",
                        "product": "log4j",
                        "installed_version": "2.14.1",
                        "fixed_version": "2.17.1",
                    }
                ],
            },
            {"name": "web-02"},
        ],
    }


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_import_json_summary_and_idempotence(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(native_document()))
    first = run(database_url, "import", str(path), "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["devices_added"] == 2
    assert summary["findings_added"] == 1
    for key in (
        "devices_updated",
        "software_added",
        "findings_updated",
        "findings_fixed",
        "configuration_results",
        "skipped",
    ):
        assert key in summary
    second = json.loads(run(database_url, "import", str(path), "--json").stdout)
    assert second["devices_added"] == 0
    assert second["findings_added"] == 0


def test_bad_file_exits_non_zero_and_changes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(native_document()))
    bad_document = native_document()
    bad_document["devices"][0]["software"][0]["version"] = 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_document))
    # Both files in one command: the good one must not be kept either.
    result = run(database_url, "import", str(good), str(bad), "--format", "remedium")
    assert result.returncode != 0
    assert "devices[0].software[0].version" in result.stderr
    assert "nothing changed" in result.stderr
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 0
        assert session.scalar(select(func.count()).select_from(Weakness)) == 0


def test_table_output(database_url: str, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(native_document()))
    result = run(database_url, "import", str(path), "--device-group", "Lab")
    assert result.returncode == 0, result.stderr
    assert "devices added" in result.stderr
    assert "findings added" in result.stderr
