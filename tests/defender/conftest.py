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
from remedium.db.base import utcnow
from remedium.inventory.models import DeviceGroup
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    add_weakness,
    assess,
    install,
    make_configuration,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.orgs.defender import Organisation


@pytest.fixture
def org(session: Session) -> Organisation:
    """Two device groups, four devices, Chrome and Firefox with CVEs, one failing check.

    GroupOne: ws-01 (High value, internet facing, Chrome with CVE-A and CVE-B, failing scid-1),
    ws-02 (Chrome with CVE-B, Firefox with CVE-C, passing scid-1).
    GroupTwo: srv-01 (Linux, Chrome with CVE-A), srv-02 (Linux, nothing vulnerable).
    """
    now = utcnow()
    one, two = make_group(session, "GroupOne"), make_group(session, "GroupTwo")
    ws1 = make_device(session, one, "ws-01", value="High", internet_facing=True, last_seen=now)
    ws2 = make_device(session, one, "ws-02", last_seen=now, intune=True)
    srv1 = make_device(session, two, "srv-01", os_platform="Linux", last_seen=now)
    srv2 = make_device(session, two, "srv-02", os_platform="Linux", last_seen=now)
    ws1.tags = ["Finance", "VIP"]
    ws1.os_version = "10.0.22631"
    ws1.os_architecture = "x64"
    ws1.ip_address = "10.0.0.11"
    chrome = make_software(session, "google", "chrome")
    firefox = make_software(session, "mozilla", "firefox")
    cve_a = make_vulnerability(session, "CVE-2024-0001", cvss=9.8, severity="Critical", kev=True)
    cve_b = make_vulnerability(session, "CVE-2024-0002", cvss=6.5, severity="Medium", exploit=True)
    cve_c = make_vulnerability(session, "CVE-2024-0003", cvss=4.3, severity="Medium")
    for device in (ws1, ws2, srv1, srv2):
        install(session, device, chrome, "1.0")
    install(session, ws2, firefox, "1.0")
    add_weakness(session, ws1, chrome, cve_a)
    add_weakness(session, ws1, chrome, cve_b)
    add_weakness(session, ws2, chrome, cve_b)
    add_weakness(session, srv1, chrome, cve_a)
    add_weakness(session, ws2, firefox, cve_c)
    check = make_configuration(session, "scid-1", category="OS", weight=8.0)
    assess(session, ws1, check, compliant=False)
    assess(session, ws2, check, compliant=True)
    recompute(session, as_of=now)
    session.commit()
    return Organisation(
        groups={"GroupOne": one, "GroupTwo": two},
        devices={d.name: d for d in (ws1, ws2, srv1, srv2)},
    )


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
