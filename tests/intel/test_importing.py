"""``remedium intel import``: feeds into the database, events, idempotence, atomicity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.service import import_report
from remedium.intel.importing import import_feed
from remedium.intel.models import AffectedPackage, IntelEvent, Vulnerability
from remedium.inventory.models import Device

FIXTURES = Path(__file__).parent / "fixtures"
REMEDIUM = Path(sys.executable).with_name("remedium")
LOG4J = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"


def vulnerability(session: Session, vid: str) -> Vulnerability:
    found = session.get(Vulnerability, vid)
    assert found is not None, vid
    return found


def count(session: Session, model: type) -> int:  # type: ignore[type-arg]
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_kev_records_unknown_and_enriches_known_with_events(
    session: Session, tmp_path: Path
) -> None:
    # A scan knows CVE-2024-3400 first, without KEV facts.
    scan = tmp_path / "scan.json"
    scan.write_text(
        json.dumps(
            {
                "schema": "remedium-inventory/1",
                "source": "scanner",
                "scanned_at": "2024-06-01T00:00:00Z",
                "devices": [
                    {
                        "name": "fw-01",
                        "software": [
                            {"vendor": "paloaltonetworks", "product": "pan-os", "version": "10.2.9"}
                        ],
                        "findings": [
                            {
                                "cve": "CVE-2024-3400",
                                "vendor": "paloaltonetworks",
                                "product": "pan-os",
                                "installed_version": "10.2.9",
                            }
                        ],
                    }
                ],
            }
        )
    )
    import_report(session, scan)
    before = vulnerability(session, "CVE-2024-3400").exposure_points
    summary = import_feed(session, FIXTURES / "kev.json")
    assert summary.feed == "kev-json"
    assert summary.vulnerabilities_updated == 1
    assert summary.vulnerabilities_added == 1
    assert summary.skipped == [{"reason": "not a CVE id: 'not-a-cve'", "count": 1}]
    known = vulnerability(session, "CVE-2024-3400")
    assert known.kev_listed
    assert known.kev_ransomware
    assert known.exposure_points > before  # KEV listing raises the points
    events = {(e.vulnerability_id, e.kind) for e in session.scalars(select(IntelEvent))}
    assert ("CVE-2024-3400", "kev_listed") in events
    event = session.scalars(select(IntelEvent).where(IntelEvent.kind == "kev_listed")).first()
    assert event is not None
    assert event.occurred_at.date().isoformat() == "2024-07-01"
    assert summary.devices_recomputed == 1  # fw-01's exposure follows
    assert session.scalars(select(Device.exposure_points)).one() == pytest.approx(
        known.exposure_points
    )
    run = session.get(ImportRun, summary.import_id)
    assert run is not None
    assert run.summary["vulnerabilities_updated"] == 1


def test_every_feed_kind_imports_and_twice_changes_nothing(
    session: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "osv"
    shutil.copytree(FIXTURES / "osv_folder", folder)
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(FIXTURES / "matching" / "osv_lodash.json", "npm/GHSA-35jh-r3h4-6jhm.json")
    feeds = [
        FIXTURES / "kev.json",
        FIXTURES / "kev.csv",
        FIXTURES / "epss.csv",
        FIXTURES / "nvd_api2.json",
        FIXTURES / "osv_record.json",
        FIXTURES / "cve5_record.json",
        folder,
        archive,
    ]
    firsts = {}
    for path in feeds:
        firsts[path.name] = import_feed(session, path)
        rows = (
            count(session, Vulnerability),
            count(session, AffectedPackage),
            count(session, IntelEvent),
        )
        again = import_feed(session, path)  # the same file again: nothing changes
        assert (again.vulnerabilities_added, again.vulnerabilities_updated, again.events) == (
            0,
            0,
            0,
        ), path.name
        assert again.ranges_added == 0
        assert rows == (
            count(session, Vulnerability),
            count(session, AffectedPackage),
            count(session, IntelEvent),
        )
    assert {s.feed for s in firsts.values()} == {
        "kev-json",
        "kev-csv",
        "epss",
        "nvd",
        "osv",
        "cve5",
    }
    assert firsts["osv.zip"].ranges_added == 1
    assert firsts["osv"].ranges_added > 0
    assert firsts["nvd_api2.json"].ranges_added > 0
    assert vulnerability(session, "CVE-2024-3400").epss == pytest.approx(0.94512)
    assert vulnerability(session, "CVE-2021-23337").description.startswith("lodash before")


def test_higher_epss_is_an_event_and_lower_is_not(session: Session, tmp_path: Path) -> None:
    first = tmp_path / "epss-1.csv"
    first.write_text(
        "#model_version:v2025.03.14,score_date:2025-06-01T00:00:00+0000\n"
        "cve,epss,percentile\nCVE-2024-0001,0.10000,0.90000\n"
    )
    second = tmp_path / "epss-2.csv"
    second.write_text(
        "#model_version:v2025.03.14,score_date:2025-06-02T00:00:00+0000\n"
        "cve,epss,percentile\nCVE-2024-0001,0.50000,0.99000\n"
    )
    third = tmp_path / "epss-3.csv"
    third.write_text(
        "#model_version:v2025.03.14,score_date:2025-06-03T00:00:00+0000\n"
        "cve,epss,percentile\nCVE-2024-0001,0.20000,0.95000\n"
    )
    import_feed(session, first)
    assert import_feed(session, second).events == 1
    assert import_feed(session, third).events == 0
    assert vulnerability(session, "CVE-2024-0001").epss == pytest.approx(0.2)
    kinds = [(e.kind, e.new_value) for e in session.scalars(select(IntelEvent))]
    assert kinds == [("epss_increase", "0.50000")]


def test_bad_feed_is_refused_and_changes_nothing(session: Session) -> None:
    with pytest.raises(ReportError) as refused:
        import_feed(session, FIXTURES / "epss_bad_number.csv")
    assert "epss_bad_number.csv" in str(refused.value)
    session.rollback()
    assert count(session, Vulnerability) == 0
    assert count(session, ImportRun) == 0


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_imports_each_file_and_refuses_bad_ones_clearly(
    database_url: str, engine: Engine
) -> None:
    result = run_cli(
        database_url,
        "intel",
        "import",
        str(FIXTURES / "kev.json"),
        str(FIXTURES / "epss_bad_number.csv"),
        "--json",
    )
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["vulnerabilities_added"] == 2
    assert [r["file"] for r in payload["refused"]] == [str(FIXTURES / "epss_bad_number.csv")]
    assert "epss_bad_number.csv" in payload["refused"][0]["error"]
    with session_factory(engine)() as session:
        # The good file stays imported; the bad one added nothing.
        assert count(session, Vulnerability) == 2
        assert count(session, ImportRun) == 1
    table = run_cli(database_url, "intel", "import", str(FIXTURES / "kev.csv"))
    assert table.returncode == 0, table.stderr
    assert "vulnerabilities updated" in table.stderr
