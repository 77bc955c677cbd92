"""The pages work under the Content-Security-Policy: Chromium reports no violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from remedium.db.session import transaction
from tests.support.orgs.exceptions import CHROME, build

PAGES = (
    "/",
    "/recommendations",
    f"/recommendations/{CHROME}",
    "/remediation",
    "/exceptions",
    "/weaknesses",
    "/devices",
    "/audit",
    "/imports",
    "/settings/tokens",
    "/settings/users",
    "/settings/connectors",
)


@pytest.mark.browser
def test_no_page_violates_the_policy(signed_in_page: Any, live_server: str, engine: Engine) -> None:
    with transaction(engine) as session:
        build(session)
    page = signed_in_page
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    visited = 0
    for path in PAGES:
        reply = page.goto(live_server + path)
        assert reply is not None
        if reply.status == 404:
            continue
        assert reply.status == 200, path
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
        visited += 1
    assert visited >= 8
    # The one page with its own script: it must run (the live count of devices).
    page.goto(f"{live_server}/recommendations/{CHROME}")
    page.get_by_role("link", name="Remediation options").click()
    page.locator("input[name=remediation_type][value=AttentionRequired]").check()
    expect(page.locator("#due_on")).to_be_disabled()
    assert violations == []


@pytest.mark.browser
def test_api_docs_render_from_this_site_alone(signed_in_page: Any, live_server: str) -> None:
    """/api/docs shows Swagger UI with every request on this site (no CDN) and no violation."""
    page = signed_in_page
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    reply = page.goto(live_server + "/api/docs")
    assert reply is not None
    assert reply.status == 200
    assert "script-src 'self';" in reply.headers["content-security-policy"]
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() > 50  # the operations of remedium's OpenAPI document
    assert requests
    assert all(url.startswith(live_server) for url in requests), requests
    assert problems == []
