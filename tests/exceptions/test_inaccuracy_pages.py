"""The web pages of "Report inaccuracy" and of exception approval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.settings import get_settings
from tests.support.orgs.exceptions import CHROME, build
from tests.support.signin import client_for


@pytest.fixture
def approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def groups(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        org = build(session)
        return {"alpha": org.alpha.id, "beta": org.beta.id}


def test_approve_and_reject_from_the_exception_view(
    engine: Engine, groups: dict[str, int], approval: None
) -> None:
    rights = [Right.VIEW, Right.EXCEPTIONS]
    analyst = client_for(engine, "ana", rights=rights)
    reviewer = client_for(engine, "rex", rights=rights)
    ids = []
    for group in ("alpha", "beta"):
        filed = analyst.post(
            "/api/v1/exceptions",
            json={
                "recommendation_id": CHROME,
                "justification": "PlannedRemediation",
                "device_group_ids": [groups[group]],
                "duration_days": 30,
            },
        )
        assert filed.status_code == 201, filed.text
        ids.append(filed.json()["id"])
    first, second = ids
    # The requester sees no buttons, and is refused if they post anyway.
    assert 'data-testid="approve"' not in analyst.get(f"/remediation/exceptions/{first}").text
    own = analyst.post(f"/remediation/exceptions/{first}/approve", data={"comment": "mine"})
    assert own.status_code == 409
    assert "your own" in own.text
    assert "Pending approval" in own.text

    view = reviewer.get(f"/remediation/exceptions/{first}")
    assert 'data-testid="approve"' in view.text
    assert 'data-testid="reject"' in view.text
    approved = reviewer.post(
        f"/remediation/exceptions/{first}/approve", data={"comment": "until the rollout"}
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/remediation/exceptions/{first}"
    after = reviewer.get(f"/remediation/exceptions/{first}").text
    assert "In effect" in after
    assert "until the rollout" in after
    assert 'data-testid="approve"' not in after

    rejected = reviewer.post(f"/remediation/exceptions/{second}/reject", data={"comment": "no"})
    assert rejected.status_code == 303
    assert "Rejected" in reviewer.get(f"/remediation/exceptions/{second}").text
    # Deciding twice is refused on the page, not with a crash.
    again = reviewer.post(f"/remediation/exceptions/{second}/approve")
    assert again.status_code == 409
    assert "not pending approval" in again.text


@pytest.mark.browser
def test_report_a_false_positive_and_turn_it_into_an_exception(
    signed_in_page: Any, live_server: str, groups: dict[str, int], no_approval: None
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/recommendations/{CHROME}")
    page.get_by_test_id("report-inaccuracy").click()
    page.wait_for_url(lambda url: "/inaccuracy/new" in url)
    page.get_by_label("Category").select_option("FalsePositive")
    page.get_by_label("Details").fill("Chrome was removed from the kiosks last week")
    page.click("button[type=submit]:has-text('Submit report')")
    page.wait_for_url(lambda url: "/inaccuracy?reported=" in url)
    row = page.locator("#reports tbody tr").first
    assert row.get_by_test_id("report-status").inner_text() == "New"
    assert "False positive" in row.inner_text()
    row.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    row = page.locator("#reports tbody tr").first
    assert row.get_by_test_id("report-status").inner_text() == "Confirmed"
    row.get_by_role("button", name="Turn into exception").click()
    page.wait_for_url(lambda url: "/remediation/exceptions/" in url)
    assert page.get_by_test_id("exception-status").inner_text() == "In effect"
    assert "Other \u2013 false positive" in page.content()
    assert "Chrome was removed from the kiosks last week" in page.content()
    # The report now links to its exception and offers no second one.
    page.goto(f"{live_server}/inaccuracy")
    row = page.locator("#reports tbody tr").first
    assert row.get_by_role("link", name="Exception").count() == 1
    assert row.get_by_role("button", name="Turn into exception").count() == 0
