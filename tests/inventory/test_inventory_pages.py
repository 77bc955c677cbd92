"""In Chromium: the device page's value and tag forms, and the device-groups admin page
(create with rules, move up, refuse to delete a group under an exception, delete)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal, Right
from remedium.db.session import transaction
from remedium.exceptions import filing
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.signin import PASSWORD, make_user, sign_in_page


def _org(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        home = make_group(session, "Home")
        chrome = make_software(session, "google", "chrome")
        cve = make_vulnerability(session, "CVE-2024-7200", cvss=9.1, severity="Critical")
        ids = {"home": home.id}
        for name in ("web-1.dmz.example.com", "db-1.lan.example.com"):
            device = make_device(session, home, name, os_platform="Linux")
            install(session, device, chrome, "1.0")
            add_weakness(session, device, chrome, cve)
            ids[name] = device.id
        recompute(session)
    return ids


def test_device_value_and_tags_on_the_device_page(
    page: Any, live_server: str, engine: Engine
) -> None:
    ids = _org(engine)
    with transaction(engine) as session:
        make_user(session, "keeper", rights=[Right.VIEW, Right.INVENTORY])
        make_user(session, "looker", rights=[Right.VIEW])
    sign_in_page(page, live_server, "keeper", PASSWORD)
    device_id = ids["web-1.dmz.example.com"]
    page.goto(f"{live_server}/devices/{device_id}")
    before = page.get_by_test_id("device-exposure").inner_text()
    page.get_by_label("Device value", exact=True).select_option("High")
    page.get_by_role("button", name="Set value").click()
    page.wait_for_url(lambda url: "notice=" in url)
    assert "Device value set to High" in page.get_by_test_id("notice").inner_text()
    assert page.get_by_test_id("device-exposure").inner_text() == before  # own score unchanged
    page.get_by_label("New tag").fill("Payments")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_url(lambda url: "added" in url)
    assert "Payments" in page.get_by_test_id("device-tags").inner_text()
    page.get_by_role("button", name="Remove tag Payments").click()
    page.wait_for_url(lambda url: "removed" in url)
    assert page.get_by_test_id("device-tags").count() == 0
    with Session(engine) as session:
        device = session.get_one(Device, device_id)
        assert (device.device_value, device.tags) == ("High", [])
    # Without the inventory right the forms are not shown (tests/security checks the 403).
    page.context.clear_cookies()
    sign_in_page(page, live_server, "looker", PASSWORD)
    page.goto(f"{live_server}/devices/{device_id}")
    assert page.get_by_role("button", name="Set value").count() == 0


def test_device_groups_admin_page(page: Any, live_server: str, engine: Engine) -> None:
    ids = _org(engine)
    with transaction(engine) as session:
        make_user(session, "boss")
    sign_in_page(page, live_server, "boss", PASSWORD)
    page.goto(f"{live_server}/settings/device-groups")
    rows = page.get_by_test_id("groups")
    assert "Ungrouped devices" in rows.inner_text()
    # Create a rule group: DMZ by domain.
    page.locator("section", has_text="New device group").get_by_label("Name").fill("DMZ")
    new = page.locator("section", has_text="New device group")
    new.get_by_label("Rule 1 field").select_option("domain")
    new.get_by_label("Rule 1 value").fill("dmz.example.com")
    new.get_by_role("button", name="Create group").click()
    page.wait_for_url(lambda url: "notice=" in url)
    assert "1 device moved" in page.get_by_test_id("notice").inner_text()
    dmz_row = page.locator("tr[data-group='DMZ']")
    assert dmz_row.get_by_test_id("devices").inner_text() == "1"
    # A second rule group for every Linux device, ranked below DMZ: it takes db-1 only.
    new = page.locator("section", has_text="New device group")
    new.get_by_label("Name").fill("Linux")
    new.get_by_label("Rule 1 field").select_option("os_platform")
    new.get_by_label("Rule 1 value").fill("Linux")
    new.get_by_role("button", name="Create group").click()
    page.wait_for_url(lambda url: "Linux" in url)
    assert page.locator("tr[data-group='Linux']").get_by_test_id("devices").inner_text() == "1"
    page.get_by_role("button", name="Move Linux up").click()
    page.wait_for_url(lambda url: "rank" in url)
    assert page.locator("tr[data-group='Linux']").get_by_test_id("devices").inner_text() == "2"
    assert page.locator("tr[data-group='DMZ']").get_by_test_id("devices").inner_text() == "0"
    # An exception on Linux keeps it from being deleted.
    with transaction(engine) as session:
        linux = session.scalars(select(DeviceGroup).where(DeviceGroup.name == "Linux")).one()
        analyst = Principal(user_id=None, name="ana", rights=frozenset({Right.EXCEPTIONS}))
        filing.file_exception(
            session,
            analyst,
            justification="AcceptRisk",
            recommendation_id="va-_-google-_-chrome",
            device_group_ids=[linux.id],
            duration_days=30,
        )
    page.get_by_role("button", name="Delete Linux").click()
    assert "still in scope of exceptions" in page.get_by_test_id("error").inner_text()
    assert page.locator("tr[data-group='Linux']").count() == 1
    page.get_by_role("button", name="Delete DMZ").click()
    page.wait_for_url(lambda url: "deleted" in url)
    assert page.locator("tr[data-group='DMZ']").count() == 0
    # Rename through the edit form.
    page.get_by_role("link", name="Home").click()
    page.locator("section", has_text="Edit").get_by_label("Name").fill("Headquarters")
    page.get_by_role("button", name="Save group").click()
    page.wait_for_url(lambda url: "saved" in url)
    assert page.locator("tr[data-group='Headquarters']").count() == 1
    assert ids["home"] > 0
