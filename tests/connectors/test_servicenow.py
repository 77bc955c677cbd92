"""ServiceNow records through the fake Table API: correlation fields, tables, state numbers."""

from __future__ import annotations

import httpx
import pytest

from remedium.connectors.base import NormalizedState, Priority
from remedium.connectors.errors import RequestRejectedError
from tests.support.connector_harness import Harness, make_request
from tests.support.fake_ticketing import FakeServiceNow


def _fake(servicenow: Harness) -> FakeServiceNow:
    assert isinstance(servicenow.fake, FakeServiceNow)
    return servicenow.fake


def test_sc_task_carries_the_correlation_fields(servicenow: Harness) -> None:
    ref = servicenow.connector.create_ticket(make_request(priority=Priority.MEDIUM))
    record = _fake(servicenow).records["sc_task"][ref.external_id]
    assert ref.key == record["number"]
    assert ref.key.startswith("SCTASK")
    assert ref.url == f"{servicenow.fake.url}/sc_task.do?sys_id={ref.external_id}"
    assert record["correlation_id"] == "remedium-activity-42"
    assert record["correlation_display"] == "remedium"
    assert record["short_description"] == "Update Google Chrome"
    assert record["priority"] == "3"
    assert record["due_date"] == "2026-12-31 23:59:59"


@pytest.mark.parametrize(
    ("number", "label", "state"),
    [
        ("-5", "Pending", NormalizedState.PENDING),
        ("1", "Open", NormalizedState.PENDING),
        ("2", "Work in Progress", NormalizedState.IN_PROGRESS),
        ("3", "Closed Complete", NormalizedState.COMPLETED),
        ("4", "Closed Incomplete", NormalizedState.REJECTED),
        ("7", "Closed Skipped", NormalizedState.REJECTED),
    ],
)
def test_sc_task_states(
    servicenow: Harness, number: str, label: str, state: NormalizedState
) -> None:
    ref = servicenow.connector.create_ticket(make_request())
    _fake(servicenow).set_state("sc_task", ref.external_id, number)
    read = servicenow.connector.get_state(ref)
    assert (read.system_detail, read.system_state, read.state) == (number, label, state)


@pytest.mark.parametrize(
    ("number", "label", "state"),
    [
        ("1", "New", NormalizedState.PENDING),
        ("2", "In Progress", NormalizedState.IN_PROGRESS),
        ("3", "On Hold", NormalizedState.IN_PROGRESS),
        ("6", "Resolved", NormalizedState.COMPLETED),
        ("7", "Closed", NormalizedState.COMPLETED),
        ("8", "Canceled", NormalizedState.REJECTED),
    ],
)
def test_incident_states_and_priority(
    servicenow: Harness, client: httpx.Client, number: str, label: str, state: NormalizedState
) -> None:
    connector = servicenow.build(client, table="incident")
    ref = connector.create_ticket(make_request(priority=Priority.HIGH))
    record = _fake(servicenow).records["incident"][ref.external_id]
    assert ref.key.startswith("INC")
    assert (record["impact"], record["urgency"]) == ("2", "1")
    assert "priority" not in record  # incident derives it from impact and urgency
    _fake(servicenow).set_state("incident", ref.external_id, number)
    read = connector.get_state(ref)
    assert (read.system_detail, read.system_state, read.state) == (number, label, state)


def test_look_up_is_one_correlation_id_query(servicenow: Harness) -> None:
    servicenow.connector.create_ticket(make_request())
    servicenow.fake.requests.clear()
    found = servicenow.connector.find_ticket("remedium-activity-42")
    assert found is not None
    (query,) = servicenow.fake.requests
    assert query.param("sysparm_query").startswith("correlation_id=remedium-activity-42")
    assert query.param("sysparm_limit") == "1"


def test_an_unknown_table_is_a_permanent_error(servicenow: Harness, client: httpx.Client) -> None:
    connector = servicenow.build(client, table="u_not_there")
    with pytest.raises(RequestRejectedError, match="Invalid table u_not_there"):
        connector.create_ticket(make_request())
    assert not connector.test_connection().ok
