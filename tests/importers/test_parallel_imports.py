"""Two ``remedium import`` processes of the same devices at once (issue 15): they serialise, and
the database ends as after one import plus an unchanged re-import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select

from remedium.db.session import transaction
from remedium.importers.models import ImportRun
from remedium.inventory.models import Device, Weakness
from tests.support.orgs.big_scan import write_scan


def test_two_processes_import_the_same_devices_at_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    scan = write_scan(tmp_path / "scan.json", 1500)
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "remedium.cli.main", "import", str(scan), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))
    # One of them added the devices, the other found them all (it waited for the first).
    assert sorted(s["devices_added"] for s in summaries) == [0, 1500]
    assert sorted(s["findings_added"] for s in summaries) == [0, 9000]
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1500
        assert session.scalar(select(func.count()).select_from(Weakness)) == 9000
        assert session.scalar(select(func.count()).select_from(ImportRun)) == 2
