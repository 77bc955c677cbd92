"""``remedium db backup`` taken while ``remedium import`` writes (another process), restored into
a fresh database: it holds the database as it was before the import, whole, at the newest schema."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from remedium.db.migrate import current_revision, head_revision
from remedium.db.session import make_engine, transaction
from remedium.importers.models import ImportRun
from remedium.inventory.models import Device, Weakness
from tests.support.orgs.big_scan import write_scan
from tests.support.pgcluster import PostgresCluster, create_database


def _cli(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "remedium.cli.main", *args]


def _env(database_url: str) -> dict[str, str]:
    return {**os.environ, "REMEDIUM_DATABASE_URL": database_url}


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cli(database_url, *args),
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _counts(engine: Engine) -> tuple[int, int, int]:
    with transaction(engine) as session:
        return (
            int(session.scalar(select(func.count()).select_from(Device)) or 0),
            int(session.scalar(select(func.count()).select_from(Weakness)) or 0),
            int(session.scalar(select(func.count()).select_from(ImportRun)) or 0),
        )


def _import_is_writing(engine: Engine, database_url: str) -> bool:
    """Whether an import holds the import lock now (it has started writing)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        probe = sqlite3.connect(path, timeout=0.05)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with engine.connect() as connection:
        held = connection.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        )
    return bool(held)


def _fresh_database(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return create_database(cluster, f"restored_{os.getpid()}_{time.monotonic_ns()}")


def test_backup_taken_during_an_import_restores_whole(
    engine: Engine, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    base = write_scan(tmp_path / "base.json", 40, prefix="base")
    big = write_scan(tmp_path / "big.json", 6000, prefix="host")
    assert _run(database_url, "import", str(base)).returncode == 0
    before = _counts(engine)
    assert before == (40, 240, 1)
    backup_file = tmp_path / "during-import.backup"
    importing = subprocess.Popen(
        _cli(database_url, "import", str(big)),
        env=_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _import_is_writing(engine, database_url):
            assert importing.poll() is None, importing.stderr.read() if importing.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        backup = _run(database_url, "db", "backup", str(backup_file))
        assert backup.returncode == 0, backup.stderr
        # The backup was taken while the import was still writing.
        during = importing.poll() is None
    finally:
        _out, err = importing.communicate(timeout=600)
    assert importing.returncode == 0, err
    assert during
    after = _counts(engine)
    assert after == (6040, 36240, 2)
    target_url = _fresh_database(request, database_url, tmp_path)
    restored = _run(target_url, "db", "restore", str(backup_file), "--yes")
    assert restored.returncode == 0, restored.stderr
    target = make_engine(target_url)
    try:
        # The import had not committed when the backup was taken: none of it, all of the rest.
        assert _counts(target) == before
        assert current_revision(target) == head_revision()
        if target_url.startswith("sqlite"):
            with target.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # The restored database works: the same import brings it where the original is.
        again = _run(target_url, "import", str(big))
        assert again.returncode == 0, again.stderr
        assert _counts(target) == after
    finally:
        target.dispose()


def test_restore_refuses_a_file_that_is_no_backup(database_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database")
    result = _run(database_url, "db", "restore", str(junk), "--yes")
    assert result.returncode == 1
    assert "is not a remedium backup" in " ".join(result.stderr.split())
