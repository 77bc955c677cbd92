"""The dashboard's figures are cached per scope and invalidated by the recompute, in any process
(a generation counter in the database), never by time (issue 15)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, update

from remedium.db.session import transaction
from remedium.inventory.models import Weakness
from remedium.web.pages import DASHBOARD_CACHE
from tests.support.orgs.remediation import build_org


def _score(client: Any) -> str:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    found = re.search(r'data-testid="exposure-score">([^<]+)<', page.text)
    assert found
    return found.group(1)


def test_dashboard_is_served_from_cache_until_a_recompute_in_another_process(
    engine: Engine, database_url: str, admin_client: Any
) -> None:
    build_org(engine)
    DASHBOARD_CACHE.clear()
    hits, misses = DASHBOARD_CACHE.hits, DASHBOARD_CACHE.misses
    exposed = _score(admin_client)
    assert DASHBOARD_CACHE.misses == misses + 1
    assert _score(admin_client) == exposed
    assert DASHBOARD_CACHE.hits == hits + 1
    # A scan closed every weakness, written behind remedium's back: the cache does not know...
    with transaction(engine) as session:
        session.execute(update(Weakness).values(fixed_at=datetime.now(UTC)))
    assert _score(admin_client) == exposed
    # ...until the recompute, in another process, bumps the generation.
    done = subprocess.run(
        [sys.executable, "-m", "remedium.cli.main", "jobs", "run", "--only", "recompute"],
        env={**os.environ, "REMEDIUM_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fixed = _score(admin_client)
    assert fixed != exposed
    assert float(fixed) == 0.0
