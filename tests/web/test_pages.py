"""The web pages, driven in Debian's Chromium against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from remedium.auth.principal import Scope
from remedium.db.session import transaction
from remedium.recommendations.queries import list_recommendations
from remedium.scoring.queries import exposure_score, secure_score
from tests.support.signin import PASSWORD, make_user, sign_in_page

pytestmark = pytest.mark.browser


def shot(page: Any, artifacts: Path, name: str, engine: Engine) -> None:
    page.screenshot(path=str(artifacts / f"web-{name}-{engine.dialect.name}.png"), full_page=True)


@pytest.mark.scenario("pages")
def test_dashboard_shows_scores_trend_and_top_lists(
    signed_in_page: Any, live_server: str, engine: Engine, org: Any, artifacts: Path
) -> None:
    page = signed_in_page
    with transaction(engine) as session:
        exposure = exposure_score(session, Scope())
        secure = secure_score(session, Scope())
    page.goto(f"{live_server}/")
    assert page.locator("[data-testid=exposure-score]").inner_text() == f"{exposure.score:.1f}"
    assert page.locator("[data-testid=exposure-band]").inner_text() == exposure.band
    assert page.locator("[data-testid=secure-score]").inner_text() == f"{secure.score:.1f}%"
    # The 30-day trend is drawn from the history: one point per snapshot day.
    points = page.locator("#exposure-card polyline.trend-line").get_attribute("points")
    assert points is not None
    assert len(points.split()) == 30
    assert page.get_by_text("Device groups (3/3)").is_visible()
    top = page.locator("#top-recommendations tbody tr")
    assert top.count() == 5
    assert "Chrome" in top.first.inner_text()
    assert "KEV" in top.first.inner_text()
    assert page.locator("#top-devices tbody tr").first.inner_text().startswith("srv-00")
    # Each Secure Score category links to recommendations of that category.
    page.get_by_role("link", name=re.compile("^Network")).click()
    page.wait_for_url(re.compile(r"/recommendations\?category=Network"))
    assert page.locator("select[name=category]").input_value() == "Network"
    page.goto(f"{live_server}/")
    shot(page, artifacts, "dashboard", engine)
    assert page.get_by_role("link", name="User name").count() == 0  # no sign-in form left over


@pytest.mark.scenario("pages")
def test_device_group_filter_narrows_every_page(
    signed_in_page: Any, live_server: str, engine: Engine, org: Any, artifacts: Path
) -> None:
    page = signed_in_page
    with transaction(engine) as session:
        everything = exposure_score(session, Scope())
        finance = exposure_score(session, Scope(frozenset({org.finance})))
        finance_recs = list_recommendations(session, Scope(frozenset({org.finance}))).total
    assert f"{everything.score:.1f}" != f"{finance.score:.1f}"
    page.goto(f"{live_server}/")
    page.get_by_text("Device groups (3/3)").click()
    for name in ("Servers", "Workstations"):
        page.get_by_label(name).uncheck()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.get_by_text("Device groups (1/3)").is_visible()
    assert page.locator("[data-testid=exposure-score]").inner_text() == f"{finance.score:.1f}"
    shot(page, artifacts, "dashboard-filtered", engine)
    # The selection follows the user to the other pages.
    page.get_by_role("link", name="Security recommendations").first.click()
    assert page.get_by_text("Device groups (1/3)").is_visible()
    assert page.locator("#recommendations tbody tr").count() == finance_recs
    page.goto(f"{live_server}/devices")
    names = page.locator("#devices tbody td.name a").all_inner_texts()
    assert names
    assert all(name.startswith("fin-") for name in names)
    page.goto(f"{live_server}/?groups=all")
    assert page.get_by_text("Device groups (3/3)").is_visible()
    assert page.locator("[data-testid=exposure-score]").inner_text() == f"{everything.score:.1f}"


@pytest.mark.scenario("pages")
def test_recommendations_filter_sort_and_detail(
    signed_in_page: Any, live_server: str, engine: Engine, org: Any, artifacts: Path
) -> None:
    page = signed_in_page
    with transaction(engine) as session:
        total = list_recommendations(session, Scope()).total
    page.goto(f"{live_server}/recommendations")
    rows = page.locator("#recommendations tbody tr")
    assert rows.count() == total
    assert page.get_by_test_id("result-count").inner_text() == f"{total} recommendations"
    shot(page, artifacts, "recommendations", engine)
    # Threat filter: only KEV recommendations remain.
    page.select_option("select[name=threats]", "kev")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile("threats=kev"))
    assert 0 < rows.count() < total
    for text in rows.all_inner_texts():
        assert "KEV" in text
    # Search narrows by name.
    page.goto(f"{live_server}/recommendations?q=acrobat")
    assert rows.count() == 1
    assert "Acrobat Reader" in rows.first.inner_text()
    # Sorting by name ascending, then descending.
    page.goto(f"{live_server}/recommendations")
    page.get_by_role("link", name="Recommendation", exact=True).click()
    page.wait_for_url(re.compile("sort=name"))
    ascending = page.locator("#recommendations tbody td.name a").all_inner_texts()
    assert ascending == sorted(ascending, key=str.lower)
    page.get_by_role("link", name=re.compile("^Recommendation")).click()
    page.wait_for_url(re.compile("dir=asc|dir=desc"))
    assert page.locator("#recommendations tbody td.name a").all_inner_texts() == ascending[::-1]
    # Click through to the Chrome recommendation.
    page.goto(f"{live_server}/recommendations?q=chrome")
    page.locator("#recommendations tbody td.name a").first.click()
    page.wait_for_url(re.compile("/recommendations/va-_-google-_-chrome"))
    assert "Chrome" in page.locator("h1").inner_text()
    assert page.get_by_test_id("exposed-devices").inner_text().startswith("7")
    cves = page.locator("#weaknesses tbody tr").all_inner_texts()
    assert len(cves) == 2
    assert "CVE-2024-4671" in cves[0]
    assert "Critical" in cves[0]
    assert page.locator("#exposed-devices tbody tr").count() == 7
    # Issue 5 added "Remediation options" (this user holds the remediation right).
    assert page.get_by_role("link", name="Remediation options").count() == 1
    # Issue 6 added "Exception options" (this user holds the exceptions right).
    assert page.get_by_role("link", name="Exception options").count() == 1
    # Issue 6 added "Report inaccuracy" too.
    assert page.get_by_role("link", name="Report inaccuracy").count() == 1
    shot(page, artifacts, "recommendation-detail", engine)
    page.get_by_role("link", name="Open software page").click()
    page.wait_for_url(re.compile(f"/software/{org.chrome}$"))
    assert page.get_by_test_id("exposed-devices").inner_text() == "7"


@pytest.mark.scenario("pages")
def test_device_software_and_vulnerability_pages(
    signed_in_page: Any, live_server: str, engine: Engine, org: Any, artifacts: Path
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/devices")
    assert page.get_by_test_id("result-count").inner_text() == "12 devices"
    shot(page, artifacts, "devices", engine)
    page.get_by_role("link", name="srv-00").click()
    page.wait_for_url(re.compile(f"/devices/{org.server_device}$"))
    recs = page.locator("table.data tbody tr").all_inner_texts()
    assert any("Chrome" in r for r in recs)
    assert any("OpenSSL" in r for r in recs)
    shot(page, artifacts, "device", engine)
    page.get_by_role("link", name="Weaknesses", exact=True).last.click()
    page.wait_for_url(re.compile("tab=weaknesses"))
    assert page.locator("table.data tbody tr").count() == 3
    page.get_by_role("link", name="CVE-2022-3602").click()
    page.wait_for_url(re.compile("/vulnerabilities/CVE-2022-3602"))
    assert page.get_by_test_id("exposed-devices").inner_text() == "4"
    assert "Exploit" in page.locator(".page-head").inner_text()
    shot(page, artifacts, "vulnerability", engine)
    page.goto(f"{live_server}/vulnerabilities?threats=kev")
    assert (
        page.locator("#vulnerabilities tbody tr").all_inner_texts()[0].startswith("CVE-2024-4671")
    )
    assert page.locator("#vulnerabilities tbody tr").count() == 1
    shot(page, artifacts, "vulnerabilities", engine)
    page.goto(f"{live_server}/software")
    shot(page, artifacts, "software", engine)
    names = page.locator("#software tbody td.name a").all_inner_texts()
    assert set(names) == {"Chrome", "OpenSSL", "Acrobat Reader", "7-Zip"}
    page.goto(f"{live_server}/software/{org.chrome}")
    versions = page.locator("table.data tbody tr").all_inner_texts()
    assert len(versions) == 2
    shot(page, artifacts, "software-detail", engine)


@pytest.mark.scenario("pages")
def test_out_of_scope_and_unknown_objects_are_not_found(
    page: Any, live_server: str, engine: Engine, org: Any, artifacts: Path
) -> None:

    with transaction(engine) as session:
        make_user(session, "finance-analyst", group_ids=[org.finance])
    sign_in_page(page, live_server, "finance-analyst", PASSWORD)
    page.goto(f"{live_server}/")
    # A user limited to one group sees only it, and their name in the header.
    assert page.get_by_text("Device groups (1/1)").is_visible()
    assert page.locator(".user-name").inner_text() == "finance-analyst"
    assert page.get_by_role("button", name="Sign out").is_visible()
    reply = page.goto(f"{live_server}/devices/{org.server_device}")
    assert reply.status == 404
    assert page.get_by_text("There is no such device in the device groups you can see").is_visible()
    shot(page, artifacts, "not-found", engine)
    assert page.goto(f"{live_server}/devices/{org.finance_device}").status == 200
    assert page.goto(f"{live_server}/recommendations/va-_-nobody-_-nothing").status == 404
    assert page.goto(f"{live_server}/software/{org.chrome}").status == 404
    assert page.goto(f"{live_server}/vulnerabilities/CVE-1999-0001").status == 404
    # Asking for another group through the filter cannot widen the scope.
    page.goto(f"{live_server}/devices?groups={org.servers}")
    names = page.locator("#devices tbody td.name a").all_inner_texts()
    assert names
    assert all(name.startswith("fin-") for name in names)
