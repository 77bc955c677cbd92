"""Uploading reports over real HTTP: the import record comes back; a bad file changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from remedium.db.session import session_factory
from remedium.inventory.models import Device
from tests.importers.test_native_format import native_document
from tests.support.signin import user_with_token


def test_upload_imports_and_lists(live_server: str, engine: Engine, tmp_path: Path) -> None:
    token = user_with_token(engine, "importer")
    headers = {"Authorization": f"Bearer {token}"}
    body = json.dumps(native_document()).encode()
    reply = httpx.post(
        f"{live_server}/api/v1/imports",
        headers=headers,
        files={"file": ("scan.json", body, "application/json")},
        data={"device_group": "Uploaded"},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    run = reply.json()
    assert run["filename"] == "scan.json"
    assert run["format"] == "remedium"
    assert run["summary"]["devices_added"] == 2
    assert run["summary"]["findings_added"] == 1
    assert run["imported_by"] == "importer"

    listing = httpx.get(f"{live_server}/api/v1/imports", headers=headers).json()
    assert listing["total"] == 1
    assert listing["items"][0]["id"] == run["id"]

    bad = native_document()
    bad["devices"][1]["tags"] = "not-a-list"
    refused = httpx.post(
        f"{live_server}/api/v1/imports",
        headers=headers,
        files={"file": ("bad.json", json.dumps(bad).encode(), "application/json")},
        timeout=30,
    )
    assert refused.status_code == 422
    assert "devices[1].tags" in refused.json()["detail"]
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 2


def test_schema_is_public(live_server: str) -> None:
    reply = httpx.get(f"{live_server}/schemas/remedium-inventory.json")
    assert reply.status_code == 200
    assert reply.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_upload_needs_sign_in(live_server: str) -> None:
    reply = httpx.post(
        f"{live_server}/api/v1/imports", files={"file": ("a.json", b"{}", "application/json")}
    )
    assert reply.status_code in (401, 403)


def test_check_answers_what_an_import_would_do_and_changes_nothing(
    live_server: str, engine: Engine
) -> None:
    token = user_with_token(engine, "checker")
    headers = {"Authorization": f"Bearer {token}"}
    fixtures = Path(__file__).parent / "fixtures" / "fidelity"
    report = (fixtures / "grype_no_source.json").read_bytes()
    reply = httpx.post(
        f"{live_server}/api/v1/imports/check",
        headers=headers,
        files={"file": ("scan.json", report, "application/json")},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    checked = reply.json()
    assert (checked["dry_run"], checked["import_id"], checked["format"]) == (True, None, "grype")
    assert (checked["devices_added"], checked["findings_added"]) == (1, 4)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 0
    # A CSV export fixes nothing unless the upload says it is a complete scan.
    csv = (fixtures / "nessus_cut.csv").read_bytes()
    first = httpx.post(
        f"{live_server}/api/v1/imports",
        headers=headers,
        files={"file": ("scan.csv", csv, "text/csv")},
        timeout=60,
    )
    assert first.status_code == 201, first.text
    cut = b"".join(csv.splitlines(keepends=True)[:2])
    for complete, fixed in (("false", 0), ("true", 1)):
        again = httpx.post(
            f"{live_server}/api/v1/imports",
            headers=headers,
            files={"file": ("scan.csv", cut, "text/csv")},
            data={"complete": complete},
            timeout=60,
        )
        assert again.status_code == 201, again.text
        assert again.json()["summary"]["findings_fixed"] == fixed
    refused = httpx.post(
        f"{live_server}/api/v1/imports/check",
        headers=headers,
        files={"file": ("scan.csv", csv.splitlines(keepends=True)[0], "text/csv")},
        timeout=60,
    )
    assert refused.status_code == 422
    assert "a header and no rows" in refused.json()["detail"]
