"""Intune security tasks through the fake Microsoft Graph: what is sent, sign-in, look-up, cap."""

from __future__ import annotations

import time

import httpx
import pytest

from remedium.connectors.base import (
    MAX_DEVICES_PER_TICKET,
    NormalizedState,
    Priority,
    RemediationType,
)
from remedium.connectors.errors import (
    AuthenticationError,
    NothingToSendError,
    UnexpectedReplyError,
)
from remedium.connectors.registry import build_connector
from tests.support.connector_harness import Harness, make_devices, make_request
from tests.support.fake_ticketing import FakeGraph


def _posted_task(graph: Harness) -> dict[str, object]:
    posts = [r for r in graph.fake.requests if r.method == "POST" and graph.create_path in r.path]
    assert len(posts) == 1
    body = posts[0].json()
    assert isinstance(body, dict)
    return body


def test_software_update_becomes_an_app_vulnerability_task(graph: Harness) -> None:
    ref = graph.connector.create_ticket(make_request(priority=Priority.HIGH))
    task = _posted_task(graph)
    assert task["@odata.type"] == "#microsoft.graph.appVulnerabilityTask"
    assert task["displayName"] == "Update Google Chrome"
    assert (task["appName"], task["appPublisher"], task["appVersion"]) == (
        "chrome",
        "google",
        "120.0.6099.71",
    )
    assert task["mitigationType"] == "update"
    assert task["category"] == "advancedThreatProtection"
    assert task["status"] == "pending"
    assert task["priority"] == "high"
    assert task["creator"] == "analyst@contoso.com"
    assert task["dueDateTime"] == "2026-12-31T23:59:59Z"
    assert task["managedDeviceCount"] == 3
    assert "[remedium:remedium-activity-42]" in str(task["creatorNotes"])
    assert "Needed for the PCI audit." in str(task["creatorNotes"])
    assert "121.0.6167.85" in str(task["remediation"])
    assert ref.url == f"https://intune.example/tasks/{ref.external_id}"


def test_configuration_change_becomes_a_security_configuration_task(graph: Harness) -> None:
    graph.connector.create_ticket(
        make_request(
            remediation_type=RemediationType.CONFIGURATION_CHANGE,
            product=None,
            configuration_id="scid-2010",
            priority=Priority.LOW,
        )
    )
    task = _posted_task(graph)
    assert task["@odata.type"] == "#microsoft.graph.securityConfigurationTask"
    assert "appName" not in task
    assert task["priority"] == "low"
    assert "scid-2010" in str(task["description"])


def test_attention_required_has_no_due_date(graph: Harness) -> None:
    graph.connector.create_ticket(
        make_request(remediation_type=RemediationType.ATTENTION_REQUIRED, due_on=None)
    )
    task = _posted_task(graph)
    assert "dueDateTime" not in task
    assert task["mitigationType"] == "unknown"


@pytest.mark.parametrize(
    ("medium_as", "expected"), [(None, "high"), ("low", "low"), ("none", "none")]
)
def test_medium_priority_mapping_is_configurable(
    graph: Harness, client: httpx.Client, medium_as: str | None, expected: str
) -> None:
    connector = graph.build(client, **({"medium_priority": medium_as} if medium_as else {}))
    connector.create_ticket(make_request(priority=Priority.MEDIUM))
    task = _posted_task(graph)
    assert task["priority"] == expected
    assert "Priority in remedium: Medium" in str(task["description"])


def test_only_managed_devices_are_sent_and_the_rest_are_counted(graph: Harness) -> None:
    devices = make_devices(4, managed=True) + make_devices(6, managed=False, prefix="srv")
    ref = graph.connector.create_ticket(make_request(devices=devices))
    task = _posted_task(graph)
    assert task["managedDeviceCount"] == 4
    assert (ref.devices_sent, ref.devices_skipped) == (4, 6)
    assert "srv-" not in str(task["description"])


def test_a_request_without_managed_devices_is_refused_before_calling_graph(graph: Harness) -> None:
    with pytest.raises(NothingToSendError, match="none of the 5 target devices"):
        graph.connector.create_ticket(make_request(devices=make_devices(5, managed=False)))
    assert graph.fake.requests == []


def test_the_10000_device_cap_is_respected_when_given_more(graph: Harness) -> None:
    devices = make_devices(MAX_DEVICES_PER_TICKET + 250)
    ref = graph.connector.create_ticket(make_request(devices=devices))
    task = _posted_task(graph)
    assert task["managedDeviceCount"] == 10_000
    assert (ref.devices_sent, ref.devices_skipped) == (10_000, 250)
    # The description lists a readable handful, not ten thousand names.
    assert "and 9950 more" in str(task["description"])
    assert len(str(task["description"])) < 5_000


def test_the_token_is_cached_until_it_expires(graph: Harness) -> None:
    ref = graph.connector.create_ticket(make_request())
    for _ in range(3):
        graph.connector.get_state(ref)
    graph.connector.find_ticket("remedium-activity-42")
    fake = graph.fake
    assert isinstance(fake, FakeGraph)
    assert fake.tokens_issued == 1


def test_an_expired_token_is_renewed(client: httpx.Client) -> None:
    # A 2-second token is renewed after 1 second (half its life), before Graph refuses it.
    with FakeGraph(token_lifetime=2) as fake:
        connector = build_connector(
            "intune",
            {
                "tenant_id": fake.tenant_id,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "authority_url": fake.url,
                "graph_url": fake.url,
            },
            client,
        )
        ref = connector.create_ticket(make_request())
        time.sleep(1.2)
        assert connector.get_state(ref).system_state == "pending"
        assert fake.tokens_issued == 2


def test_a_revoked_token_is_replaced_once(graph: Harness) -> None:
    fake = graph.fake
    assert isinstance(fake, FakeGraph)
    ref = graph.connector.create_ticket(make_request())
    fake.revoke_tokens()
    assert graph.connector.get_state(ref).state is NormalizedState.PENDING
    assert fake.tokens_issued == 2


def test_wrong_client_secret_is_an_authentication_error(
    graph: Harness, client: httpx.Client
) -> None:
    connector = graph.build(client, client_secret="wrong-secret")
    with pytest.raises(AuthenticationError, match="AADSTS7000215"):
        connector.create_ticket(make_request())


def test_unknown_tenant_is_an_authentication_error(graph: Harness, client: httpx.Client) -> None:
    connector = graph.build(client, tenant_id="not-a-tenant.example")
    check = connector.test_connection()
    assert not check.ok
    assert "AADSTS90002" in check.message


def test_rejected_task_reads_back_as_rejected(graph: Harness) -> None:
    fake = graph.fake
    assert isinstance(fake, FakeGraph)
    ref = graph.connector.create_ticket(make_request())
    fake.set_status(ref.external_id, "rejected")
    state = graph.connector.get_state(ref)
    assert (state.system_state, state.state) == ("rejected", NormalizedState.REJECTED)


def test_look_up_follows_next_links_across_pages(client: httpx.Client) -> None:
    with FakeGraph(page_size=2) as fake:
        connector = build_connector(
            "intune",
            {
                "tenant_id": fake.tenant_id,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "authority_url": fake.url,
                "graph_url": fake.url,
            },
            client,
        )
        refs = [connector.create_ticket(make_request(str(n))) for n in range(7)]
        found = connector.find_ticket("remedium-activity-6")
        assert found is not None
        assert found.external_id == refs[6].external_id
        pages = [
            r for r in fake.requests if r.method == "GET" and "deviceAppManagementTasks" in r.path
        ]
        assert len(pages) == 4  # 7 tasks, 2 a page


def test_a_next_link_to_another_host_is_not_followed() -> None:
    # The bearer token must never be sent outside the configured Graph.
    seen: list[str] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return httpx.Response(
            200, json={"value": [], "@odata.nextLink": "https://attacker.example/steal"}
        )

    connector = build_connector(
        "intune",
        {
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": "s",
            "graph_url": "https://graph.example",
        },
        httpx.Client(transport=httpx.MockTransport(graph)),
    )
    with pytest.raises(UnexpectedReplyError, match="nextLink"):
        connector.find_ticket("remedium-activity-1")
    assert not any("attacker" in url for url in seen)
