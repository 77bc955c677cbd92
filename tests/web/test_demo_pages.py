"""Every page on the demo organisation (realistic data), as an analyst would walk through it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from remedium.auth.principal import Scope
from remedium.db.session import transaction
from remedium.scoring.queries import exposure_score

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(scenario: object) -> None:
    """The demo organisation (150 devices), built once and copied: the test is marked
    ``@pytest.mark.scenario("demo")``."""


@pytest.mark.scenario("demo")
def test_demo_walkthrough(
    demo: None, signed_in_page: Any, live_server: str, engine: Engine, artifacts: Path
) -> None:
    page = signed_in_page
    kind = engine.dialect.name
    with transaction(engine) as session:
        exposure = exposure_score(session, Scope())
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 500 else None)
    page.goto(f"{live_server}/")
    assert page.get_by_test_id("exposure-score").inner_text() == f"{exposure.score:.1f}"
    assert page.locator("#top-recommendations tbody tr").count() == 5
    page.screenshot(path=str(artifacts / f"web-demo-dashboard-{kind}.png"), full_page=True)
    # "Improve score" opens the recommendations sorted by exposure impact.
    page.get_by_role("link", name="Improve score").first.click()
    page.wait_for_url(re.compile("sort=exposure_impact"))
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Impact")
    assert page.locator("#recommendations tbody tr").count() == 25
    assert page.get_by_role("link", name="Next").is_visible()
    page.screenshot(path=str(artifacts / f"web-demo-recommendations-{kind}.png"), full_page=True)
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile("p=2"))
    assert page.locator("#recommendations tbody tr").count() > 0
    page.locator("#recommendations tbody td.name a").first.click()
    page.wait_for_url(re.compile("/recommendations/.+"))
    assert page.locator("#exposed-devices tbody tr").count() > 0
    page.screenshot(path=str(artifacts / f"web-demo-recommendation-{kind}.png"), full_page=True)
    for path in ("/vulnerabilities", "/software", "/devices"):
        page.goto(f"{live_server}{path}")
        assert page.locator("table.data tbody tr").count() == 25
        page.locator("table.data tbody td.name a").first.click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text()
        page.screenshot(
            path=str(artifacts / f"web-demo-{path.strip('/')}-detail-{kind}.png"), full_page=True
        )
    assert errors == []
