"""In Chromium: file an exception from a recommendation's page, watch the dashboard's exposure
score after exceptions and the recommendation list follow, cancel it, and see both return."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from remedium.db.session import transaction
from remedium.recommendations.service import recompute
from remedium.settings import get_settings
from tests.support.orgs.worked_example import CHROME, build_example


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def example(engine: Engine) -> None:
    with transaction(engine) as session:
        build_example(session)
        # As of now: the live server files and recomputes at the real time.
        recompute(session)


def _chrome_rows(page: Any) -> int:
    return int(page.locator(f"#recommendations a[href='/recommendations/{CHROME}']").count())


@pytest.mark.browser
def test_exception_changes_the_scores_and_the_list_then_cancel_restores_them(
    signed_in_page: Any, live_server: str, example: None, artifacts: Path, engine: Engine
) -> None:
    page = signed_in_page
    database_kind = engine.dialect.name
    page.goto(f"{live_server}/")
    before = page.get_by_test_id("exposure-score").inner_text()
    assert page.get_by_test_id("exposure-score-after").count() == 0
    page.goto(f"{live_server}/recommendations")
    assert _chrome_rows(page) == 1

    # From the recommendation's page: "Exception options".
    page.goto(f"{live_server}/recommendations/{CHROME}")
    page.get_by_test_id("exception-options").click()
    page.wait_for_url(lambda url: "/remediation/exceptions/new" in url)
    preview = page.get_by_test_id("preview-exposure").inner_text()
    page.screenshot(
        path=str(artifacts / f"exception-form-preview-{database_kind}.png"), full_page=True
    )
    page.get_by_label("Compensating/alternate control").check()
    page.fill("textarea[name=context]", "Browser isolation gateway in front of every kiosk")
    page.click("button[type=submit]:has-text('Submit')")
    page.wait_for_url(lambda url: "/remediation/exceptions/" in url and "new" not in url)
    exception_url = page.url
    assert page.get_by_test_id("exception-status").inner_text() == "In effect"

    # The dashboard shows the score after exceptions: what the preview announced.
    page.goto(f"{live_server}/")
    assert page.get_by_test_id("exposure-score").inner_text() == before
    after = page.get_by_test_id("exposure-score-after").inner_text()
    # The dashboard shows one decimal.
    assert f"{float(preview):.1f}" in after
    assert float(preview) < float(before)
    page.screenshot(
        path=str(artifacts / f"exception-dashboard-{database_kind}.png"), full_page=True
    )

    # Chrome left the default list; "Show exceptions" brings it back with its status.
    page.goto(f"{live_server}/recommendations")
    assert _chrome_rows(page) == 0
    page.get_by_test_id("show-exceptions").click()
    page.wait_for_url(lambda url: "status=all" in url)
    assert _chrome_rows(page) == 1
    assert page.get_by_test_id("rec-status").first.inner_text() == "Full exception"
    assert page.get_by_test_id("exposed-after").first.inner_text() == "0"
    page.screenshot(path=str(artifacts / f"exception-list-{database_kind}.png"), full_page=True)

    # The recommendation's page lists the exception covering it.
    page.goto(f"{live_server}/recommendations/{CHROME}")
    assert page.get_by_test_id("covering-exceptions").count() == 1

    # Cancel: the score and the recommendation return.
    page.goto(exception_url)
    page.get_by_test_id("cancel-all").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(lambda url: not url.endswith("/cancel"))
    assert page.get_by_test_id("exception-status").inner_text() == "Canceled"
    page.goto(f"{live_server}/")
    assert page.get_by_test_id("exposure-score-after").count() == 0
    assert page.get_by_test_id("exposure-score").inner_text() == before
    page.goto(f"{live_server}/recommendations")
    assert _chrome_rows(page) == 1
    assert page.get_by_test_id("rec-status").first.inner_text() == "Active"

    # The vulnerability page offers a CVE exception.
    page.goto(f"{live_server}/vulnerabilities/CVE-2026-0001")
    page.get_by_test_id("file-cve-exception").click()
    page.wait_for_url(lambda url: "vulnerability=CVE-2026-0001" in url)
