"""``remedium serve`` runs the background jobs by itself (issue 15): tickets are delivered without
anyone running ``remedium worker``; the terminal and the Background jobs page say so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from remedium.connectors.base import idempotency_key_for
from remedium.db.session import transaction
from remedium.remediation.models import RemediationActivity
from tests.jobs.test_concurrency import _configure_jira, _request
from tests.support.fake_ticketing import FakeJira
from tests.support.orgs.remediation import build_org
from tests.support.signin import PASSWORD, make_user, sign_in_page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(
    database_url: str, log: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        **(env_extra or {}),
        "REMEDIUM_DATABASE_URL": database_url,
        "REMEDIUM_OUTBOX_EVERY_SECONDS": "0.5",
        "REMEDIUM_OUTBOX_BACKOFF_SECONDS": "1",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "remedium.cli.main", "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(log.read_text())


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def _delivered(engine: Engine, activity_id: str) -> str | None:
    with transaction(engine) as session:
        activity = session.get(RemediationActivity, activity_id)
        assert activity is not None
        return activity.ticket_key


def test_serve_delivers_tickets_by_itself_and_shows_its_jobs(
    engine: Engine, database_url: str, admin_client: Any, tmp_path: Path, page: Any
) -> None:
    build_org(engine)
    with transaction(engine) as session:
        make_user(session, "ops-admin")
    with FakeJira() as jira:
        _configure_jira(engine, jira)
        # The ticketing system is down at first: the activity page says when it tries again.
        jira.fail(times=1, status=503)
        (activity_id,) = _request(admin_client, 1)
        log = tmp_path / "serve.log"
        server, base = _serve(database_url, log)
        try:
            deadline = time.monotonic() + 180
            while _delivered(engine, activity_id) is None and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _delivered(engine, activity_id), log.read_text()
            assert jira.count_for(idempotency_key_for(activity_id)) == 1
            assert len(jira.issues) == 1
            text = log.read_text()
            assert "background jobs: ON" in text
            assert "remedium worker started" in text
            sign_in_page(page, base, "ops-admin", PASSWORD)
            page.click("nav.side-nav >> text=Background jobs")
            page.wait_for_url(f"{base}/settings/jobs")
            table = page.locator("[data-testid=jobs-table]")
            outbox = table.locator("tr[data-job=ticket_outbox]")
            assert "ok" in outbox.locator("[data-testid=job-status]").inner_text()
            assert "never" not in outbox.inner_text()
            # The periodic jobs ran once at start and say when they run next.
            recompute = table.locator("tr[data-job=recompute]").inner_text()
            assert "never" not in recompute
            assert page.locator("[data-testid=no-worker]").count() == 0
        finally:
            _stop(server)
    with transaction(engine) as session:
        assert session.scalars(select(RemediationActivity.ticket_key)).one()


def test_serve_without_worker_says_so_and_pending_tickets_show_their_next_attempt(
    engine: Engine, database_url: str, admin_client: Any, tmp_path: Path, page: Any
) -> None:
    build_org(engine)
    with transaction(engine) as session:
        make_user(session, "ops-admin")
    (activity_id,) = _request(admin_client, 1)
    log = tmp_path / "serve.log"
    server, base = _serve(database_url, log, "--no-worker")
    try:
        assert "background jobs: OFF (--no-worker)" in log.read_text()
        sign_in_page(page, base, "ops-admin", PASSWORD)
        page.goto(f"{base}/settings/jobs")
        assert "No worker has delivered tickets lately" in page.inner_text(
            "[data-testid=no-worker]"
        )
        assert "1 ticket pending" in page.inner_text("[data-testid=pending-tickets]")
        page.goto(f"{base}/remediation/activities/{activity_id}")
        assert "due now" in page.inner_text("dd[data-testid=ticket-next-attempt]")
        page.goto(f"{base}/remediation")
        assert "next attempt" in page.inner_text("[data-testid=ticket-next-attempt]")
    finally:
        _stop(server)
    assert _delivered(engine, activity_id) is None
