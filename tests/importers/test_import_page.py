"""The import page: upload with CSRF in a real browser, refusals, history with summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from remedium.audit.models import AuditEvent
from remedium.db.session import session_factory
from remedium.importers.models import ImportRun
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, DeviceGroup, Weakness

HERE = Path(__file__).parent
NESSUS = HERE / "fixtures" / "nessus" / "two_hosts.nessus"
MATCHING = HERE.parent / "intel" / "fixtures" / "matching"
KEV = HERE.parent / "intel" / "fixtures" / "kev.json"


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_factory(engine)() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Device)) or 0),
            int(session.scalar(select(func.count()).select_from(Weakness)) or 0),
            int(session.scalar(select(func.count()).select_from(ImportRun)) or 0),
        )


def test_upload_report_and_feed_then_history_shows_summaries(
    signed_in_page: Any, live_server: str, engine: Engine, artifacts: Path
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/imports")
    assert page.locator("nav a[href='/imports']").count() == 1
    assert "Nothing imported yet" in page.inner_text("main")
    page.set_input_files("input[name=file]", str(NESSUS))
    page.fill("input[name=device_group]", "Datacenter")
    page.click("button:text('Import')")
    page.wait_for_selector("[data-testid=import-done]")
    row = page.locator("#imports tbody tr").first
    text = row.inner_text()
    assert "two_hosts.nessus" in text
    assert "nessus" in text
    assert "Datacenter" in text
    assert "2 devices added" in text
    # An intelligence feed through the same form, then an SBOM matched against it.
    page.set_input_files("input[name=file]", str(MATCHING / "osv_lodash.json"))
    page.select_option("select[name=format]", "feed:")
    page.click("button:text('Import')")
    page.wait_for_selector("[data-testid=import-done]")
    assert "1 affected ranges added" in page.locator("#imports tbody tr").first.inner_text()
    page.set_input_files("input[name=file]", str(MATCHING / "sbom_lodash.cdx.json"))
    page.click("button:text('Import')")
    page.wait_for_selector("[data-testid=import-done]")
    assert "1 devices matched" in page.locator("#imports tbody tr").first.inner_text()
    page.screenshot(path=str(artifacts / "import-page.png"), full_page=True)
    assert page.locator("#imports tbody tr").count() == 3
    with session_factory(engine)() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(DeviceGroup)
                .where(DeviceGroup.name == "Datacenter")
            )
            == 1
        )
        assert session.get(Vulnerability, "CVE-2021-23337") is not None
        actions = list(session.scalars(select(AuditEvent.action)))
        assert actions.count("import.create") == 3


def test_refused_upload_says_why_and_changes_nothing(
    signed_in_page: Any, live_server: str, engine: Engine, tmp_path: Path
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/imports")
    bad = tmp_path / "inventory.xml"
    bad.write_text("<nmaprun><host/></nmaprun>")
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:text('Import')")
    alert = page.locator("[data-testid=import-error]")
    alert.wait_for()
    assert "format not recognised" in alert.inner_text()
    assert "inventory.xml" in alert.inner_text()
    assert counts(engine) == (0, 0, 0)


def test_form_post_without_csrf_token_is_rejected(
    signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/imports")
    reply = page.request.post(
        f"{live_server}/imports",
        multipart={
            "file": {
                "name": "kev.json",
                "mimeType": "application/json",
                "buffer": KEV.read_bytes(),
            },
            "format": "feed:",
        },
    )
    assert reply.status == 403
    assert counts(engine) == (0, 0, 0)


def test_page_needs_the_admin_right(admin_client: Any) -> None:
    reply = admin_client.get("/imports")
    assert reply.status_code == 200
    assert "Import a file" in reply.text

    with TestClient(admin_client.app, follow_redirects=False) as anonymous:
        reply = anonymous.get("/imports")
    assert reply.status_code in (303, 307, 401)  # sent to sign in, never shown the page
    assert "Import a file" not in reply.text


def test_check_first_shows_what_would_change_and_changes_nothing(
    signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/imports")
    page.set_input_files("input[name=file]", str(NESSUS))
    page.click("button:text('Check first')")
    page.wait_for_selector("[data-testid=import-check]")
    text = page.inner_text("[data-testid=import-check]")
    assert "nothing was changed" in text
    assert "2 devices added" in text
    assert counts(engine) == (0, 0, 0)
    # Then the import itself, with the complete-scan box ticked.
    page.set_input_files("input[name=file]", str(NESSUS))
    page.check("input[name=complete]")
    page.click("button[value=import]")
    page.wait_for_selector("[data-testid=import-done]")
    assert counts(engine)[0] == 2
