"""The Exceptions tab, the exception view and the filing form, in the browser and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.settings import get_settings
from tests.support.orgs.exceptions import CHROME, build
from tests.support.signin import client_for


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def groups(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        org = build(session)
        return {"alpha": org.alpha.id, "beta": org.beta.id}


def test_tab_filters_and_scoped_view(engine: Engine, groups: dict[str, int]) -> None:
    admin = client_for(engine, "ada")
    for justification, group in (("AcceptRisk", "alpha"), ("FalsePositive", "beta")):
        admin.post(
            "/api/v1/exceptions",
            json={
                "recommendation_id": CHROME,
                "justification": justification,
                "device_group_ids": [groups[group]],
                "duration_days": 30,
            },
        )
    tab = admin.get("/remediation/exceptions")
    assert tab.status_code == 200
    assert "2 exceptions" in tab.text
    assert "<td>Other \u2013 false positive</td>" in tab.text
    filtered = admin.get("/remediation/exceptions", params={"justification": "AcceptRisk"})
    assert "1 exception<" in filtered.text
    assert "<td>Other \u2013 false positive</td>" not in filtered.text
    scoped = client_for(engine, "sam", rights=[Right.VIEW], group_ids=[groups["alpha"]])
    mine = scoped.get("/remediation/exceptions")
    assert "1 exception<" in mine.text
    assert "Beta" not in mine.text
    assert scoped.get("/remediation/exceptions/2").status_code == 404
    # Viewers see exceptions but get no filing form.
    assert scoped.get(f"/remediation/exceptions/new?recommendation={CHROME}").status_code == 403


@pytest.mark.browser
def test_file_and_cancel_in_the_browser(
    signed_in_page: Any, live_server: str, groups: dict[str, int], artifacts: Path
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/remediation/exceptions/new?recommendation={CHROME}")
    page.get_by_label("Accept risk").check()
    page.fill("textarea[name=context]", "Legacy kiosk, isolated VLAN")
    page.select_option("select[name=duration]", "60")
    page.get_by_label("Chosen device groups").check()
    page.get_by_label("Alpha").check()
    page.click("button[type=submit]:has-text('Submit')")
    page.wait_for_url(lambda url: "/remediation/exceptions/" in url and "new" not in url)
    assert page.get_by_test_id("exception-status").inner_text() == "In effect"
    assert "Legacy kiosk, isolated VLAN" in page.content()
    page.screenshot(path=str(artifacts / "exception-view.png"), full_page=True)
    # Alpha is now taken: the form leaves it out of the choice.
    page.goto(f"{live_server}/remediation/exceptions/new?recommendation={CHROME}")
    assert page.get_by_label("Alpha").count() == 0
    page.go_back()
    page.get_by_test_id("cancel-all").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(lambda url: not url.endswith("/cancel"))
    assert page.get_by_test_id("exception-status").inner_text() == "Canceled"
    assert "Cancel" in page.locator("#history").inner_text()
    page.goto(f"{live_server}/remediation/exceptions?status=Canceled")
    assert page.get_by_test_id("result-count").inner_text() == "1 exception"
    page.screenshot(path=str(artifacts / "exceptions-tab.png"), full_page=True)
