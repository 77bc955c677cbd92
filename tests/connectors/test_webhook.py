"""The signed webhook against the fake receiver: payload, signature, dedupe, state."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from remedium.connectors.base import NormalizedState, RemediationType
from remedium.connectors.registry import build_connector
from remedium.connectors.webhook import (
    EVENT_EXCEPTION_EXPIRING,
    EXCEPTION_SCHEMA,
    WebhookConnector,
    verify,
)
from tests.support.connector_harness import Harness, make_request
from tests.support.fake_ticketing import FakeWebhook


def _fake(webhook: Harness) -> FakeWebhook:
    assert isinstance(webhook.fake, FakeWebhook)
    return webhook.fake


def test_delivery_is_signed_over_the_raw_body(webhook: Harness) -> None:
    webhook.connector.create_ticket(make_request())
    (delivery,) = webhook.fake.requests
    expected = hmac.new(_fake(webhook).secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Remedium-Signature"] == f"sha256={expected}"
    assert delivery.headers["Idempotency-Key"] == "remedium-activity-42"
    assert delivery.headers["X-Remedium-Timestamp"].isdigit()
    assert verify(_fake(webhook).secret, delivery.body, delivery.headers["X-Remedium-Signature"])
    assert not verify("other", delivery.body, delivery.headers["X-Remedium-Signature"])


def test_payload_follows_the_documented_schema(webhook: Harness) -> None:
    ref = webhook.connector.create_ticket(
        make_request(remediation_type=RemediationType.ATTENTION_REQUIRED, due_on=None)
    )
    payload = json.loads(webhook.fake.requests[0].body)
    assert payload["schema"] == "remedium.remediation.v1"
    assert payload["event"] == "remediation.requested"
    assert payload["idempotency_key"] == "remedium-activity-42"
    activity = payload["activity"]
    assert activity["remediation_type"] == "attentionRequired"
    assert activity["due_on"] is None
    assert activity["product"]["recommended_version"] == "121.0.6167.85"
    assert activity["target_device_count"] == 3
    assert activity["target_devices"][0]["machine_id"]
    assert ref.external_id == "WH-1"
    assert ref.url.endswith("/tickets/WH-1")


def test_the_receiver_dedupes_a_redelivery(webhook: Harness) -> None:
    first = webhook.connector.create_ticket(make_request())
    second = webhook.connector.create_ticket(make_request())
    assert first.external_id == second.external_id
    assert len(webhook.fake.requests) == 2
    assert _fake(webhook).count_for("remedium-activity-42") == 1


def test_state_is_read_from_the_status_url(webhook: Harness) -> None:
    ref = webhook.connector.create_ticket(make_request())
    assert webhook.connector.get_state(ref).system_state == "received"
    _fake(webhook).set_state(ref.external_id, "declined")
    state = webhook.connector.get_state(ref)
    assert (state.system_state, state.state) == ("declined", NormalizedState.REJECTED)


def test_without_a_status_url_the_state_stays_delivered(
    webhook: Harness, client: httpx.Client
) -> None:
    connector = webhook.build(client, status_url_template="")
    ref = connector.create_ticket(make_request())
    webhook.fake.requests.clear()
    state = connector.get_state(ref)
    assert (state.system_state, state.state) == ("delivered", NormalizedState.PENDING)
    assert webhook.fake.requests == []


def test_a_receiver_that_answers_204_still_yields_a_ticket_ref() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    connector = build_connector(
        "webhook", {"url": "https://hooks.example/x", "secret": "s"}, client
    )
    ref = connector.create_ticket(make_request())
    assert ref.external_id == "remedium-activity-42"


def test_ping_and_other_events_make_no_ticket(webhook: Harness) -> None:
    assert webhook.connector.test_connection().ok
    connector = webhook.connector
    assert isinstance(connector, WebhookConnector)
    connector.send_event(
        EVENT_EXCEPTION_EXPIRING,
        EXCEPTION_SCHEMA,
        "remedium-exception-3-expiring",
        {"exception": {"id": "3"}},
    )
    assert _fake(webhook).pings == 1
    assert json.loads(webhook.fake.requests[-1].body)["event"] == "exception.expiring"
    assert _fake(webhook).tickets == {}
