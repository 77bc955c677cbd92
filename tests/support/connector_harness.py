"""The connector test harness: the fake systems on loopback, one connector for each, a retry loop.

These tests are pure (no database): every connector runs its real HTTP code against a fake from
``tests.support.fake_ticketing``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest

from remedium.connectors.base import (
    Priority,
    ProductRef,
    RemediationType,
    TargetDevice,
    TicketConnector,
    TicketRef,
    TicketRequest,
    idempotency_key_for,
)
from remedium.connectors.errors import ConnectorError, RateLimitedError, TransientError
from remedium.connectors.registry import build_connector
from tests.support.fake_ticketing import (
    FakeGraph,
    FakeJira,
    FakeServer,
    FakeServiceNow,
    FakeWebhook,
)

# Short enough to keep the fault tests fast, long enough for a loaded 2-core machine.
CLIENT_TIMEOUT = 1.0
SYSTEMS = ["intune", "jira", "servicenow", "webhook"]


def make_devices(
    count: int, *, managed: bool = True, prefix: str = "pc"
) -> tuple[TargetDevice, ...]:
    return tuple(
        TargetDevice(
            name=f"{prefix}-{i:05d}.contoso.local",
            machine_id=f"{prefix}{i:036x}"[:40],
            aad_device_id=f"aad-{prefix}-{i}" if managed else "",
            intune_managed=managed,
            aad_joined=managed,
        )
        for i in range(count)
    )


def make_request(
    activity_id: str = "42",
    *,
    devices: tuple[TargetDevice, ...] | None = None,
    remediation_type: RemediationType = RemediationType.UPDATE,
    priority: Priority = Priority.HIGH,
    due_on: date | None = date(2026, 12, 31),
    product: ProductRef | None = ProductRef("google", "chrome", "120.0.6099.71", "121.0.6167.85"),
    configuration_id: str = "",
) -> TicketRequest:
    return TicketRequest(
        activity_id=activity_id,
        idempotency_key=idempotency_key_for(activity_id),
        title="Update Google Chrome",
        description="Chrome 120 has 14 known vulnerabilities, 2 of them exploited.",
        remediation_type=remediation_type,
        priority=priority,
        due_on=due_on,
        requester_email="analyst@contoso.com",
        notes="Needed for the PCI audit.",
        product=product,
        configuration_id=configuration_id,
        target_devices=make_devices(3) if devices is None else devices,
        link=f"http://127.0.0.1:8000/remediation/activities/{activity_id}",
    )


@dataclass
class Harness:
    """One system under test: its fake, a connector configured for it, and how to drive it."""

    system: str
    fake: FakeServer
    connector: TicketConnector
    config: dict[str, object]
    secrets: list[str]
    create_path: str
    # The state words the system goes through: (to-state argument for `advance`, normalised)
    advance: Callable[[TicketRef, str], None]
    lifecycle: list[tuple[str, str]]

    def build(self, client: httpx.Client, **changes: object) -> TicketConnector:
        """Another connector for the same fake, with some configuration changed."""
        return build_connector(self.system, {**self.config, **changes}, client)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        yield http


def _intune(client: httpx.Client) -> tuple[Harness, FakeGraph]:
    fake = FakeGraph().start()
    config: dict[str, object] = {
        "tenant_id": fake.tenant_id,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "authority_url": fake.url,
        "graph_url": fake.url,
        "task_link_template": "https://intune.example/tasks/{id}",
    }
    return Harness(
        "intune",
        fake,
        build_connector("intune", config, client),
        config,
        [fake.client_secret],
        "/deviceAppManagementTasks",
        lambda ref, to: fake.set_status(ref.external_id, to),
        [("active", "accepted"), ("completed", "completed")],
    ), fake


def _jira(client: httpx.Client) -> tuple[Harness, FakeJira]:
    fake = FakeJira().start()
    config: dict[str, object] = {
        "base_url": fake.url,
        "project_key": "SEC",
        "email": fake.email,
        "api_token": fake.api_token,
    }
    return Harness(
        "jira",
        fake,
        build_connector("jira", config, client),
        config,
        [fake.api_token],
        "/rest/api/2/issue",
        lambda ref, to: fake.transition(ref.key, to),
        [("In Progress", "in_progress"), ("Done", "completed")],
    ), fake


def _servicenow(client: httpx.Client) -> tuple[Harness, FakeServiceNow]:
    fake = FakeServiceNow().start()
    config: dict[str, object] = {
        "instance_url": fake.url,
        "username": fake.username,
        "password": fake.password,
    }
    return Harness(
        "servicenow",
        fake,
        build_connector("servicenow", config, client),
        config,
        [fake.password],
        "/api/now/table/sc_task",
        lambda ref, to: fake.set_state("sc_task", ref.external_id, to),
        [("2", "in_progress"), ("3", "completed")],
    ), fake


def _webhook(client: httpx.Client) -> tuple[Harness, FakeWebhook]:
    fake = FakeWebhook().start()
    config: dict[str, object] = {
        "url": fake.hook_url,
        "secret": fake.secret,
        "status_url_template": fake.status_url_template,
    }
    return Harness(
        "webhook",
        fake,
        build_connector("webhook", config, client),
        config,
        [fake.secret],
        "/hooks/remedium",
        lambda ref, to: fake.set_state(ref.external_id, to),
        [("accepted", "accepted"), ("done", "completed")],
    ), fake


BUILDERS = {"intune": _intune, "jira": _jira, "servicenow": _servicenow, "webhook": _webhook}


@pytest.fixture(params=SYSTEMS)
def harness(request: pytest.FixtureRequest, client: httpx.Client) -> Iterator[Harness]:
    built, fake = BUILDERS[request.param](client)
    try:
        yield built
    finally:
        fake.stop()


@pytest.fixture
def graph(client: httpx.Client) -> Iterator[Harness]:
    built, fake = _intune(client)
    yield built
    fake.stop()


@pytest.fixture
def jira(client: httpx.Client) -> Iterator[Harness]:
    built, fake = _jira(client)
    yield built
    fake.stop()


@pytest.fixture
def servicenow(client: httpx.Client) -> Iterator[Harness]:
    built, fake = _servicenow(client)
    yield built
    fake.stop()


@pytest.fixture
def webhook(client: httpx.Client) -> Iterator[Harness]:
    built, fake = _webhook(client)
    yield built
    fake.stop()


def deliver(
    connector: TicketConnector,
    request: TicketRequest,
    *,
    attempts: int = 8,
    pause: float = 0.05,
    after_failure: Callable[[int], None] | None = None,
) -> tuple[TicketRef, list[ConnectorError]]:
    """The outbox's loop in miniature: look up, create only when absent, retry transient errors."""
    failures: list[ConnectorError] = []
    for _ in range(attempts):
        try:
            found = connector.find_ticket(request.idempotency_key)
            return (found or connector.create_ticket(request)), failures
        except TransientError as exc:
            failures.append(exc)
            if after_failure is not None:
                after_failure(len(failures))
            wait = exc.retry_after if isinstance(exc, RateLimitedError) else None
            time.sleep(pause if wait is None else min(wait, 1.0))
    raise AssertionError(f"not delivered after {attempts} attempts: {failures}")
