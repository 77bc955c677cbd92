"""Jira issues through the fake Jira: fields sent, labels, status categories, sign-in modes."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from remedium.connectors.base import NormalizedState, Priority, RemediationType
from remedium.connectors.errors import RequestRejectedError
from remedium.connectors.registry import build_connector
from tests.support.connector_harness import Harness, make_request
from tests.support.fake_ticketing import FakeJira


def _issue(jira: Harness, key: str) -> dict[str, object]:
    fake = jira.fake
    assert isinstance(fake, FakeJira)
    return fake.issues[key]["fields"]  # type: ignore[no-any-return]


def test_issue_fields_carry_the_request(jira: Harness) -> None:
    ref = jira.connector.create_ticket(make_request(priority=Priority.LOW))
    assert ref.key == "SEC-1"
    assert ref.url == f"{jira.fake.url}/browse/SEC-1"
    fields = _issue(jira, "SEC-1")
    assert fields["summary"] == "Update Google Chrome"
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["priority"] == {"name": "Low"}
    assert fields["duedate"] == "2026-12-31"
    assert fields["labels"] == ["remedium", "remedium-activity-42"]
    description = str(fields["description"])
    assert "analyst@contoso.com" in description
    assert "http://127.0.0.1:8000/remediation/activities/42" in description


def test_attention_required_has_no_due_date(jira: Harness) -> None:
    jira.connector.create_ticket(
        make_request(remediation_type=RemediationType.ATTENTION_REQUIRED, due_on=None)
    )
    assert "duedate" not in _issue(jira, "SEC-1")


def test_status_categories_and_a_declined_issue(jira: Harness) -> None:
    fake = jira.fake
    assert isinstance(fake, FakeJira)
    ref = jira.connector.create_ticket(make_request())
    state = jira.connector.get_state(ref)
    assert (state.system_state, state.system_detail, state.state) == (
        "To Do",
        "new",
        NormalizedState.PENDING,
    )
    fake.transition("SEC-1", "Won't Do")
    state = jira.connector.get_state(ref)
    assert (state.system_state, state.system_detail, state.state) == (
        "Won't Do",
        "done",
        NormalizedState.REJECTED,
    )


def test_an_unknown_priority_name_is_a_permanent_error(jira: Harness, client: httpx.Client) -> None:
    connector = jira.build(client, priority_names={"High": "P1", "Medium": "P2", "Low": "P3"})
    with pytest.raises(RequestRejectedError, match="priority"):
        connector.create_ticket(make_request())


def test_priority_can_be_left_out(jira: Harness, client: httpx.Client) -> None:
    connector = jira.build(client, set_priority=False)
    connector.create_ticket(make_request())
    assert "priority" not in _issue(jira, "SEC-1")


def test_a_missing_project_fails_the_connection_test(jira: Harness, client: httpx.Client) -> None:
    check = jira.build(client, project_key="NOPE").test_connection()
    assert not check.ok
    assert "No project could be found with key 'NOPE'" in check.message


def test_connection_test_names_the_account(jira: Harness) -> None:
    check = jira.connector.test_connection()
    assert check.ok
    assert "remedium-bot@example.com" in check.message
    assert "SEC" in check.message


def test_personal_access_token_sign_in(jira: Harness, client: httpx.Client) -> None:
    fake = jira.fake
    assert isinstance(fake, FakeJira)
    connector = build_connector(
        "jira",
        {
            "base_url": fake.url,
            "project_key": "SEC",
            "personal_access_token": fake.personal_access_token,
        },
        client,
    )
    ref = connector.create_ticket(make_request())
    assert connector.find_ticket("remedium-activity-42") == type(ref)(
        ref.system, ref.external_id, ref.key, ref.url
    )
    assert fake.requests[-1].headers["Authorization"].startswith("Bearer ")


def test_exactly_one_way_to_sign_in_is_required() -> None:
    with pytest.raises(ValidationError, match="either email and api_token"):
        build_connector("jira", {"base_url": "http://x", "project_key": "SEC"}, httpx.Client())


def test_the_cloud_search_path_can_be_chosen(jira: Harness, client: httpx.Client) -> None:
    connector = jira.build(client, search_path="/rest/api/3/search/jql")
    ref = connector.create_ticket(make_request())
    found = connector.find_ticket("remedium-activity-42")
    assert found is not None
    assert found.key == ref.key
    assert jira.fake.requests[-1].path == "/rest/api/3/search/jql"
