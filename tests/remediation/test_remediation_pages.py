"""The remediation pages: request form, Activities tab, activity view, dashboard card; and the
end-to-end browser journey from a request to the activity completing itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import Engine, delete, select

from remedium.auth.principal import Right
from remedium.connectors.models import ConnectorConfig
from remedium.connectors.service import EnabledConnectors
from remedium.db.session import transaction
from remedium.jobs.runner import ActivityProgressJob, OutboxDeliveryJob, TicketSyncJob, run_jobs
from remedium.remediation.models import RemediationActivity
from remedium.remediation.progress import refresh_activity_progress
from remedium.settings import get_settings
from tests.support.fake_ticketing import FakeJira
from tests.support.orgs.remediation import RECOMMENDATION, build_org, fix_devices
from tests.support.signin import client_for

TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
IN_A_WEEK = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
HTML = {"Accept": "text/html"}


def _form(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recommendation": RECOMMENDATION,
        "remediation_type": "Update",
        "groups_mode": "all",
        "priority": "High",
        "due_on": TOMORROW,
        "notes": "PCI finding",
        "connector": "tickets",
        "action": "submit",
    }
    body.update(overrides)
    return body


def _text(html: str) -> str:
    """The page's visible words, for assertions that do not depend on markup."""
    without_script = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", without_script).split())


def _submit(client: TestClient, **overrides: Any) -> str:
    reply = client.post("/remediation/request", data=_form(**overrides), follow_redirects=False)
    assert reply.status_code == 303, _text(reply.text)[:600]
    location = reply.headers["location"]
    assert location.endswith("?created=1")
    return location.split("/remediation/activities/", 1)[1].split("?", 1)[0]


def test_remediation_options_only_for_the_remediation_right(engine: Engine) -> None:
    build_org(engine)
    analyst = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    viewer = client_for(engine, "viewer", rights=[Right.VIEW])
    page = analyst.get(f"/recommendations/{RECOMMENDATION}").text
    assert "Remediation options" in page
    assert f"/remediation/request?recommendation={RECOMMENDATION}" in page
    assert "Remediation options" not in viewer.get(f"/recommendations/{RECOMMENDATION}").text
    assert viewer.get(f"/remediation/request?recommendation={RECOMMENDATION}").status_code == 403
    assert viewer.post("/remediation/request", data=_form()).status_code == 403


def test_form_previews_devices_and_shows_errors_next_to_fields(engine: Engine) -> None:
    org = build_org(engine)
    client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    form = client.get(f"/remediation/request?recommendation={RECOMMENDATION}")
    assert form.status_code == 200
    text = _text(form.text)
    assert "4 exposed devices in scope" in text
    assert "2 of them can receive an Intune security task" in text
    # Only switched-on connections are offered.
    assert 'value="tickets"' in form.text
    assert 'value="off"' not in form.text
    # Software recommendation: software options and "attention required", no configuration change.
    assert 'value="Update"' in form.text
    assert 'value="AttentionRequired"' in form.text
    assert 'value="ConfigurationChange"' not in form.text

    preview = client.post(
        "/remediation/request",
        data=_form(groups_mode="chosen", group=[str(org.group_a)], action="preview"),
    )
    assert preview.status_code == 200
    assert "2 exposed devices in scope" in _text(preview.text)

    refused = client.post("/remediation/request", data=_form(due_on=""))
    assert refused.status_code == 422
    assert re.search(r'id="due_on-error"[^>]*>a due date is required<', refused.text)
    past = client.post("/remediation/request", data=_form(due_on="2001-01-01"))
    assert "the due date is in the past" in past.text
    no_group = client.post("/remediation/request", data=_form(groups_mode="chosen"))
    assert re.search(r'id="groups-error"[^>]*>choose at least one device group', no_group.text)
    with transaction(engine) as session:
        assert session.scalars(select(RemediationActivity)).all() == []


def test_over_ten_thousand_message_on_the_form(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_org(engine)
    monkeypatch.setenv("REMEDIUM_MAX_DEVICES_PER_TICKET", "3")
    get_settings.cache_clear()
    try:
        client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
        text = _text(client.get(f"/remediation/request?recommendation={RECOMMENDATION}").text)
        assert "one remediation request and its ticket cover at most 3" in text
        assert "submit another request for each remaining device group" in text
    finally:
        get_settings.cache_clear()


def test_submit_shows_the_activity_with_ticket_pending_then_complete_by_hand(
    engine: Engine,
) -> None:
    build_org(engine)
    client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    activity_id = _submit(client)
    page = client.get(f"/remediation/activities/{activity_id}?created=1", headers=HTML)
    text = _text(page.text)
    assert "Remediation requested." in text
    assert "Ticket pending" in text
    assert "PCI finding" in text
    assert "0 / 4" in text
    assert text.count("Not fixed") == 4
    assert f'href="/recommendations/{RECOMMENDATION}"' in page.text
    assert f"/api/v1/remediation-activities/{activity_id}/devices.csv" in page.text
    assert "Request" in text  # the history has the request event

    csv = client.get(f"/api/v1/remediation-activities/{activity_id}/devices.csv")
    assert csv.status_code == 200
    assert csv.text.count("Not fixed") == 4

    viewer = client_for(engine, "viewer", rights=[Right.VIEW])
    assert "Mark as completed" not in viewer.get(f"/remediation/activities/{activity_id}").text
    assert viewer.post(f"/remediation/activities/{activity_id}/complete").status_code == 403

    done = client.post(f"/remediation/activities/{activity_id}/complete", follow_redirects=True)
    text = _text(done.text)
    assert "The activity is completed." in text
    assert "Manual · analyst" in text
    assert "Mark as completed" not in text
    listed = _text(client.get("/remediation?status=Completed").text)
    assert "analyst" in listed
    assert "1 activity" in listed


def test_activities_tab_filters_progress_and_export(engine: Engine) -> None:
    org = build_org(engine)
    client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    update_id = _submit(client)
    attention_id = _submit(
        client, remediation_type="AttentionRequired", due_on="", priority="Low", connector=""
    )
    with transaction(engine) as session:
        fix_devices(session, org.devices_a)
        refresh_activity_progress(session, device_ids=org.devices_a)

    everything = client.get("/remediation")
    assert everything.status_code == 200
    text = _text(everything.text)
    assert "2 activities" in text
    assert "2/4" in text  # group A's two devices are fixed
    assert "No progress" in text  # attention required has no progress bar
    assert 'aria-valuenow="50.0"' in everything.text

    low = client.get("/remediation?priority=Low")
    assert attention_id in low.text
    assert update_id not in low.text
    by_type = client.get("/remediation?remediation_type=Update&status=Active&overdue=no")
    assert update_id in by_type.text
    assert attention_id not in by_type.text
    by_connector = client.get("/remediation?connector=tickets")
    assert update_id in by_connector.text
    assert attention_id not in by_connector.text
    assert "1 activity" in _text(client.get("/remediation?overdue=no&priority=High").text)
    # A hand-edited, unknown filter value is ignored rather than refused.
    assert client.get("/remediation?priority=Urgent").status_code == 200

    export = re.search(r'href="(/api/v1/remediation-activities/export\.csv[^"]*)"', low.text)
    assert export is not None
    csv = client.get(export.group(1).replace("&amp;", "&")).text
    assert attention_id in csv
    assert update_id not in csv


def test_dashboard_card_lists_active_activities_soonest_due_first(engine: Engine) -> None:
    build_org(engine)
    client = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    later = _submit(client, due_on=IN_A_WEEK, priority="High")
    sooner = _submit(client, due_on=TOMORROW, priority="Low")
    finished = _submit(client, due_on=TOMORROW, priority="High")
    client.post(f"/remediation/activities/{finished}/complete")
    card = client.get("/").text.split('id="top-activities"', 1)[1].split("</section>", 1)[0]
    assert "Top remediation activities" in card
    assert card.index(sooner) < card.index(later)
    assert finished not in card
    assert 'href="/remediation"' in card


def test_scoped_user_sees_only_activities_of_their_groups(engine: Engine) -> None:
    org = build_org(engine)
    admin = client_for(engine, "boss", rights=[Right.VIEW, Right.REMEDIATION])
    only_b = _submit(admin, groups_mode="chosen", group=[str(org.group_b)])
    scoped = client_for(
        engine, "scoped", rights=[Right.VIEW, Right.REMEDIATION], group_ids=[org.group_a]
    )
    assert only_b not in scoped.get("/remediation").text
    assert scoped.get(f"/remediation/activities/{only_b}", headers=HTML).status_code == 404
    form = scoped.get(f"/remediation/request?recommendation={RECOMMENDATION}").text
    assert "group-B" not in form
    assert "2 exposed devices in scope" in _text(form)


# --- the journey in a real browser --------------------------------------------------------------


def _shot(page: Any, artifacts: Path, name: str, database_url: str) -> None:
    kind = "pg" if database_url.startswith("postgresql") else "sqlite"
    page.screenshot(path=str(artifacts / f"remediation-{name}-{kind}.png"), full_page=True)


def _jobs(engine: Engine, *jobs: Any) -> None:
    with httpx.Client(timeout=5.0) as http:
        runs = run_jobs(engine, EnabledConnectors(http), jobs=list(jobs))
    assert all(run.status == "ok" for run in runs), [(r.job, r.error) for r in runs]


@pytest.mark.browser
def test_from_request_to_automatic_completion_in_the_browser(
    engine: Engine,
    signed_in_page: Any,
    live_server: str,
    artifacts: Path,
    database_url: str,
) -> None:
    page = signed_in_page
    org = build_org(engine, devices_per_group=3)
    with transaction(engine) as session:
        # This journey sets its connection up through the settings page instead.
        session.execute(delete(ConnectorConfig))
    with FakeJira() as jira:
        # An administrator configures Jira, tests it and switches it on.
        page.goto(f"{live_server}/settings/connectors")
        card = page.locator("#connector-jira")
        assert card.get_by_test_id("connector-state").inner_text() == "Not configured"
        card.locator("input[name=base_url]").fill(jira.url)
        card.locator("input[name=project_key]").fill("SEC")
        card.locator("input[name=email]").fill(jira.email)
        card.locator("input[name=api_token]").fill(jira.api_token)
        # Each button posts a form and reloads the page: expect() waits for the new page.
        card.get_by_role("button", name="Save settings").click()
        card = page.locator("#connector-jira")
        expect(card.get_by_test_id("secret-api_token")).to_have_text("•••• set")
        assert jira.api_token not in page.content()
        card.get_by_role("button", name="Test connection").click()
        card = page.locator("#connector-jira")
        expect(card.get_by_test_id("test-result")).to_contain_text("Connection works")
        card.get_by_role("button", name="Switch on").click()
        expect(page.locator("#connector-jira").get_by_test_id("connector-state")).to_have_text("On")
        _shot(page, artifacts, "1-connectors", database_url)

        # An analyst asks for remediation from the recommendation.
        page.goto(f"{live_server}/recommendations/{RECOMMENDATION}")
        page.get_by_role("link", name="Remediation options").click()
        devices = page.get_by_test_id("preview-devices")
        assert devices.inner_text() == "6"
        page.locator("input[name=groups_mode][value=chosen]").check()
        page.locator(f"input[name=group][value='{org.group_a}']").check()
        # (expect, not wait_for_function: the page's CSP forbids evaluating strings)
        expect(devices).to_have_text("3")
        page.locator("input[name=groups_mode][value=all]").check()
        expect(devices).to_have_text("6")
        page.locator("input[name=remediation_type][value=AttentionRequired]").check()
        assert page.locator("#due_on").is_disabled()
        assert page.locator("#attention-note").is_visible()
        page.locator("input[name=remediation_type][value=Update]").check()
        assert page.locator("#due_on").is_enabled()
        page.locator("#due_on").fill(IN_A_WEEK)
        page.locator("select[name=priority]").select_option("High")
        page.locator("select[name=connector]").select_option("jira")
        page.locator("textarea[name=notes]").fill("Browsers first, please.")
        _shot(page, artifacts, "2-request-form", database_url)
        page.get_by_role("button", name="Submit request").click()
        page.wait_for_url(re.compile(r"/remediation/activities/[0-9a-f-]+\?created=1$"))
        activity_id = page.url.rsplit("/", 1)[1].split("?", 1)[0]
        assert "Remediation requested." in page.get_by_role("status").first.inner_text()
        assert page.locator("#ticket").get_by_test_id("ticket-state").inner_text() == (
            "Ticket pending"
        )

        # The Remediation page shows it, ticket still pending.
        page.get_by_role("link", name="Remediation", exact=True).first.click()
        row = page.locator(f"tr[data-activity='{activity_id}']")
        assert row.get_by_test_id("ticket-state").inner_text() == "Ticket pending"
        assert "0/6" in row.inner_text()

        # The worker delivers the ticket; the page shows Jira's own word for its state.
        _jobs(engine, OutboxDeliveryJob(), TicketSyncJob())
        assert len(jira.issues) == 1
        key = next(iter(jira.issues))
        page.reload()
        row = page.locator(f"tr[data-activity='{activity_id}']")
        assert row.get_by_test_id("ticket-state").inner_text() == "To Do"
        assert row.get_by_role("link", name=key).count() == 1
        _shot(page, artifacts, "3-activities", database_url)

        # A later scan fixes group A; IT moves the issue along.
        with transaction(engine) as session:
            fix_devices(session, org.devices_a)
        jira.transition(key, "In Progress")
        _jobs(engine, ActivityProgressJob(), TicketSyncJob())
        page.goto(f"{live_server}/remediation/activities/{activity_id}")
        assert page.get_by_test_id("fixed-devices").inner_text().startswith("3")
        assert page.get_by_test_id("activity-progress").inner_text() == "50%"
        assert page.locator("#ticket").get_by_test_id("ticket-state").inner_text() == "In Progress"
        assert page.locator("#target-devices .badge.fixed").count() == 3
        page.goto(f"{live_server}/")
        top = page.locator("#top-activities")
        assert activity_id in (top.get_by_role("link").first.get_attribute("href") or "")
        assert "3/6" in top.inner_text()
        _shot(page, artifacts, "4-dashboard", database_url)

        # The next scan fixes the rest: the activity completes itself.
        with transaction(engine) as session:
            fix_devices(session, org.devices_b)
        _jobs(engine, ActivityProgressJob())
        page.goto(f"{live_server}/remediation/activities/{activity_id}")
        assert page.get_by_test_id("activity-status").inner_text() == "Completed"
        assert "System confirmation" in page.get_by_test_id("completion").inner_text()
        assert page.get_by_test_id("activity-progress").inner_text() == "100%"
        assert page.get_by_test_id("mark-completed").count() == 0
        history = page.locator("#history").inner_text()
        assert "Request" in history
        assert "Complete" in history
        assert "Ticket created" in history
        _shot(page, artifacts, "5-completed", database_url)
        page.goto(f"{live_server}/remediation?status=Completed")
        row = page.locator(f"tr[data-activity='{activity_id}']")
        assert "System confirmation" in row.inner_text()
        assert jira.count_for(f"remedium-activity-{activity_id}") == 1
