"""What every connector promises, checked against each fake system over real HTTP on loopback."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from remedium.connectors.base import MASK, NormalizedState, TicketConnector
from remedium.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    ConnectorTimeoutError,
    ConnectorUnreachableError,
    PermanentError,
    RateLimitedError,
    ServerError,
    TransientError,
)
from remedium.connectors.registry import CONNECTORS, build_connector, config_model
from tests.support.connector_harness import CLIENT_TIMEOUT, Harness, deliver, make_request


def test_every_registered_connector_implements_the_protocol(harness: Harness) -> None:
    assert harness.system in CONNECTORS
    assert isinstance(harness.connector, TicketConnector)
    assert harness.connector.name == harness.system
    assert config_model(harness.system) is type(harness.connector).config_model


def test_create_then_find_then_follow_the_state(harness: Harness) -> None:
    request = make_request()
    assert harness.connector.find_ticket(request.idempotency_key) is None

    created = harness.connector.create_ticket(request)
    assert created.system == harness.system
    assert created.external_id
    assert created.devices_sent == 3
    assert harness.fake.count_for(request.idempotency_key) == 1

    found = harness.connector.find_ticket(request.idempotency_key)
    if harness.system == "webhook":
        assert found is None  # a webhook cannot be searched; the receiver dedupes instead
    else:
        assert found is not None
        assert (found.external_id, found.key, found.url) == (
            created.external_id,
            created.key,
            created.url,
        )

    first = harness.connector.get_state(created)
    assert first.state in (NormalizedState.PENDING,)
    for system_word, expected in harness.lifecycle:
        harness.advance(created, system_word)
        state = harness.connector.get_state(created)
        assert state.state == expected, (system_word, state)


def test_find_does_not_confuse_two_activities(harness: Harness) -> None:
    one = harness.connector.create_ticket(make_request("1"))
    two = harness.connector.create_ticket(make_request("12"))
    assert one.external_id != two.external_id
    if harness.system != "webhook":
        found = harness.connector.find_ticket(make_request("1").idempotency_key)
        assert found is not None
        assert found.external_id == one.external_id
        assert harness.connector.find_ticket("remedium-activity-999") is None


def test_test_connection_succeeds_with_good_credentials(harness: Harness) -> None:
    check = harness.connector.test_connection()
    assert check.ok, check.message
    assert check.message


def test_test_connection_fails_with_a_wrong_secret_and_says_why(
    harness: Harness, client: httpx.Client
) -> None:
    secret_field = {
        "intune": "client_secret",
        "jira": "api_token",
        "servicenow": "password",
        "webhook": "secret",
    }[harness.system]
    wrong = harness.build(client, **{secret_field: "definitely-not-it-123"})
    check = wrong.test_connection()
    assert not check.ok
    assert "401" in check.message
    assert "definitely-not-it-123" not in check.message
    for secret in harness.secrets:
        assert secret not in check.message


def test_test_connection_fails_when_the_system_is_down(harness: Harness) -> None:
    harness.fake.stop()
    check = harness.connector.test_connection()
    assert not check.ok
    assert "connection failed" in check.message


def test_public_config_masks_every_secret(harness: Harness) -> None:
    shown = harness.connector.public_config()
    rendered = repr(shown)
    for secret in harness.secrets:
        assert secret not in rendered
    assert MASK in shown.values()
    assert harness.fake.url in rendered  # the rest is shown as configured


# --- each fault becomes the right kind of error ------------------------------------------------


def _create(harness: Harness) -> None:
    harness.connector.create_ticket(make_request())


@pytest.mark.parametrize(
    ("inject", "error_class", "transient"),
    [
        pytest.param(
            lambda h: h.fake.fail(1, 500, path=h.create_path), ServerError, True, id="500"
        ),
        pytest.param(
            lambda h: h.fake.fail(1, 503, path=h.create_path), ServerError, True, id="503"
        ),
        pytest.param(
            lambda h: h.fake.fail(1, 429, retry_after="7", path=h.create_path),
            RateLimitedError,
            True,
            id="429",
        ),
        pytest.param(
            lambda h: h.fake.delay(CLIENT_TIMEOUT + 0.5, path=h.create_path),
            ConnectorTimeoutError,
            True,
            id="timeout",
        ),
        pytest.param(lambda h: h.fake.stop(), ConnectorUnreachableError, True, id="refused"),
        pytest.param(
            lambda h: h.fake.drop(1, path=h.create_path), ConnectorUnreachableError, True, id="drop"
        ),
        pytest.param(
            lambda h: h.fake.commit_then_fail(1, path=h.create_path),
            ServerError,
            True,
            id="commit-then-500",
        ),
        pytest.param(
            lambda h: h.fake.fail(1, 401, path=h.create_path),
            AuthenticationError,
            False,
            id="401",
        ),
        pytest.param(
            lambda h: h.fake.fail(1, 403, path=h.create_path),
            AuthenticationError,
            False,
            id="403",
        ),
        pytest.param(
            lambda h: h.fake.fail(1, 400, path=h.create_path), PermanentError, False, id="400"
        ),
    ],
)
def test_faults_map_to_transient_or_permanent(
    harness: Harness,
    inject: Callable[[Harness], None],
    error_class: type[ConnectorError],
    transient: bool,
) -> None:
    inject(harness)
    started = time.monotonic()
    with pytest.raises(error_class) as caught:
        _create(harness)
    assert isinstance(caught.value, TransientError) is transient
    assert isinstance(caught.value, PermanentError) is not transient
    assert caught.value.system == harness.system
    assert time.monotonic() - started < CLIENT_TIMEOUT + 3
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 7.0


# --- exactly one ticket per key, whatever fails ------------------------------------------------


def _restart_later(harness: Harness) -> Callable[[int], None]:
    def restart(failures: int) -> None:
        if failures == 2:
            harness.fake.start()

    return restart


def _fail_create(h: Harness) -> dict[str, Any]:
    h.fake.fail(3, 500, path=h.create_path, method="POST")
    return {}


def _fail_lookup(h: Harness) -> dict[str, Any]:
    h.fake.fail(2, 502, method="GET")
    return {}


def _rate_limited(h: Harness) -> dict[str, Any]:
    h.fake.fail(1, 429, retry_after="0", path=h.create_path)
    return {}


def _stored_then_500(h: Harness) -> dict[str, Any]:
    h.fake.commit_then_fail(1, path=h.create_path)
    return {}


def _stored_then_dropped(h: Harness) -> dict[str, Any]:
    h.fake.commit_then_fail(2, status=None, path=h.create_path)
    return {}


def _timeout_lost(h: Harness) -> dict[str, Any]:
    h.fake.delay(CLIENT_TIMEOUT + 0.3, path=h.create_path, method="POST")
    return {}


def _timeout_stored_late(h: Harness) -> dict[str, Any]:
    # The remote commits after the client gave up; the retry waits longer than the remote's
    # delay, as the outbox's back-off does (docs/connectors.md explains the window).
    h.fake.delay(CLIENT_TIMEOUT + 0.3, commit=True, path=h.create_path, method="POST")
    return {"pause": 1.5}


def _refused_then_back(h: Harness) -> dict[str, Any]:
    h.fake.stop()
    return {"after_failure": _restart_later(h)}


SCENARIOS: dict[str, Callable[[Harness], dict[str, Any]]] = {
    "500 three times on create": _fail_create,
    "500 on the look-up": _fail_lookup,
    "429 then through": _rate_limited,
    "ticket stored, then 500": _stored_then_500,
    "ticket stored, then connection dropped": _stored_then_dropped,
    "timeout, request lost": _timeout_lost,
    "timeout, ticket stored late": _timeout_stored_late,
    "connection refused, then back": _refused_then_back,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_exactly_one_ticket_per_key_under_faults(harness: Harness, scenario: str) -> None:
    if harness.system == "webhook" and "look-up" in scenario:
        pytest.skip("a webhook has no look-up: the receiver dedupes by Idempotency-Key")
    options = SCENARIOS[scenario](harness)
    request = make_request("7")

    ref, failures = deliver(harness.connector, request, **options)

    assert failures, "the injected fault was never hit"
    assert all(isinstance(f, TransientError) for f in failures)
    assert harness.fake.count_for(request.idempotency_key) == 1
    # A second delivery (the worker running again) still makes nothing new.
    again, _ = deliver(harness.connector, request)
    assert harness.fake.count_for(request.idempotency_key) == 1
    assert again.external_id == ref.external_id


def test_many_activities_under_random_faults_get_one_ticket_each(harness: Harness) -> None:
    # Every third request to the fake fails in some way, for twelve activities in a row.
    harness.fake.fail(2, 500, path=harness.create_path)
    harness.fake.commit_then_fail(2, path=harness.create_path)
    harness.fake.commit_then_fail(2, status=None, path=harness.create_path)
    harness.fake.drop(2, method="GET")
    keys = []
    for number in range(12):
        request = make_request(str(100 + number))
        deliver(harness.connector, request)
        keys.append(request.idempotency_key)
    assert [harness.fake.count_for(k) for k in keys] == [1] * 12


# --- no secret in any message or log line ------------------------------------------------------


def _echo_everything(request: httpx.Request) -> httpx.Response:
    # A misbehaving proxy that echoes the request (auth header and body included) in its error.
    headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
    return httpx.Response(500, text=f"{headers}\n\n{request.content.decode(errors='replace')}")


def test_no_secret_in_errors_or_logs_even_when_the_remote_echoes_them(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = httpx.Client(transport=httpx.MockTransport(_echo_everything), timeout=CLIENT_TIMEOUT)
    connector = build_connector(harness.system, harness.config, echo)
    texts: list[str] = []
    calls: list[Callable[[], object]] = [
        lambda: connector.create_ticket(make_request()),
        lambda: connector.get_state(harness.connector.create_ticket(make_request("2"))),
    ]
    if harness.system != "webhook":  # the webhook's look-up sends nothing
        calls.append(lambda: connector.find_ticket("remedium-activity-1"))
    for call in calls:
        with pytest.raises(ConnectorError) as caught:
            call()
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
        texts.append("".join(traceback.format_exception(caught.value)))
    texts.append(connector.test_connection().message)

    # ...and against the real fake, with faults and a wrong secret, with every logger at DEBUG.
    harness.fake.fail(1, 500)
    harness.fake.fail(1, 401)
    for _ in range(2):
        try:
            harness.connector.create_ticket(make_request("3"))
        except ConnectorError as exc:
            texts.append("".join(traceback.format_exception(exc)))
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(str(record.args) for record in caplog.records)

    assert any("HTTP 500" in t for t in texts)
    blob = "\n".join(texts)
    for secret in harness.secrets:
        assert secret not in blob
    if harness.system != "webhook":  # the webhook sends only a signature, never its secret
        assert "***" in blob  # the echo was there, and scrubbed


def test_concurrent_deliveries_of_different_activities(harness: Harness) -> None:
    # The worker may run a few deliveries at once; the fakes and connectors must cope.
    errors: list[BaseException] = []

    def one(number: int) -> None:
        try:
            deliver(harness.connector, make_request(str(500 + number)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(harness.fake.count_for(f"remedium-activity-{500 + n}") == 1 for n in range(6))
