"""Large reports are parsed in a second process: same result, same errors, nothing half-written.

``Settings.import_parser_process_mb`` is set to 0 here so that every report goes through the
parser process (``importers/worker.py``); the same imports in the importing process must write
exactly the same rows. On SQLite a bulk load also sets the secondary indexes aside and builds
them at the end: they must be back afterwards, and after a failed import too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.importers import limits, worker
from remedium.importers import service as pipeline
from remedium.importers.formats._fastjson import stream_contains
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.service import import_report
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness
from remedium.settings import get_settings

SECONDARY = {
    "ix_weakness_software_open",
    "ix_weakness_vulnerability",
    "ix_installed_software_software",
    "ix_device_recommendation_rec",
}


@pytest.fixture
def in_child(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every report parsed in a child process; yields the names of the files that were."""
    monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", "0")
    get_settings.cache_clear()
    used: list[str] = []
    original = worker._child

    def spy(format_name: str, path: Path, filename: str, device_name: str) -> Any:
        used.append(filename)
        return original(format_name, path, filename, device_name)

    monkeypatch.setattr(worker, "_child", spy)
    yield used
    monkeypatch.undo()
    get_settings.cache_clear()


def native(tmp_path: Path, devices: int, per_device: int, name: str = "big.json") -> Path:
    """A native report over several batches, with a repeated finding and a shared host."""
    entries: list[dict[str, Any]] = []
    for index in range(devices):
        findings = [
            {
                "cve": f"CVE-2024-{1000 + (index + k) % 700}",
                "vendor": "acme",
                "product": f"tool{k % 9}",
                "installed_version": f"1.{k % 9}",
                "fixed_version": f"1.{k % 9}.1",
            }
            for k in range(per_device)
        ]
        findings.append(dict(findings[0]))  # the same finding twice
        entries.append(
            {
                "name": f"host-{index:04d}.corp.example",
                "os_platform": "Linux",
                "device_group": "Servers",
                "software": [{"vendor": "acme", "product": "agent", "version": "7"}],
                "findings": findings,
            }
        )
    # The last device again under its short name: the same device, named by a second entry.
    entries.append({"name": f"host-{devices - 1:04d}", "findings": entries[-1]["findings"][:3]})
    document = {
        "schema": "remedium-inventory/1",
        "source": "unit-scanner",
        "scanned_at": "2026-11-01T08:00:00Z",
        "devices": entries,
    }
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def snapshot(session: Session) -> dict[str, Any]:
    """What an import wrote, without ids that depend on insertion order."""
    names = {row[0]: row[1] for row in session.execute(select(Device.id, Device.name))}
    products = {
        row[0]: row[1] for row in session.execute(select(Software.id, Software.product_key))
    }
    weaknesses = sorted(
        (names[d], products[s], v, i, f, fixed)
        for d, s, v, i, f, fixed in session.execute(
            select(
                Weakness.device_id,
                Weakness.software_id,
                Weakness.vulnerability_id,
                Weakness.installed_version,
                Weakness.fixed_version,
                Weakness.fixed_at,
            )
        )
    )
    installed = sorted(
        (names[d], products[s], v)
        for d, s, v in session.execute(
            select(
                InstalledSoftware.device_id,
                InstalledSoftware.software_id,
                InstalledSoftware.version,
            )
        )
    )
    return {"devices": sorted(names.values()), "weaknesses": weaknesses, "installed": installed}


def weakness_indexes(session: Session) -> set[str]:
    """The indexes of the tables a bulk load sets aside indexes of (weakness, installed
    software, device recommendations)."""
    found: set[str] = set()
    for table in ("weakness", "installed_software", "device_recommendation"):
        if session.get_bind().dialect.name == "sqlite":
            rows = session.execute(text(f"PRAGMA index_list({table})")).all()
            found |= {row[1] for row in rows}
        else:
            query = text("SELECT indexname FROM pg_indexes WHERE tablename = :t")
            found |= {row[0] for row in session.execute(query, {"t": table})}
    return found


def test_child_process_writes_what_the_importing_process_writes(
    session: Session, tmp_path: Path, in_child: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = native(tmp_path, devices=120, per_device=60)  # 7,200+ findings: two batches
    first = import_report(session, path, derive=False)
    assert in_child == ["big.json"]
    from_child = snapshot(session)
    session.rollback()

    monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", "1000")
    get_settings.cache_clear()
    second = import_report(session, path, derive=False)
    assert in_child == ["big.json"]  # not used again
    assert snapshot(session) == from_child
    assert first.as_dict() | {"import_id": None} == second.as_dict() | {"import_id": None}
    assert first.findings_added == 120 * 60
    assert first.devices_added == 120
    assert len(from_child["installed"]) == 120 * 10
    assert weakness_indexes(session) >= SECONDARY


def test_child_process_import_is_idempotent_and_marks_fixed(
    session: Session, tmp_path: Path, in_child: list[str]
) -> None:
    path = native(tmp_path, devices=30, per_device=200)
    import_report(session, path)
    again = import_report(session, path)
    assert (again.findings_added, again.findings_updated, again.findings_fixed) == (0, 0, 0)
    document = json.loads(path.read_text())
    document["scanned_at"] = "2026-11-02T08:00:00Z"
    for entry in document["devices"]:
        entry["findings"] = entry["findings"][:-20]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(document))
    later = import_report(session, newer)
    assert later.findings_fixed == 29 * 19 + 19  # the repeat and the short-name entry aside
    assert in_child == ["big.json", "big.json", "newer.json"]


def test_a_bad_file_fails_the_same_way_in_the_child(
    session: Session, tmp_path: Path, in_child: list[str]
) -> None:
    path = native(tmp_path, devices=10, per_device=5)
    document = json.loads(path.read_text())
    document["devices"][7]["device_value"] = 3
    path.write_text(json.dumps(document))
    with pytest.raises(ReportError, match=r"big\.json: devices\[7\]\.device_value") as failed:
        import_report(session, path)
    assert failed.value.filename == "big.json"
    assert failed.value.where.startswith("devices[7]")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Device)) == 0
    assert in_child == ["big.json"]


def test_writer_failing_half_way_stops_the_child_and_writes_nothing(
    session: Session, tmp_path: Path, in_child: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = native(tmp_path, devices=150, per_device=60)
    calls = {"n": 0}
    original = pipeline.ReportWriter.apply

    def failing(self: pipeline.ReportWriter, batch: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        original(self, batch)

    monkeypatch.setattr(pipeline.ReportWriter, "apply", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_report(session, path)
    session.rollback()
    for model in (Device, Weakness, Software, InstalledSoftware):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
    # The bulk load's deferred indexes came back with the rollback.
    assert weakness_indexes(session) >= SECONDARY


def test_a_crash_or_a_dead_child_is_an_error_naming_the_file() -> None:
    crash = io.BytesIO(pickle.dumps(("crash", "Traceback ...\nKeyError: 'x'")))
    with pytest.raises(RuntimeError, match=r"parser failed on r\.json:\nTraceback"):
        worker._receive(crash, io.BytesIO(), "r.json")
    with pytest.raises(RuntimeError, match="stopped unexpectedly: Killed"):
        worker._receive(io.BytesIO(), io.BytesIO(b"Killed"), "r.json")
    error = io.BytesIO(pickle.dumps(("error", "bad value", "devices[2]", "r.json")))
    with pytest.raises(ReportError) as refused:
        worker._receive(error, io.BytesIO(), "r.json")
    assert str(refused.value) == "r.json: devices[2]: bad value"


def test_stream_contains_finds_a_needle_across_blocks() -> None:
    data = io.BytesIO(b"x" * 10 + b'"Misconfigurations"' + b"y" * 10)
    for block in (3, 7, 11, 16, 64):
        assert stream_contains(data, b'"Misconfigurations"', block=block)
        assert data.tell() == 0
        assert not stream_contains(data, b'"Vulnerabilities"', block=block)


@pytest.mark.sqlite_only  # PostgreSQL always checks foreign keys: nothing to set aside there
def test_a_bulk_load_leaves_every_reference_sound_and_checks_them_again_after(
    engine: Any, tmp_path: Path, in_child: list[str]
) -> None:
    """On SQLite a bulk load does not look up again the references it has just made: they must
    all hold, and the next user of the connection must have foreign keys checked again."""
    assert engine.dialect.name == "sqlite"
    factory = session_factory(engine)
    with factory() as session:
        summary = import_report(session, native(tmp_path, devices=120, per_device=60))
        assert summary.findings_added == 120 * 60
        assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 0  # stopped
        assert session.execute(text("PRAGMA foreign_key_check")).all() == []
        session.commit()
    with factory() as session:
        assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        orphan = text(
            "INSERT INTO weakness (device_id, software_id, vulnerability_id, installed_version, "
            "source, first_seen, last_seen) VALUES (999999, 1, 'CVE-2024-1000', '', 'x', "
            "'2026-01-01', '2026-01-01')"
        )
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            session.execute(orphan)
    # A load that follows other writes of its transaction keeps the checks.
    with factory() as session:
        session.execute(text("UPDATE device SET name = name"))
        import_report(session, native(tmp_path, devices=3, per_device=2, name="after.json"))
        assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def _run_parser_process(
    path: Path, limits: str, check: str = "", env: dict[str, str] | None = None
) -> tuple[list[tuple[Any, ...]], str]:
    """Run the parser process's ``main`` in a fresh Python with ``limits`` on its command line:
    its messages, and what ``check`` (Python run after it) printed on standard error."""
    script = (
        "import sys\nfrom remedium.importers import worker\n"
        f"worker.main(['remedium', {str(path)!r}, {path.name!r}, '', {limits!r}])\n{check}"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, env=env, timeout=120
    )
    stream = io.BytesIO(done.stdout)
    messages: list[tuple[Any, ...]] = []
    while stream.tell() < len(done.stdout):
        messages.append(pickle.load(stream))
    return messages, done.stderr.decode()


def test_the_parser_process_checks_the_limits_it_is_handed_without_loading_the_settings(
    tmp_path: Path,
) -> None:
    """The importing process hands its limits to the parser process on the command line
    (``limits.Limits``), so the parser process starts without loading the settings (pydantic):
    a limit it is handed holds even where its own environment says otherwise."""
    path = native(tmp_path, devices=3, per_device=2)
    document = json.loads(path.read_text())
    document["devices"][1]["findings"][0]["description"] = "x" * 300_000
    path.write_text(json.dumps(document))
    environment = {**os.environ, "REMEDIUM_MAX_FIELD_MB": "64"}
    loaded = "print(sorted(m for m in ('pydantic', 'remedium.settings') if m in sys.modules), "
    loaded += "file=sys.stderr)"
    messages, stderr = _run_parser_process(path, "0.25,1024.0,100.0", loaded, environment)
    assert messages[-1][0] == "error", messages[-1]
    assert "REMEDIUM_MAX_FIELD_MB" in messages[-1][1]
    assert "0.25 MB" in messages[-1][1]
    assert stderr.strip() == "[]"
    # Handed a larger limit, the same file is read whole.
    messages, _ = _run_parser_process(path, "1.0,1024.0,100.0", env=environment)
    assert messages[-1] == ("done",)
    assert limits.Limits.from_argument(limits.Limits(0.25, 7.5, 1e5).as_argument()) == (
        limits.Limits(0.25, 7.5, 1e5)
    )


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own priority is Linux's")
def test_the_file_is_hashed_at_the_lowest_priority(
    session: Session, tmp_path: Path, in_child: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SHA-256 thread takes only the time the parser process and the importing thread
    leave unused (nice 19, its own thread only); the recorded digest is the file's."""
    path = native(tmp_path, devices=150, per_device=60)
    priorities: dict[str, int] = {}
    original = worker.file_sha256

    def spy(*args: Any) -> str:
        priorities["hashing"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return original(*args)

    monkeypatch.setattr(worker, "file_sha256", spy)
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    summary = import_report(session, path)
    run = session.get(ImportRun, summary.import_id)
    assert run is not None
    assert run.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert priorities == {"hashing": 19}
    # Only the hashing thread's own: this thread's is as it was.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
    assert in_child == ["big.json"]
