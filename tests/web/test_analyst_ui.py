"""Issue 18: the web UI as an analyst lives in it, in Chromium, on SQLite and PostgreSQL.

One test per point of the issue (tabs, group filter, administration layout, exports, impacts
after exceptions, the exception form, the recommendation table, errors and confirmations, names
people read, findings without a fix, the demo's history), then a review of every page at 1280
and 1920 px (no overflow, no clipped text, screenshots in ``test-artifacts/ui-review/``) with
axe-core, and keyboard navigation.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import Engine, select

from remedium.audit.service import record
from remedium.auth.principal import Principal, Right
from remedium.connectors import service as connectors
from remedium.db.session import transaction
from remedium.exceptions import filing
from remedium.exceptions.models import RemediationException
from remedium.importers.service import import_report
from remedium.inventory.models import Device, Software
from remedium.recommendations.models import Recommendation
from remedium.recommendations.service import recompute
from remedium.remediation import requesting as remediation
from remedium.remediation.models import OutboxMessage, RemediationActivity
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.signin import PASSWORD, make_user, sign_in_page
from tests.web.ui_checks import axe_violations, clipped_text, overflow, with_axe

pytestmark = pytest.mark.browser

CHROME = "va-_-google-_-chrome"
OPENSSL = "va-_-openssl-_-openssl"
READER = "va-_-adobe-_-acrobat_reader"
ADMIN = Principal(user_id=None, name="test-admin", rights=frozenset(Right))


def _number(text: str) -> float:
    found = re.search(r"[0-9]+(?:\.[0-9]+)?", text.replace(",", ""))
    return float(found.group()) if found else 0.0


def _file(
    engine: Engine, recommendation: str, groups: list[int], *, impact: str = "MitigationLike"
) -> int:
    with transaction(engine) as session:
        exc = filing.file_exception(
            session,
            ADMIN,
            recommendation_id=recommendation,
            justification="CompensatingControl",
            context="Isolated network segment",
            impact=impact,
            device_group_ids=groups,
            duration_days=90,
        )
        return exc.id


def _csrf(page: Any) -> str:
    return str(page.get_attribute('meta[name="csrf-token"]', "content"))


# --- 1. the Exceptions tab ----------------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_remediation_page_has_its_exceptions_tab(
    org: Any, signed_in_page: Any, live_server: str
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/remediation")
    tabs = page.get_by_role("navigation", name="Remediation")
    assert tabs.get_by_role("link", name="Activities").get_attribute("aria-current") == "page"
    tabs.get_by_role("link", name="Exceptions").click()
    page.wait_for_url(lambda url: url.endswith("/remediation/exceptions"))
    assert page.get_by_test_id("result-count").is_visible()
    tabs = page.get_by_role("navigation", name="Remediation")
    assert tabs.get_by_role("link", name="Exceptions").get_attribute("aria-current") == "page"


# --- 2. the device-group filter keeps the page's state ------------------------------------------


def _apply_groups(page: Any, keep: str) -> None:
    page.locator("details.group-filter summary").click()
    panel = page.get_by_test_id("group-filter-form")
    for box in panel.locator("input[type=checkbox]").all():
        box.set_checked(box.evaluate("b => b.parentElement.textContent.trim()") == keep)
    panel.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()


@pytest.mark.scenario("pages")
def test_group_filter_keeps_filters_sort_and_the_request_forms_recommendation(
    org: Any, signed_in_page: Any, live_server: str
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/recommendations?sort=name&dir=asc&q=Update")
    _apply_groups(page, "Servers")
    assert page.url.count("sort=name") == 1
    assert "dir=asc" in page.url
    assert "q=Update" in page.url
    assert f"groups={org.servers}" in page.url
    assert "Device groups (1/3)" in page.locator("details.group-filter summary").inner_text()
    page.locator("details.group-filter summary").click()
    page.get_by_text("Show all").click()
    page.wait_for_load_state()
    assert "sort=name" in page.url
    assert "groups=all" in page.url

    # The request form needs its ?recommendation=: Apply and Show all keep it (no 404).
    page.goto(f"{live_server}/remediation/request?recommendation={CHROME}")
    _apply_groups(page, "Servers")
    assert f"recommendation={CHROME}" in page.url
    assert page.get_by_role("heading", name="Remediation options").is_visible()
    page.locator("details.group-filter summary").click()
    page.get_by_text("Show all").click()
    page.wait_for_load_state()
    assert f"recommendation={CHROME}" in page.url
    assert page.get_by_role("heading", name="Remediation options").is_visible()


# --- 3. administration pages in the layout; the audit history --------------------------------


@pytest.mark.scenario("pages")
def test_admin_pages_share_the_layout_and_the_audit_history_reads_pages_and_exports(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    for path, key in (
        ("/settings/users", "Users"),
        ("/settings/tokens", "API tokens"),
        ("/audit", "Audit history"),
        ("/settings/connectors", "Ticketing connections"),
    ):
        page.goto(f"{live_server}{path}")
        nav = page.get_by_role("navigation", name="Main")
        assert nav.get_by_role("heading", name="Administration").is_visible()
        current = nav.locator("a[aria-current=page]")
        assert current.inner_text().strip() == key, path
        # The rest of the product is one click away from every administration page.
        assert nav.get_by_role("link", name="Security recommendations").is_visible()

    with transaction(engine) as session:
        for n in range(60):
            record(
                session,
                actor=ADMIN,
                action="exception.edit",
                object_type="remediation_exception",
                object_id=str(n),
                before={"status": "InEffect", "expires_on": "2026-12-01"},
                after={"status": "Canceled", "expires_on": "2026-12-01", "reason": "fixed"},
            )
    page.goto(f"{live_server}/audit?action=exception")
    assert page.get_by_test_id("result-count").inner_text() == "60 events"
    diff = page.get_by_test_id("diff").first
    assert diff.locator("del").first.inner_text() == "InEffect"
    assert diff.locator("ins").first.inner_text() == "Canceled"
    assert "expires on" not in diff.inner_text()  # unchanged fields are left out
    assert "{" not in page.locator("#audit").inner_text()  # no raw JSON
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(lambda url: "page=2" in url)
    assert page.locator("#audit tbody tr").count() == 10
    assert "action=exception" in page.url

    csv_href = page.get_by_test_id("export-csv").get_attribute("href")
    reply = page.request.get(f"{live_server}{csv_href}")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text())))
    assert len(rows) == 60
    assert {r["action"] for r in rows} == {"exception.edit"}
    assert json.loads(rows[0]["after"])["status"] == "Canceled"
    jsonl_href = page.get_by_test_id("export-jsonl").get_attribute("href")
    lines = page.request.get(f"{live_server}{jsonl_href}").text().splitlines()
    assert len(lines) == 60
    assert json.loads(lines[0])["after"]["reason"] == "fixed"


# --- 4. exports -------------------------------------------------------------------------------


def _export(page: Any, live_server: str) -> list[dict[str, str]]:
    href = page.get_by_test_id("export-csv").get_attribute("href")
    reply = page.request.get(f"{live_server}{href}")
    assert reply.status == 200, href
    assert "attachment" in reply.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(reply.text())))


@pytest.mark.scenario("pages")
def test_every_list_exports_csv_with_its_filters_and_the_users_scope(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    _file(engine, READER, [org.workstations])
    checks = [
        ("/recommendations?sort=name&dir=asc", "recommendation"),
        ("/recommendations?q=chrome", "recommendation"),
        ("/vulnerabilities?severity=Critical", "vulnerabilit"),
        ("/software?vulnerable=1", "product"),
        ("/devices?os_platform=WindowsServer2022", "device"),
        ("/remediation/exceptions", "exception"),
    ]
    for path, word in checks:
        page.goto(f"{live_server}{path}")
        count = int(_number(page.get_by_test_id("result-count").inner_text()))
        rows = _export(page, live_server)
        assert len(rows) == count, (path, word)
    page.goto(f"{live_server}/recommendations?sort=name&dir=asc")
    names = [r["name"] for r in _export(page, live_server)]
    assert names == sorted(names)
    page.goto(f"{live_server}/devices?os_platform=WindowsServer2022")
    assert {r["device_group_name"] for r in _export(page, live_server)} == {"Servers"}

    # The page's device groups narrow the export, like the page.
    page.goto(f"{live_server}/devices?groups={org.finance}")
    assert {r["name"] for r in _export(page, live_server)} == {"fin-00", "fin-01"}

    # A user limited to Finance exports Finance only, whatever the link says.
    with transaction(engine) as session:
        make_user(session, "finance-analyst", rights=[Right.VIEW], group_ids=[org.finance])
    other = page.context.browser.new_context()
    viewer = other.new_page()
    sign_in_page(viewer, live_server, "finance-analyst", PASSWORD)
    reply = viewer.request.get(f"{live_server}/devices/export.csv?groups=all")
    assert {r["name"] for r in csv.DictReader(io.StringIO(reply.text()))} == {"fin-00", "fin-01"}
    other.close()

    # The VEX exports have their buttons.
    page.goto(f"{live_server}/remediation/exceptions")
    for test_id, marker in (("export-openvex", "openvex"), ("export-cyclonedx", "CycloneDX")):
        href = page.get_by_test_id(test_id).get_attribute("href")
        body = page.request.get(f"{live_server}{href}").text()
        assert marker in body


# --- 5. impacts after exceptions ---------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_impact_after_exceptions_never_exceeds_the_impact_and_is_explained(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    # OpenSSL excepted on the servers (Mitigation-like): their points fall, so measured on the
    # after-exceptions points Chrome's fall there would be larger than its impact.
    _file(engine, OPENSSL, [org.servers])
    page.goto(f"{live_server}/recommendations?status=all")
    rows = page.locator("#recommendations tbody tr")
    assert rows.count() >= 4
    seen_chrome = False
    for i in range(rows.count()):
        row = rows.nth(i)
        name = row.locator("td.name a").inner_text()
        before = _number(row.locator("td").nth(5).inner_text())
        cell = row.get_by_test_id("impact-after")
        after = _number(cell.inner_text())
        assert after <= before + 1e-9, (name, before, after)
        title = cell.get_attribute("title") or ""
        assert "never exceeds" in title, title
        assert f"{after:.2f}" in title, title
        if "Chrome" in name:
            seen_chrome = True
            assert after == before  # no exception touches Chrome
    assert seen_chrome


# --- 6. the exception form ------------------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_exception_form_honours_the_end_date_and_previews_the_chosen_groups(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    page = signed_in_page
    form_url = f"{live_server}/remediation/exceptions/new?recommendation={CHROME}"
    page.goto(form_url)
    assert "POST /api" not in page.content()
    assert int(page.locator("textarea[name=context]").get_attribute("rows") or 0) >= 6
    everywhere = page.get_by_test_id("preview-exposure").inner_text()
    page.get_by_label("Compensating/alternate control").check()
    page.get_by_label("Chosen device groups").check()
    page.get_by_label("Workstations").check()
    basis = page.get_by_test_id("preview-basis")
    basis.filter(has_text="1 device group").wait_for()
    assert page.get_by_test_id("preview-exposure").inner_text() != everywhere

    # Entering an end date selects "Until an end date"; the exception ends that day.
    end = date.today() + timedelta(days=20)
    page.fill("input[name=end_date]", end.isoformat())
    page.locator("input[name=end_date]").dispatch_event("change")
    assert page.locator("select[name=duration]").input_value() == "custom"
    page.fill("textarea[name=context]", "Kiosk mode, no browsing")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(lambda url: "filed=1" in url)
    assert f"{end:%b} {end.day}, {end.year}" in page.locator("main").inner_text()

    # Without the page's script the server does the same: a date is never ignored...
    page.goto(form_url)
    token = _csrf(page)
    fields = {
        "csrf_token": token,
        "recommendation": CHROME,
        "justification": "AcceptRisk",
        "scope": "groups",
        "group": str(org.finance),
        "duration": "30",
        "end_date": (date.today() + timedelta(days=45)).isoformat(),
    }
    reply = page.request.post(f"{live_server}/remediation/exceptions/new", form=fields)
    assert reply.ok

    with transaction(engine) as session:
        latest = session.scalars(
            select(RemediationException).order_by(RemediationException.id.desc())
        ).first()
        assert latest is not None
        assert latest.expires_on.date() == date.today() + timedelta(days=45)
    # ...and "Until an end date" without one is refused with a clear message.
    page.goto(form_url)
    page.get_by_label("Accept risk").check()
    page.locator("select[name=duration]").select_option("custom")
    page.get_by_label("Chosen device groups").check()
    page.get_by_label("Servers").check()
    page.get_by_role("button", name="Submit").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("end_date-error").inner_text().startswith("Choose the end date")


# --- 7. the recommendation table ------------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_recommendation_table_fits_1440_and_show_exceptions_adds_them(
    org: Any, browser: Any, live_server: str, engine: Engine
) -> None:
    _file(engine, OPENSSL, [org.servers])  # a full exception: out of the default list
    _file(engine, CHROME, [org.servers])  # partial: the after-exception columns appear
    with transaction(engine) as session:
        make_user(session, "wide")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    sign_in_page(page, live_server, "wide", PASSWORD)
    page.goto(f"{live_server}/recommendations?sort=name&dir=asc")
    assert page.get_by_test_id("impact-after").count() > 0
    fits = page.evaluate(
        "() => { const t = document.querySelector('#recommendations');"
        " return t.scrollWidth <= t.parentElement.clientWidth; }"
    )
    assert fits
    assert overflow(page)["main"] <= 0
    shown = [a.inner_text() for a in page.locator("#recommendations td.name a").all()]
    assert not any("OpenSSL" in n for n in shown)
    page.get_by_test_id("show-exceptions").click()
    page.wait_for_url(lambda url: "status=all" in url)
    assert "sort=name" in page.url
    with_exceptions = [a.inner_text() for a in page.locator("#recommendations td.name a").all()]
    assert set(shown) < set(with_exceptions)
    assert any("OpenSSL" in n for n in with_exceptions)
    page.get_by_test_id("hide-exceptions").click()
    page.wait_for_load_state()
    assert [a.inner_text() for a in page.locator("#recommendations td.name a").all()] == shown
    context.close()


# --- 8. errors and confirmations ---------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_forbidden_is_a_page_and_completing_or_canceling_asks_first(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine, browser: Any
) -> None:
    with transaction(engine) as session:
        make_user(session, "viewer", rights=[Right.VIEW])
    context = browser.new_context()
    viewer = context.new_page()
    sign_in_page(viewer, live_server, "viewer", PASSWORD)
    reply = viewer.goto(f"{live_server}/settings/users")
    assert reply is not None
    assert reply.status == 403
    assert viewer.get_by_role("heading", name="Access denied").is_visible()
    assert viewer.get_by_role("navigation", name="Main").is_visible()
    api = viewer.request.get(
        f"{live_server}/api/v1/connectors", headers={"Accept": "application/json"}
    )
    assert api.status == 403
    assert "right is required" in api.json()["detail"]
    context.close()

    page = signed_in_page
    with transaction(engine) as session:
        activity = remediation.request_remediation(
            session,
            ADMIN,
            recommendation_id=READER,
            remediation_type="Update",
            device_group_ids=None,
            priority="High",
            due_on=date.today() + timedelta(days=10),
        ).id
    page.goto(f"{live_server}/remediation/activities/{activity}")
    page.get_by_test_id("mark-completed").click()
    page.wait_for_url(lambda url: url.endswith("/complete"))
    assert "cannot be undone" in page.locator("main").inner_text()
    page.get_by_role("link", name="Keep it active").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("activity-status").inner_text() == "Active"
    page.get_by_test_id("mark-completed").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(lambda url: "completed=1" in url)
    assert page.get_by_test_id("activity-status").inner_text() == "Completed"

    exception = _file(engine, CHROME, [org.servers, org.workstations])
    page.goto(f"{live_server}/remediation/exceptions/{exception}")
    page.get_by_test_id("cancel-group").first.click()
    page.wait_for_url(lambda url: "/cancel?device_group_id=" in url)
    assert "for the device group Servers" in page.locator("main").inner_text()
    page.fill("textarea[name=reason]", "Patched")
    page.get_by_test_id("confirm").click()
    page.wait_for_url(lambda url: url.endswith(f"/remediation/exceptions/{exception}"))
    assert page.get_by_test_id("exception-status").inner_text() == "In effect"
    assert page.get_by_test_id("cancel-group").count() == 1
    # The Exceptions tab's Scope column lists only the groups still covered.
    page.goto(f"{live_server}/remediation/exceptions")
    assert page.get_by_test_id("exception-scope").first.inner_text().strip() == "Workstations"


# --- 9. names people read ---------------------------------------------------------------------


@pytest.mark.scenario("pages")
def test_pages_show_names_not_raw_ids_or_words(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine, tmp_path: Path
) -> None:
    page = signed_in_page
    with transaction(engine) as session:
        connectors.configure(
            session,
            ADMIN,
            name="intune",
            kind="intune",
            config={"tenant_id": "contoso", "client_id": "app", "client_secret": "s3cret"},
        )
        connectors.set_enabled(session, ADMIN, "intune", True)
    page.goto(f"{live_server}/remediation/request?recommendation={CHROME}")
    options = page.locator("select[name=connector] option").all_inner_texts()
    assert "Intune" in options
    assert "intune" not in options
    page.fill("input[name=due_on]", (date.today() + timedelta(days=14)).isoformat())
    page.locator("select[name=connector]").select_option("intune")
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(lambda url: "created=1" in url)
    assert "The ticket in Intune" in page.locator("main").inner_text()
    with transaction(engine) as session:
        link = session.scalars(select(OutboxMessage.payload)).one()["link"]
    assert re.match(r"^https?://[^/]+/remediation/activities/", link), link
    page.goto(f"{live_server}/remediation")
    assert "Intune" in page.locator("select[name=connector]").inner_text()

    page.goto(f"{live_server}/inaccuracy")
    current = page.get_by_role("navigation", name="Main").locator("a[aria-current=page]")
    assert current.inner_text().strip() == "Inaccuracy reports"

    # A package that a purl names keeps its ecosystem's spelling.
    report = tmp_path / "go.json"
    report.write_text(
        json.dumps(
            {
                "schema": "remedium-inventory/1",
                "source": "go-scanner",
                "scanned_at": datetime.now(UTC).isoformat(),
                "devices": [
                    {
                        "name": "build-01",
                        "device_group": "Servers",
                        "software": [
                            {
                                "vendor": "gogo",
                                "product": "github.com/gogo/protobuf",
                                "version": "1.3.1",
                                "purl": "pkg:golang/github.com/gogo/protobuf@v1.3.1",
                            }
                        ],
                        "findings": [
                            {
                                "cve": "CVE-2021-3121",
                                "vendor": "gogo",
                                "product": "github.com/gogo/protobuf",
                                "installed_version": "1.3.1",
                                "fixed_version": "1.3.2",
                                "severity": "High",
                            }
                        ],
                    }
                ],
            }
        ),
        "utf-8",
    )
    with transaction(engine) as session:
        import_report(session, report, format="remedium", imported_by="test")
    page.goto(f"{live_server}/recommendations?q=protobuf")
    names = page.locator("#recommendations td.name a").all_inner_texts()
    assert names
    assert "github.com/gogo/protobuf" in names[0], names
    assert "Github.Com" not in page.locator("main").inner_text()


# --- 10. findings without a fix; no configuration data ------------------------------------------


@pytest.mark.scenario("pages")
def test_no_published_fix_is_not_uninstall_and_no_configuration_data_is_no_score(
    org: Any, signed_in_page: Any, live_server: str, engine: Engine
) -> None:
    with transaction(engine) as session:
        lab = make_group(session, "Lab")
        device = make_device(session, lab, "lab-01", last_seen=datetime.now(UTC))
        libxml = make_software(session, "debian", "libxml2", display_name="libxml2")
        install(session, device, libxml, "2.9.14")
        cve = make_vulnerability(session, "CVE-2025-0001", cvss=7.5)
        add_weakness(session, device, libxml, cve, installed_version="2.9.14", fixed_version=None)
        recompute(session)
        lab_id = lab.id
    page = signed_in_page
    page.goto(f"{live_server}/recommendations?q=libxml2&groups=all")
    row = page.locator("#recommendations tbody tr").first
    assert (
        row.locator("td.name a").inner_text() == "No security update available for Debian libxml2"
    )
    assert "Attention required" in row.inner_text()
    assert "No security update" in row.inner_text()
    page.goto(f"{live_server}/recommendations?groups=all")
    assert not any(n.startswith("Uninstall") for n in page.locator("td.name a").all_inner_texts())
    # The Lab has no configuration assessment: no Secure Score, rather than 100 %.
    page.goto(f"{live_server}/?groups={lab_id}")
    assert page.get_by_test_id("secure-score").inner_text() == "No data"
    assert page.get_by_test_id("secure-no-data").is_visible()
    page.goto(f"{live_server}/?groups=all")
    assert page.get_by_test_id("secure-score").inner_text().endswith("%")


# --- 11. the demo's history, and the review of every page ----------------------------------------


@pytest.fixture
def demo(engine: Engine, scenario: object) -> dict[str, Any]:
    """The demo organisation (150 devices; the test is marked ``@pytest.mark.scenario("demo")``,
    so it is built once and copied) and ids of objects to open."""

    with transaction(engine) as session:
        user = make_user(session, "reviewer")
        return {
            "rec": session.scalars(
                select(Recommendation.id).order_by(Recommendation.exposure_impact.desc())
            ).first(),
            "device": session.scalars(select(Device.id).order_by(Device.id)).first(),
            "software": session.scalars(select(Software.id).order_by(Software.id)).first(),
            "activity": session.scalars(
                select(RemediationActivity.id).where(RemediationActivity.status == "Active")
            ).first(),
            "exception": session.scalars(
                select(RemediationException.id).where(RemediationException.status == "InEffect")
            ).first(),
            "user": user.id,
        }


@pytest.mark.scenario("demo")
def test_demo_holds_a_realistic_history(
    demo: dict[str, Any], browser: Any, live_server: str
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sign_in_page(page, live_server, "reviewer", PASSWORD)
    page.goto(f"{live_server}/remediation")
    table = page.locator("#activities").inner_text()
    assert "Overdue" in table
    assert "Active" in table
    assert "Completed" in table
    assert "System confirmation" in table
    assert "Manual" in table
    assert re.search(r"IT-10\d\d", table)
    assert "In Progress" in table
    assert "Done" in table
    page.goto(f"{live_server}/remediation/exceptions")
    statuses = set(page.locator("#exceptions .badge.status").all_inner_texts())
    assert {"In effect", "Expired", "Resurfaced (void)", "Pending approval"} <= statuses, statuses
    page.goto(f"{live_server}/inaccuracy")
    reports = set(page.get_by_test_id("report-status").all_inner_texts())
    assert reports == {"New", "Confirmed", "Dismissed"}

    # The dashboard's expiring card names what the exception is about.
    page.goto(f"{live_server}/")
    target = page.get_by_test_id("expiring-target").first.inner_text()
    assert target
    assert "-_-" not in target
    # Demo CVEs carry their published date.
    page.goto(f"{live_server}/vulnerabilities/CVE-2021-44228")
    assert "Dec 10, 2021" in page.locator("main").inner_text()
    context.close()


def _pages(ids: dict[str, Any]) -> list[tuple[str, str]]:
    rec, device, activity, exception = ids["rec"], ids["device"], ids["activity"], ids["exception"]
    return [
        ("dashboard", "/"),
        ("recommendations", "/recommendations"),
        ("recommendations-all", "/recommendations?status=all"),
        ("recommendation", f"/recommendations/{rec}"),
        ("weaknesses", "/vulnerabilities"),
        ("weakness", "/vulnerabilities/CVE-2021-44228"),
        ("software", "/software"),
        ("software-one", f"/software/{ids['software']}"),
        ("devices", "/devices"),
        ("device", f"/devices/{device}"),
        ("device-weaknesses", f"/devices/{device}?tab=weaknesses"),
        ("device-software", f"/devices/{device}?tab=software"),
        ("remediation", "/remediation"),
        ("activity", f"/remediation/activities/{activity}"),
        ("activity-complete", f"/remediation/activities/{activity}/complete"),
        ("request", f"/remediation/request?recommendation={rec}"),
        ("exceptions", "/remediation/exceptions"),
        ("exception", f"/remediation/exceptions/{exception}"),
        ("exception-cancel", f"/remediation/exceptions/{exception}/cancel"),
        ("exception-new", f"/remediation/exceptions/new?recommendation={rec}"),
        ("inaccuracy", "/inaccuracy"),
        ("inaccuracy-new", f"/inaccuracy/new?recommendation={rec}"),
        ("imports", "/imports"),
        ("audit", "/audit"),
        ("users", "/settings/users"),
        ("user", f"/settings/users/{ids['user']}"),
        ("tokens", "/settings/tokens"),
        ("connections", "/settings/connectors"),
        ("not-found", "/devices/999999"),
    ]


def _screenshot(page: Any, path: Path) -> None:
    """A full-page screenshot for people to look at. Chromium answered "Unable to capture
    screenshot" once in a fresh-clone run of the whole suite (December 7, 2026; the test passed
    when run again), so one more try after a pause, then the error stands."""
    try:
        page.screenshot(path=str(path), full_page=True)
    except PlaywrightError:
        page.wait_for_timeout(200)
        page.screenshot(path=str(path), full_page=True)


@pytest.mark.scenario("demo")
def test_every_page_fits_1280_and_1920_and_passes_axe(
    demo: dict[str, Any], browser: Any, live_server: str, artifacts: Path, engine: Engine
) -> None:
    # axe-core judges the markup and styles the browser renders from the same templates over the
    # same demo data on either database, so its verdict cannot depend on the database; it is the
    # slowest part of the sweep and runs on SQLite only. On PostgreSQL every page is still opened
    # and checked (status, overflow, clipped text). The screenshots, for people to look at, went to
    # the same paths on both databases; they are SQLite's now.
    on_sqlite = engine.dialect.name == "sqlite"
    folder = artifacts / "ui-review"
    problems: list[str] = []
    for width in (1280, 1920):
        context = browser.new_context(viewport={"width": width, "height": 1000})
        page = context.new_page()
        if on_sqlite:
            with_axe(page)
        sign_in_page(page, live_server, "reviewer", PASSWORD)
        for name, path in _pages(demo):
            reply = page.goto(f"{live_server}{path}")
            assert reply is not None
            assert reply.status < 500, path
            if on_sqlite:
                (folder / str(width)).mkdir(parents=True, exist_ok=True)
                _screenshot(page, folder / str(width) / f"{name}.png")
            wide = overflow(page)
            if max(wide.values()) > 0:
                problems.append(f"{width}px {path}: wider than the column by {wide}")
            problems.extend(f"{width}px {path}: clipped {c}" for c in clipped_text(page))
            if width == 1280 and on_sqlite:
                problems.extend(
                    f"{path}: axe {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}"
                    for v in axe_violations(page)
                )
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.scenario("pages")
def test_keyboard_reaches_the_content_the_navigation_and_the_group_filter(
    org: Any, signed_in_page: Any, live_server: str
) -> None:
    page = signed_in_page
    page.goto(f"{live_server}/recommendations")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash === '#content'")
    # The navigation's links are reachable by Tab, in order.
    page.focus("a.brand")
    labels = []
    for _ in range(4):
        page.keyboard.press("Tab")
        labels.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert labels[:3] == ["Sign out", "Dashboard", "Security recommendations"], labels
    # The group filter opens from the keyboard.
    page.focus("details.group-filter summary")
    page.keyboard.press("Enter")
    assert page.locator("details.group-filter").get_attribute("open") is not None
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "checkbox"
