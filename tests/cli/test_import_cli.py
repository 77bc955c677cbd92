"""``remedium import`` in a subprocess against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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


def run(
    database_url: str, *args: str, parser_process_mb: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    if parser_process_mb is not None:
        env["REMEDIUM_IMPORT_PARSER_PROCESS_MB"] = parser_process_mb
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


# In this process, or (0 MB) in a parser process, which the command starts before it loads the
# pipeline (``worker.start_early``).
PARSER_PROCESS = pytest.mark.parametrize("parser_process_mb", [None, "0"])


@PARSER_PROCESS
def test_import_json_summary_and_idempotence(
    database_url: str, engine: Engine, tmp_path: Path, parser_process_mb: str | None
) -> None:
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(native_document()))
    first = run(database_url, "import", str(path), "--json", parser_process_mb=parser_process_mb)
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
    again = run(database_url, "import", str(path), "--json", parser_process_mb=parser_process_mb)
    second = json.loads(again.stdout)
    assert second["devices_added"] == 0
    assert second["findings_added"] == 0


@PARSER_PROCESS
def test_bad_file_exits_non_zero_and_changes_nothing(
    database_url: str, engine: Engine, tmp_path: Path, parser_process_mb: str | None
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(native_document()))
    bad_document = native_document()
    bad_document["devices"][0]["software"][0]["version"] = 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_document))
    # Both files in one command: the good one must not be kept either.
    result = run(
        database_url,
        "import",
        str(good),
        str(bad),
        "--format",
        "remedium",
        parser_process_mb=parser_process_mb,
    )
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


def test_the_parser_process_starts_before_the_pipeline_loads(
    database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process, to see the order: the engine is made once the first file's parser
    # process runs, and the import then takes that process over.
    from typer.testing import CliRunner  # noqa: PLC0415 - this test only

    from remedium.cli import imports as command  # noqa: PLC0415 - patched here
    from remedium.cli.main import app  # noqa: PLC0415 - this test only
    from remedium.db.session import get_engine  # noqa: PLC0415 - its cache is cleared
    from remedium.importers import worker  # noqa: PLC0415 - inspected here
    from remedium.settings import get_settings  # noqa: PLC0415 - its cache is cleared

    path = tmp_path / "scan.json"
    path.write_text(json.dumps(native_document()))
    monkeypatch.setenv("REMEDIUM_DATABASE_URL", database_url)
    monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", "0")
    get_settings.cache_clear()
    get_engine.cache_clear()  # the configured database is this test's
    started_when_ready: list[int] = []
    ready_engine = command.ready_engine
    spawned: list[Any] = []
    child_class = worker._Child

    def child(*args: Any) -> Any:
        made = child_class(*args)
        spawned.append(made)
        return made

    def ready() -> Engine:
        started_when_ready.append(len(worker._EARLY))
        return ready_engine()

    monkeypatch.setattr(worker, "_Child", child)
    monkeypatch.setattr(command, "ready_engine", ready)
    try:
        result = CliRunner().invoke(app, ["import", str(path), "--json"])
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    assert result.exit_code == 0, result.output
    assert started_when_ready == [1]
    assert len(spawned) == 1  # taken over, not started again
    assert worker._EARLY == {}
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Weakness)) == 1


def test_a_parser_process_started_early_and_never_taken_is_stopped(tmp_path: Path) -> None:
    from remedium.importers import worker  # noqa: PLC0415 - inspected here

    path = tmp_path / "scan.json"
    path.write_text(json.dumps(native_document()))
    worker.start_early("remedium", path, 0)
    (child,) = worker._EARLY.values()
    worker.stop_early()
    assert worker._EARLY == {}
    assert child.process.returncode is not None
    assert child.process.stdout is not None
    assert child.process.stdout.closed
    # Below the size for a parser process, none is started.
    worker.start_early("remedium", path, path.stat().st_size + 1)
    assert worker._EARLY == {}
