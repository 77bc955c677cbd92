"""Reports that do not name their device: ``--device NAME`` on import (CLI, API, page).

A Wazuh 4.7 API export of one agent (``GET /vulnerability/{agent_id}``) names the agent only in
the request URL, and a syscollector dump's ``metadata`` may name none. The parser gives their
records the device reference ``UNNAMED``; the import puts them on the device the user names
(matched by name, or created) or, without one, skips them with the reason. Corpus counts are
read here with ``json`` and a regular expression of our own, not with the parser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.importers.batches import UNNAMED
from remedium.importers.formats.wazuh import WazuhParser
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    SkippedRecord,
    SoftwareRecord,
)
from remedium.importers.service import import_report
from remedium.inventory.models import Device, InstalledSoftware, Software, Weakness
from remedium.settings import get_settings
from tests.support.signin import user_with_token

HERE = Path(__file__).parent
WAZUH = HERE / "fixtures" / "wazuh"
AGENT_EXPORT = WAZUH / "agent_vulnerabilities.json"  # GET /vulnerability/{agent_id}, 4.7
DUMP = WAZUH / "syscollector_dump_unnamed.json"  # syscollector items, metadata names no agent
CORPUS_47 = "wazuh/dd_wazuh_v4-7_many_findings.json"
CORPUS_DUMPS = [
    "inventory/wazuh/wazuh_syscollector_sync_debian.json",
    "inventory/wazuh/wazuh_syscollector_sync_windows.json",
]
REMEDIUM = Path(sys.executable).with_name("remedium")
NO_DEVICE = "{} in a report that does not name its device (give the device: --device NAME)"
# What the fixture holds: four findings on three packages (and one made-up id).
EXPORT_FINDINGS = {
    ("openssl", "CVE-2023-5678"),
    ("curl", "CVE-2023-38545"),
    ("curl", "CVE-2023-38546"),
    ("zlib1g", "CVE-2022-37434"),
}
EXPORT_SOFTWARE = {
    ("openssl", "3.0.2-0ubuntu1.10"),
    ("curl", "7.81.0-1ubuntu1.13"),
    ("zlib1g", "1:1.2.11.dfsg-2ubuntu9"),
}
DUMP_SOFTWARE = {("libc6", "2.28-10+deb10u2"), ("libcurl4", "7.64.0-4+deb10u8")}
# A vulnerability id the parser keeps: a well-formed CVE id, or any id not posing as one.
VALID_ID = re.compile(r"^(CVE-\d{4}-\d{4,}|(?!CVE-)\S+)$")


def parse(path: Path) -> list[ImportRecord]:
    with path.open("rb") as stream:
        _info, records = WazuhParser().parse(stream, path.name)
        return list(records)


def parse_bytes(data: bytes, filename: str) -> list[ImportRecord]:
    _info, records = WazuhParser().parse(BytesIO(data), filename)
    return list(records)


def of(records: list[ImportRecord], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


def reasons(entries: list[dict[str, Any]]) -> dict[str, int]:
    """A summary's ``skipped`` list as {reason: count}."""
    return {entry["reason"]: entry["count"] for entry in entries}


def count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def placed(session: Session) -> dict[str, set[tuple[str, str]]]:
    """Device name → its weaknesses as (product, vulnerability id)."""
    rows = session.execute(
        select(Device.name, Software.product, Weakness.vulnerability_id)
        .join(Weakness, Weakness.device_id == Device.id)
        .join(Software, Software.id == Weakness.software_id)
    ).all()
    result: dict[str, set[tuple[str, str]]] = {}
    for device, product, vulnerability in rows:
        result.setdefault(device, set()).add((product, vulnerability))
    return result


def installed(session: Session) -> dict[str, set[tuple[str, str]]]:
    """Device name → its installed software as (product, version)."""
    rows = session.execute(
        select(Device.name, Software.product, InstalledSoftware.version)
        .join(InstalledSoftware, InstalledSoftware.device_id == Device.id)
        .join(Software, Software.id == InstalledSoftware.software_id)
    ).all()
    result: dict[str, set[tuple[str, str]]] = {}
    for device, product, version in rows:
        result.setdefault(device, set()).add((product, version))
    return result


@pytest.fixture(params=["in process", "parser process"])
def parser_place(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each import once in the importing process and once through the parser process
    (``importers/worker.py``), which must hand the device name on."""
    if request.param == "parser process":
        monkeypatch.setenv("REMEDIUM_IMPORT_PARSER_PROCESS_MB", "0")
    get_settings.cache_clear()
    yield str(request.param)
    monkeypatch.undo()
    get_settings.cache_clear()


# --- the parser ----------------------------------------------------------------------------------


def test_agent_export_items_name_no_device_and_keep_their_fields() -> None:
    records = parse(AGENT_EXPORT)
    assert not of(records, DeviceRecord)  # the pipeline makes the device from the given name
    findings = of(records, FindingRecord)
    assert {f.device_ref for f in findings} == {UNNAMED}
    assert {(f.product, f.vulnerability_id) for f in findings} == EXPORT_FINDINGS
    openssl = findings[0]
    assert (openssl.installed_version, openssl.fixed_version, openssl.severity) == (
        "3.0.2-0ubuntu1.10",
        "3.0.2-0ubuntu1.12",
        "Medium",
    )
    assert (openssl.cvss_v3_score, openssl.title) == (5.3, "CVE-2023-5678 affects openssl")
    assert (findings[3].product, findings[3].fixed_version) == ("zlib1g", "")  # unfixed
    # A made-up id is still refused, whatever the device.
    (bad,) = of(records, SkippedRecord)
    assert (bad.reason, bad.where) == (
        "not a vulnerability id: 'CVE-YYYY-1234'",
        "data.affected_items[4]",
    )


def test_syscollector_dump_without_agent_gives_unnamed_software() -> None:
    records = parse(DUMP)
    assert not of(records, DeviceRecord)
    software = of(records, SoftwareRecord)
    assert [(s.device_ref, s.product, s.version, s.display_vendor) for s in software] == [
        (
            UNNAMED,
            "libc6",
            "2.28-10+deb10u2",
            "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        ),
        (UNNAMED, "libcurl4", "7.64.0-4+deb10u8", "Alessandro Ghedini <ghedo@debian.org>"),
    ]
    assert [(s.reason, s.where) for s in of(records, SkippedRecord)] == [
        ("package without a name or version", "items[2]"),
        ("inventory not used by remedium (wazuh-states-inventory-processes)", "items[3]"),
    ]


def test_syscollector_dump_naming_its_agent_still_names_the_device() -> None:
    document = json.loads(DUMP.read_text())
    document["metadata"]["agent"] = {"id": "042", "name": "db-02"}
    records = parse_bytes(json.dumps(document).encode(), "named_dump.json")
    (device,) = of(records, DeviceRecord)
    assert (device.device_ref, device.name, device.asset_id) == ("042", "db-02", "042")
    assert {s.device_ref for s in of(records, SoftwareRecord)} == {"042"}


def test_syscollector_items_before_the_metadata_are_refused() -> None:
    document = json.loads(DUMP.read_text())
    reordered = {"items": document["items"], "metadata": document["metadata"]}
    with pytest.raises(ReportError, match=r"late_metadata\.json: items\[0\]: items before"):
        parse_bytes(json.dumps(reordered).encode(), "late_metadata.json")


# --- the pipeline (both databases) ---------------------------------------------------------------


def test_agent_export_with_a_device_places_the_findings_on_it(
    session: Session, parser_place: str
) -> None:
    summary = import_report(session, AGENT_EXPORT, device_name="  web-01  ")
    assert (summary.devices_added, summary.findings_added) == (1, len(EXPORT_FINDINGS))
    assert reasons(summary.skipped) == {"not a vulnerability id: 'CVE-YYYY-1234'": 1}
    assert placed(session) == {"web-01": EXPORT_FINDINGS}
    assert installed(session) == {"web-01": EXPORT_SOFTWARE}  # the findings' packages
    # Again, the device named in other case: the same device, nothing new.
    again = import_report(session, AGENT_EXPORT, device_name="WEB-01")
    assert (again.devices_added, again.findings_added, again.installed_added) == (0, 0, 0)
    assert count(session, Device) == 1


def test_agent_export_without_a_device_is_skipped_with_the_reason(
    session: Session, parser_place: str
) -> None:
    summary = import_report(session, AGENT_EXPORT)
    assert reasons(summary.skipped) == {
        NO_DEVICE.format("Finding"): len(EXPORT_FINDINGS),
        "not a vulnerability id: 'CVE-YYYY-1234'": 1,
    }
    assert (summary.devices_added, summary.findings_added) == (0, 0)
    assert (count(session, Device), count(session, Weakness)) == (0, 0)


def test_agent_export_goes_to_a_device_known_from_another_report(
    session: Session, tmp_path: Path
) -> None:
    cmdb = tmp_path / "cmdb.json"
    cmdb.write_text(
        json.dumps(
            {
                "schema": "remedium-inventory/1",
                "source": "cmdb",
                "scanned_at": "2024-01-01T00:00:00Z",
                "devices": [{"name": "web-01.corp.example"}, {"name": "db-01"}],
            }
        )
    )
    import_report(session, cmdb)
    summary = import_report(session, AGENT_EXPORT, device_name="web-01")
    assert summary.devices_added == 0  # matched by its short host name
    assert count(session, Device) == 2
    assert placed(session) == {"web-01.corp.example": EXPORT_FINDINGS}


def test_syscollector_dump_with_a_device_gives_its_software_rows(
    session: Session, parser_place: str
) -> None:
    summary = import_report(session, DUMP, device_name="deb-10")
    assert summary.devices_added == 1
    assert installed(session) == {"deb-10": DUMP_SOFTWARE}
    assert reasons(summary.skipped) == {
        "package without a name or version": 1,
        "inventory not used by remedium (wazuh-states-inventory-processes)": 1,
    }
    without = import_report(session, DUMP)  # the same dump, no device: its software skipped
    assert reasons(without.skipped)[NO_DEVICE.format("Software")] == len(DUMP_SOFTWARE)


# --- the corpus ----------------------------------------------------------------------------------


def corpus_items(corpus: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((corpus / CORPUS_47).read_text())["data"][
        "affected_items"
    ]
    return items


def test_corpus_47_export_names_no_agent_and_its_ids_are_made_up(
    corpus: Path, session: Session
) -> None:
    items = corpus_items(corpus)
    assert not [i for i in items if i.get("agent_id") or i.get("agent_name") or i.get("agent_ip")]
    # Read independently: every item's id poses as a CVE without being one ("CVE-YYYY-…").
    bad = Counter(
        f"not a vulnerability id: {i['cve']!r}" for i in items if not VALID_ID.match(i["cve"])
    )
    assert sum(bad.values()) == len(items) == 13
    summary = import_report(session, corpus / CORPUS_47, device_name="web-01")
    # Nothing to place, so the named device is not created either.
    assert reasons(summary.skipped) == dict(bad)
    assert (summary.devices_added, count(session, Device), count(session, Weakness)) == (0, 0, 0)


def test_corpus_47_export_with_real_ids_lands_on_the_named_device(
    corpus: Path, session: Session, tmp_path: Path
) -> None:
    # The corpus file as it is, but with well-formed ids (one per made-up id), so its items are
    # findings: every item of the real export then belongs to the device given on import.
    document = json.loads((corpus / CORPUS_47).read_text())
    items = document["data"]["affected_items"]
    ids = {old: f"CVE-2099-{10001 + n}" for n, old in enumerate(sorted({i["cve"] for i in items}))}
    for item in items:
        item["cve"] = ids[item["cve"]]
    path = tmp_path / "v4-7_agent_001.json"
    path.write_text(json.dumps(document))
    expected = {(i["name"].lower(), i["cve"]) for i in items}
    assert len(expected) == 13  # no two items share (package, id)

    without = import_report(session, path)
    assert reasons(without.skipped) == {NO_DEVICE.format("Finding"): 13}
    assert count(session, Device) == 0

    summary = import_report(session, path, device_name="agent-001")
    assert (summary.devices_added, summary.findings_added) == (1, len(expected))
    assert placed(session) == {"agent-001": expected}
    assert summary.skipped == []


@pytest.mark.parametrize("relative", CORPUS_DUMPS)
def test_corpus_syscollector_dumps_import_with_a_device(
    corpus: Path, session: Session, relative: str
) -> None:
    document = json.loads((corpus / relative).read_text())
    assert "agent" not in document["metadata"]
    # Read independently: these benchmark dumps hold no package items, so nothing is software.
    indexes = Counter(str(item["index"]) for item in document["items"])
    assert not [name for name in indexes if name.endswith("-packages")]
    summary = import_report(session, corpus / relative, device_name="bench-host")
    assert reasons(summary.skipped) == {
        f"inventory not used by remedium ({name})": n for name, n in indexes.items()
    }
    assert (count(session, Device), count(session, InstalledSoftware)) == (0, 0)


# --- the CLI -------------------------------------------------------------------------------------


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_import_with_device(database_url: str, engine: Engine) -> None:
    without = run(database_url, "import", str(AGENT_EXPORT), "--json")
    assert without.returncode == 0, without.stderr
    assert reasons(json.loads(without.stdout)["skipped"])[NO_DEVICE.format("Finding")] == 4

    result = run(
        database_url, "import", str(AGENT_EXPORT), str(DUMP), "--device", "web-01", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["devices_added"] == 1  # both files describe the one device given
    assert summary["findings_added"] == len(EXPORT_FINDINGS)
    with session_factory(engine)() as session:
        assert placed(session) == {"web-01": EXPORT_FINDINGS}
        # The dump is inventory only (not a complete scan): it adds software, removes none.
        assert installed(session) == {"web-01": EXPORT_SOFTWARE | DUMP_SOFTWARE}


def test_cli_refuses_a_blank_or_too_long_device_name(database_url: str, engine: Engine) -> None:
    for name in ("   ", "x" * 256):
        result = run(database_url, "import", str(AGENT_EXPORT), "--device", name)
        assert result.returncode == 2
        assert "device name of 1 to 255 characters" in result.stderr
    with session_factory(engine)() as session:
        assert count(session, Device) == 0


# --- the API -------------------------------------------------------------------------------------


def test_api_upload_with_the_device_field(live_server: str, engine: Engine) -> None:
    headers = {"Authorization": f"Bearer {user_with_token(engine, 'importer')}"}
    body = AGENT_EXPORT.read_bytes()

    def upload(**data: str) -> httpx.Response:
        return httpx.post(
            f"{live_server}/api/v1/imports",
            headers=headers,
            files={"file": ("agent_001.json", body, "application/json")},
            data=data,
            timeout=30,
        )

    for bad in ("   ", "x" * 256):
        refused = upload(device=bad)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "device"]
    reply = upload(device="  web-01 ")
    assert reply.status_code == 201, reply.text
    run_ = reply.json()
    assert (run_["summary"]["devices_added"], run_["summary"]["findings_added"]) == (1, 4)
    with session_factory(engine)() as session:
        assert placed(session) == {"web-01": EXPORT_FINDINGS}  # the name stripped

    skipped = upload()  # no device field: the findings are skipped, with the reason
    assert skipped.status_code == 201
    assert reasons(skipped.json()["summary"]["skipped"])[NO_DEVICE.format("Finding")] == 4

    schema = httpx.get(f"{live_server}/openapi.json", headers=headers).json()
    form = schema["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]
    ref = form["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    device = schema["components"]["schemas"][ref]["properties"]["device"]
    assert "names none" in device["description"]
    assert {"type": "string", "minLength": 1, "maxLength": 255} in device["anyOf"]


# --- the page ------------------------------------------------------------------------------------


def test_page_uploads_a_report_for_the_device_given(
    signed_in_page: Any, live_server: str, engine: Engine, artifacts: Path
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/imports")
    field = page.get_by_label("Device (for reports that name none)")
    assert field.get_attribute("name") == "device"
    page.set_input_files("input[name=file]", str(AGENT_EXPORT))
    field.fill("web-01")
    page.click("button:text('Import')")
    page.wait_for_selector("[data-testid=import-done]")
    text = page.locator("#imports tbody tr").first.inner_text()
    assert "1 devices added" in text
    assert "4 findings added" in text
    page.screenshot(path=str(artifacts / "import-page-device.png"), full_page=True)
    # The same report without a device: the history row says why nothing was placed.
    page.set_input_files("input[name=file]", str(AGENT_EXPORT))
    page.click("button:text('Import')")
    # The message of the first import is still shown until the page is replaced: wait for the row.
    page.locator("#imports tbody tr").nth(1).wait_for()
    text = page.locator("#imports tbody tr").first.inner_text()
    assert "skipped 4: Finding in a report that does not name its device" in text
    with session_factory(engine)() as session:
        assert placed(session) == {"web-01": EXPORT_FINDINGS}


def test_page_refuses_a_device_name_over_255_characters(admin_client: Any, engine: Engine) -> None:
    reply = admin_client.post(
        "/imports",
        files={"file": ("agent_001.json", AGENT_EXPORT.read_bytes(), "application/json")},
        data={"device": "x" * 256},
    )
    assert reply.status_code == 422
    assert "device name is longer than 255 characters" in reply.text
    with session_factory(engine)() as session:
        assert count(session, Device) == 0
