"""Connector administration: the REST API and the settings page; secrets are write-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from remedium.audit.models import AuditEvent
from remedium.auth.principal import Right
from remedium.connectors.models import ConnectorConfig
from remedium.db.session import transaction
from tests.support.fake_ticketing import FakeJira
from tests.support.signin import client_for

SECRET = "fake-jira-api-token+value"


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira(api_token=SECRET) as fake:
        yield fake


def _jira_config(fake: FakeJira, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": fake.url,
        "project_key": "SEC",
        "email": fake.email,
        "api_token": SECRET,
    }
    config.update(overrides)
    return config


def test_api_configures_masks_secrets_switches_and_tests(
    engine: Engine, admin_client: Any, fake_jira: FakeJira
) -> None:
    empty = admin_client.get("/api/v1/connectors").json()
    assert empty["items"] == []
    assert empty["kinds"] == ["intune", "jira", "servicenow", "webhook"]

    saved = admin_client.put(
        "/api/v1/connectors/jira", json={"kind": "jira", "config": _jira_config(fake_jira)}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["enabled"] is False  # off until switched on
    assert saved.json()["config"]["api_token"] == "********"
    listed = admin_client.get("/api/v1/connectors")
    assert SECRET not in listed.text
    assert listed.json()["items"][0]["config"]["personal_access_token"] == ""

    # Sending the mask (or nothing) back keeps the stored secret: the test still signs in.
    edit = _jira_config(fake_jira, api_token="********", issue_type="Bug")
    assert (
        admin_client.put("/api/v1/connectors/jira", json={"kind": "jira", "config": edit}).json()[
            "config"
        ]["issue_type"]
        == "Bug"
    )
    tested = admin_client.post("/api/v1/connectors/jira/test").json()
    assert tested["ok"] is True, tested
    assert "project SEC found" in tested["message"]

    assert admin_client.post("/api/v1/connectors/jira/enable").json()["enabled"] is True
    assert admin_client.post("/api/v1/connectors/jira/disable").json()["enabled"] is False
    assert admin_client.post("/api/v1/connectors/nope/enable").status_code == 404
    assert admin_client.post("/api/v1/connectors/nope/test").status_code == 404

    with transaction(engine) as session:
        stored = session.get(ConnectorConfig, "jira")
        assert stored is not None
        assert stored.config["api_token"] == SECRET
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        audited = " ".join(str(e.after) for e in session.scalars(select(AuditEvent)))
    assert {"connector.configure", "connector.test", "connector.enable"} <= set(actions)
    assert SECRET not in audited


def test_api_refuses_bad_settings_without_echoing_them(admin_client: Any) -> None:
    reply = admin_client.put(
        "/api/v1/connectors/jira",
        json={"kind": "jira", "config": {"base_url": "http://x", "project_key": "sec",
                                          "email": "a@b", "api_token": "s3cret-value"}},
    )  # fmt: skip
    assert reply.status_code == 422
    assert "s3cret-value" not in reply.text
    assert any(d["loc"][-1] == "project_key" for d in reply.json()["detail"])
    assert (
        admin_client.put("/api/v1/connectors/x", json={"kind": "fax", "config": {}}).status_code
        == 422
    )


def test_only_administrators(engine: Engine) -> None:
    analyst = client_for(engine, "analyst", rights=[Right.VIEW, Right.REMEDIATION])
    assert analyst.get("/api/v1/connectors").status_code == 403
    assert analyst.put("/api/v1/connectors/jira", json={"kind": "jira"}).status_code == 403
    assert analyst.get("/settings/connectors").status_code == 403


def test_settings_page_never_renders_a_secret(engine: Engine, fake_jira: FakeJira) -> None:
    admin = client_for(engine, "admin")
    page = admin.get("/settings/connectors")
    assert page.status_code == 200
    for label in ("Microsoft Intune", "Jira", "ServiceNow", "Webhook"):
        assert label in page.text
    assert page.text.count("Not configured") == 4

    bad = admin.post(
        "/settings/connectors/jira",
        data={"kind": "jira", **_jira_config(fake_jira, project_key="lower")},
    )
    assert bad.status_code == 422
    assert SECRET not in bad.text
    assert "String should match pattern" in bad.text

    saved = admin.post(
        "/settings/connectors/jira",
        data={"kind": "jira", **_jira_config(fake_jira), "set_priority": "1"},
    )
    assert saved.status_code == 303
    page = admin.get("/settings/connectors").text
    assert SECRET not in page
    assert "•••• set" in page
    assert 'name="api_token" value=""' in page

    # Saving again with the secret left blank keeps it.
    admin.post(
        "/settings/connectors/jira",
        data={"kind": "jira", **_jira_config(fake_jira, api_token="", issue_type="Bug")},
    )
    tested = admin.post("/settings/connectors/jira/test").text
    assert "Connection works: Signed in as" in tested
    assert SECRET not in tested
    admin.post("/settings/connectors/jira/enable")
    with transaction(engine) as session:
        row = session.get(ConnectorConfig, "jira")
        assert row is not None
        assert row.enabled
        assert row.config["issue_type"] == "Bug"
        # An unticked checkbox is sent as nothing: it means "off".
        assert row.config["set_priority"] is False

    fake_jira.stop()
    failed = admin.post("/settings/connectors/jira/test").text
    assert "Connection failed:" in failed
