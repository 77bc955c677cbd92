"""Zip bombs, huge text fields and huge uploads are refused with the limit named; nothing changes.

The bombs are built here, smaller than the issue's 1.2 GB ones, with the limits set low where a
test needs them to bite early; ``tracemalloc`` shows the field limit holds while the file is read
(the refused field is never built whole).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from remedium.db.session import session_factory, transaction
from remedium.importers.limits import FieldGuard
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.service import import_report
from remedium.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures"
DETECTION = (FIXTURES / "qualys" / "host_detection.xml").read_bytes()
KNOWLEDGE_BASE = (FIXTURES / "qualys" / "knowledge_base.xml").read_bytes()
OS_ELEMENT = b"<OS><![CDATA[Ubuntu Linux 22.04.4 LTS]]></OS>"
REMEDIUM = Path(sys.executable).with_name("remedium")
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _limits(monkeypatch: pytest.MonkeyPatch, **values: float) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"REMEDIUM_{name.upper()}", str(value))
    get_settings.cache_clear()


def qualys_bomb(path: Path, filler: bytes, size: int, *, cdata: bool = False) -> Path:
    """A Qualys listing zip whose first host's ``<OS>`` holds ``size`` bytes of ``filler``
    (``b" "`` puts the bytes between elements instead)."""
    assert OS_ELEMENT in DETECTION
    before, after = DETECTION.split(OS_ELEMENT, 1)
    if filler == b" ":
        opening, closing = b"", OS_ELEMENT
    elif cdata:
        opening, closing = b"<OS><![CDATA[", b"]]></OS>"
    else:
        opening, closing = b"<OS>", b"</OS>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("host_detection.xml", "w") as member:
            member.write(before + opening)
            block = filler * MB
            for _ in range(size // MB):
                member.write(block)
            member.write(closing + after)
        archive.writestr("knowledge_base.xml", KNOWLEDGE_BASE)
    return path


def _runs(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(ImportRun)) or 0


def _refused_in_process(engine: Engine, path: Path) -> tuple[str, int]:
    """Import ``path`` in this process: the error and the peak of memory traced meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(ReportError) as refused, transaction(engine) as session:
            import_report(session, path, derive=False)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _runs(engine) == 0
    return str(refused.value), peak


def test_zip_bomb_is_refused_by_its_ratio_over_the_api(
    admin_client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    bomb = qualys_bomb(tmp_path / "bomb.zip", b"A", 64 * MB)
    assert bomb.stat().st_size < MB
    with bomb.open("rb") as upload:
        reply = admin_client.post(
            "/api/v1/imports", files={"file": ("bomb.zip", upload, "application/zip")}
        )
    assert reply.status_code == 422, reply.text
    assert "REMEDIUM_MAX_COMPRESSION_RATIO" in reply.json()["detail"]
    assert _runs(engine) == 0


@pytest.mark.parametrize(
    ("filler", "cdata"), [(b"A", False), (b"A", True), (b" ", False)], ids=["text", "cdata", "gap"]
)
def test_huge_text_field_is_refused_while_read(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filler: bytes, cdata: bool
) -> None:
    # A ratio the bomb passes: the field limit alone must stop it, before the field is built.
    _limits(monkeypatch, max_compression_ratio=100_000, max_field_mb=2)
    bomb = qualys_bomb(tmp_path / "bomb.zip", filler, 48 * MB, cdata=cdata)
    message, peak = _refused_in_process(engine, bomb)
    assert "REMEDIUM_MAX_FIELD_MB" in message
    assert "2 MB" in message
    assert peak < 16 * MB, peak


def test_decompressed_size_limit(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(monkeypatch, max_compression_ratio=100_000, max_decompressed_mb=4)
    bomb = qualys_bomb(tmp_path / "big.zip", b" ", 8 * MB)
    message, _peak = _refused_in_process(engine, bomb)
    assert "REMEDIUM_MAX_DECOMPRESSED_MB" in message
    assert "4 MB" in message


def test_a_normal_zip_still_imports(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "qualys.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("host_detection.xml", DETECTION)
        archive.writestr("knowledge_base.xml", KNOWLEDGE_BASE)
    with transaction(engine) as session:
        summary = import_report(session, path, derive=False)
    assert summary.devices_added == 3


def test_huge_json_string_is_refused_while_read(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(monkeypatch, max_field_mb=1)
    path = tmp_path / "scan.json"
    head = json.dumps(
        {
            "schema": "remedium-inventory/1",
            "source": "x",
            "scanned_at": "2026-11-01T08:00:00Z",
            "devices": [{"name": ""}],
        }
    )
    opening, closing = head.split('"name": ""', 1)
    with path.open("wb") as out:
        out.write(f'{opening}"name": "'.encode())
        for _ in range(12):
            out.write(b'\\"x' * (MB // 3))  # escaped quotes do not end the string
        out.write(f'"{closing}'.encode())
    message, peak = _refused_in_process(engine, path)
    assert "REMEDIUM_MAX_FIELD_MB" in message
    assert peak < 12 * MB, peak


@pytest.mark.parametrize("quoted", [False, True], ids=["line", "quoted"])
def test_huge_csv_cell_is_refused(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quoted: bool
) -> None:
    _limits(monkeypatch, max_field_mb=1)
    header = (FIXTURES / "csv" / "findings.csv").read_bytes().splitlines()[0]
    path = tmp_path / "findings.csv"
    with path.open("wb") as out:
        out.write(header + b"\n" + (b'"' if quoted else b""))
        for _ in range(6):
            out.write((b"x\n" if quoted else b"xx") * (MB // 2))
        out.write((b'"' if quoted else b"") + b",1.2.3.4,Linux,,a,b,1,CVE-2024-0001,,High\n")
    message, _peak = _refused_in_process(engine, path)
    assert "REMEDIUM_MAX_FIELD_MB" in message


def test_upload_limit_is_said_in_the_error(
    admin_client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(monkeypatch, max_upload_mb=1)
    body = b"x" * (2 * MB)
    reply = admin_client.post("/api/v1/imports", files={"file": ("big.json", body)})
    assert reply.status_code == 413
    assert "1 MB (REMEDIUM_MAX_UPLOAD_MB)" in reply.json()["detail"]

    def chunks() -> Iterator[bytes]:
        yield b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n\r\n'
        for _ in range(4):
            yield b"y" * (MB // 2)

    chunked = admin_client.post(
        "/api/v1/imports",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert chunked.status_code == 413, chunked.text
    assert "REMEDIUM_MAX_UPLOAD_MB" in chunked.json()["detail"]
    page = admin_client.post(
        "/imports", files={"file": ("big.json", body)}, headers={"Accept": "text/html"}
    )
    assert page.status_code == 413
    assert "1 MB (REMEDIUM_MAX_UPLOAD_MB)" in page.text
    assert _runs(engine) == 0


def test_cli_refuses_a_zip_bomb(database_url: str, engine: Engine, tmp_path: Path) -> None:
    bomb = qualys_bomb(tmp_path / "bomb.zip", b" ", 64 * MB)
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    done = subprocess.run(
        [str(REMEDIUM), "import", str(bomb)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "REMEDIUM_MAX_COMPRESSION_RATIO" in done.stderr.replace("\n", "")
    assert _runs(engine) == 0


def test_live_upload_limit_names_the_limit(
    live_server: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(monkeypatch, max_upload_mb=1)
    reply = httpx.post(
        f"{live_server}/api/v1/imports",
        headers={"Authorization": f"Bearer {admin_token}"},
        files={"file": ("big.json", io.BytesIO(b"z" * (3 * MB)))},
    )
    assert reply.status_code == 413
    assert "REMEDIUM_MAX_UPLOAD_MB" in reply.json()["detail"]


def test_a_json_block_ends_at_its_last_quote_not_right_after_a_backslash() -> None:
    """The guard's run after a JSON block starts at its last quote that no backslash precedes
    (found by ``rfind``); checked against that rule written as a regular expression over the
    reversed block, on every block of up to 7 bytes of quotes, backslashes and letters."""
    rule = re.compile(rb'"(?!\\)')
    guard = FieldGuard(io.BytesIO(), "json", "r.json", 1 << 20)
    for size in range(8):
        for block in map(bytes, itertools.product(b'"\\a', repeat=size)):
            found = rule.search(block[::-1])
            expected = -1 if found is None else len(block) - 1 - found.start()
            assert guard._last_end(block) == expected, block
