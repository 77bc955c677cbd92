"""The left navigation offers only the pages the signed-in user may open."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from remedium.api.app import create_app
from remedium.auth.principal import Right
from remedium.db.session import transaction
from tests.support.signin import make_user, sign_in


def nav_labels(engine: Engine, name: str, rights: list[Right]) -> list[str]:
    with transaction(engine) as session:
        make_user(session, name, rights=rights)
    client = TestClient(create_app(engine), follow_redirects=False)
    sign_in(client, name)
    page = client.get("/")
    assert page.status_code == 200
    nav = page.text.split('<nav class="side-nav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r"<span>([^<]+)</span>", nav)


def test_navigation_follows_the_users_rights(engine: Engine) -> None:
    analyst = nav_labels(engine, "analyst", [Right.VIEW, Right.EXCEPTIONS])
    admin = nav_labels(engine, "admin", [Right.ADMIN])
    assert "Imports" not in analyst
    assert "Ticketing connections" not in analyst
    assert {"Dashboard", "Security recommendations", "Audit history", "API tokens"} <= set(analyst)
    assert set(admin) - set(analyst) == {
        "Imports",
        "Ticketing connections",
        "Users",
        "Device groups",
        "Background jobs",
    }
