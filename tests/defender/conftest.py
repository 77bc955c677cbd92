"""An organisation to read through the Defender-compatible API, and servers scoped to groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remedium.api.app import create_app
from remedium.auth.principal import Right
from remedium.auth.service import create_token, create_user
from remedium.inventory.models import DeviceGroup
from tests.support.orgs.defender import Organisation, load_defender


@pytest.fixture
def org(session: Session, scenario: object) -> Organisation:
    """The "defender" scenario of ``tests.support.orgs`` (the test is marked
    ``@pytest.mark.scenario("defender")``): built once, committed, copied for the test."""
    return load_defender(session)


class _Server:
    """The app on a free loopback port in a background thread (like the suite's live_server),
    with the Defender API's server page size optionally lowered so paging shows on few rows."""

    def __init__(self, engine: Engine, page_size: int | None, rate_limit: int | None) -> None:
        self.app = create_app(engine)
        if page_size is not None:
            self.app.state.defender_page_size = page_size
        if rate_limit is not None:
            self.app.state.defender_rate_limit = rate_limit
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def start_server(engine: Engine) -> Iterator[Callable[..., str]]:
    """Start another server on the test's database (e.g. with a small page size, or a rate
    limit per minute)."""
    servers: list[_Server] = []

    def start(page_size: int | None = None, rate_limit: int | None = None) -> str:
        server = _Server(engine, page_size, rate_limit)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def token_for(session: Session) -> Callable[..., str]:
    """An API token of a new user with the given rights and device groups (None: all)."""
    counter = iter(range(1, 1000))

    def make(*groups: DeviceGroup, rights: frozenset[Right] = frozenset({Right.VIEW})) -> str:
        user = create_user(
            session,
            actor=None,
            name=f"analyst{next(counter)}",
            password="a long enough test password 42",
            rights=rights,
            device_group_ids=[g.id for g in groups],
            all_device_groups=not groups,
        )
        _, secret = create_token(session, user, actor=None)
        session.commit()
        return secret

    return make


@pytest.fixture
def api(live_server: str, token_for: Callable[..., str]) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, signed in as a viewer of every device group."""
    with httpx.Client(
        base_url=live_server, headers={"Authorization": f"Bearer {token_for()}"}, timeout=30
    ) as client:
        yield client
