"""A report is written batch by batch; where the batches are cut must not change what is stored.

A device the import creates has nothing stored, so its findings are inserted without reading
back; findings of a product the file names for the first time in a batch are inserted the same
way even when the device's earlier findings were written by an earlier batch (one image with a
million findings). These tests cut a small report into batches of a few records and compare the
result with the same report written in one batch, and the SHA-256 the import records with the
file's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from remedium.importers import worker
from remedium.importers.models import ImportRun
from remedium.importers.service import import_report
from remedium.intel.importing import import_feed
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness
from remedium.inventory.service import bound, bulk_insert, table_of
from remedium.settings import get_settings
from tests.importers.test_placement import HEADER, nvd_record, write_nvd
from tests.support.orgs.builder import (
    NOW,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)


def stored(session: Session) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(
            Device.name,
            Software.vendor,
            Software.product,
            Weakness.vulnerability_id,
            Weakness.installed_version,
            Weakness.fixed_version,
            Weakness.fixed_at,
        )
        .join(Device, Device.id == Weakness.device_id)
        .join(Software, Software.id == Weakness.software_id)
    )
    return sorted(tuple(row) for row in rows)


def installed(session: Session) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(Device.name, Software.product, InstalledSoftware.version)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .join(Software, Software.id == InstalledSoftware.software_id)
    )
    return sorted(tuple(row) for row in rows)


def one_image(tmp_path: Path) -> Path:
    """One device; products come and come back; some findings are repeated far apart."""
    lines = [HEADER]
    for k in range(60):
        product = f"lib{k // 6}"  # six findings per product, products in order
        lines.append(f"img-1,,Linux,Lab,acme,{product},1.{k // 6},CVE-2024-{2000 + k},1.9,High\n")
    # Later in the file: a repeat, a new finding on an early product, a second device.
    lines.append("img-1,,Linux,Lab,acme,lib0,1.0,CVE-2024-2000,1.9,High\n")
    lines.append("img-1,,Linux,Lab,acme,lib1,1.1,CVE-2024-2999,1.9,High\n")
    lines.append("img-2,,Linux,Lab,acme,lib9,1.9,CVE-2024-2059,,Critical\n")
    path = tmp_path / "image.csv"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def batch_of(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sets how many records a batch holds (in the importing process)."""

    def set_batch(size: int) -> None:
        monkeypatch.setattr(worker, "BATCH", size)

    return set_batch


def test_cutting_one_device_into_batches_stores_what_one_batch_stores(
    session: Session, tmp_path: Path, batch_of: Any
) -> None:
    path = one_image(tmp_path)
    batch_of(7)
    small = import_report(session, path, derive=False)
    in_small_batches = stored(session)
    installed_in_small_batches = installed(session)
    session.rollback()

    batch_of(100_000)
    whole = import_report(session, path, derive=False)
    assert stored(session) == in_small_batches
    # Installs of a product first named in a later batch are inserted without reading back;
    # lib0 and lib1, named again far apart, are merged with what an earlier batch wrote.
    assert installed(session) == installed_in_small_batches
    assert len(installed_in_small_batches) == 11  # lib0..lib9 on img-1, lib9 on img-2
    assert small.installed_added == whole.installed_added == 11
    assert small.findings_added == whole.findings_added == 62
    assert len(in_small_batches) == 62
    assert (small.findings_updated, small.findings_reopened) == (0, 0)


def test_new_devices_and_products_of_many_batches_are_read_back_unprepared(
    session: Session, tmp_path: Path, batch_of: Any
) -> None:
    # Each batch adds devices and products; their ids are read back by key after the insert.
    # PostgreSQL must plan that read for its own keys every time: psycopg prepares a statement
    # run five times, and a generic plan chosen while the table was small (a sequential scan)
    # stayed chosen as a large import grew it (105 s of a 150,000-product CycloneDX import).
    lines = [HEADER]
    for k in range(40):
        lines.append(
            f"host-{k},10.8.0.{k},Linux,Lab,acme,tool{k},1.{k},CVE-2024-{4000 + k},,High\n"
        )
    path = tmp_path / "many.csv"
    path.write_text("".join(lines))
    batch_of(2)
    summary = import_report(session, path, derive=False)
    assert (summary.devices_added, summary.software_added, summary.findings_added) == (40, 40, 40)
    rows = stored(session)
    assert [(row[0], row[2]) for row in rows] == sorted(
        (f"host-{k}", f"tool{k}") for k in range(40)
    )
    if session.get_bind().dialect.name == "postgresql":
        prepared = session.execute(
            text(
                "SELECT statement FROM pg_prepared_statements "
                "WHERE statement LIKE '%identity_key%' OR statement LIKE '%product_key%'"
            )
        ).scalars()
        assert [s for s in prepared if "SELECT" in s.upper()] == []


def test_a_product_placed_early_and_named_later_is_stored_once(
    session: Session, tmp_path: Path, batch_of: Any
) -> None:
    import_feed(session, write_nvd(tmp_path, [nvd_record("CVE-2024-7777", ["acme:alpha"])]))
    lines = [HEADER, "host-a,10.9.0.1,Linux,Lab,,,,CVE-2024-7777,,High\n"]  # placed on alpha
    host = "host-a,10.9.0.1,Linux,Lab"
    lines += [f"{host},acme,lib{k},1.0,CVE-2024-{3000 + k},,\n" for k in range(9)]
    # Alpha named by the file itself, for the first time, several batches later.
    lines.append("host-a,10.9.0.1,Linux,Lab,acme,alpha,2.0,CVE-2024-7777,2.1,High\n")
    path = tmp_path / "scan.csv"
    path.write_text("".join(lines))
    batch_of(4)  # the last row's product and finding fall in one batch
    summary = import_report(session, path)
    alpha = [row for row in stored(session) if row[2] == "alpha"]
    # Within one file the first report of a finding stands (as within one batch).
    assert alpha == [("host-a", "acme", "alpha", "CVE-2024-7777", "", None, None)]
    assert summary.findings_placed == 1
    assert summary.findings_added == 10


@pytest.mark.parametrize("parser_process_mb", ["0", "1000"])
def test_the_recorded_sha256_is_the_files(
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parser_process_mb: str,
) -> None:
    monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", parser_process_mb)
    get_settings.cache_clear()
    try:
        path = one_image(tmp_path)
        summary = import_report(session, path)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    run = session.get(ImportRun, summary.import_id)
    assert run is not None
    assert run.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "source",
    [
        "O'Brien's scanner'); DROP TABLE weakness; --",
        # PostgreSQL text cannot hold a NUL character.
        pytest.param("nul\x00byte", marks=pytest.mark.sqlite_only),
        "plain",
    ],
)
def test_values_shared_by_every_row_are_stored_exactly(session: Session, source: str) -> None:
    """The scan's source and time are written once per statement on SQLite (as literals)."""
    group = make_group(session)
    device = make_device(session, group)
    software = make_software(session, "acme", "tool")
    make_vulnerability(session, "CVE-2024-0101")
    make_vulnerability(session, "CVE-2024-0102")
    session.flush()
    table = table_of(Weakness)
    at = bound(session, table.c.last_seen, NOW)
    rows = [
        (device.id, software.id, "CVE-2024-0101", "1.0", None),
        (device.id, software.id, "CVE-2024-0102", "1.0", "1.1"),
    ]
    bulk_insert(
        session,
        table,
        (
            "device_id",
            "software_id",
            "vulnerability_id",
            "installed_version",
            "fixed_version",
            "source",
            "first_seen",
            "last_seen",
            "fixed_at",
        ),
        rows,
        (source, at, at, None),
    )
    stored = session.execute(
        select(
            Weakness.vulnerability_id, Weakness.fixed_version, Weakness.source, Weakness.last_seen
        ).order_by(Weakness.vulnerability_id)
    ).all()
    assert [tuple(row) for row in stored] == [
        ("CVE-2024-0101", None, source, NOW),
        ("CVE-2024-0102", "1.1", source, NOW),
    ]
