"""API tokens (API, page, CLI) and secrets that never show up in logs, pages or replies."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from remedium.api.app import create_app
from remedium.auth.models import ApiToken, User
from remedium.auth.principal import Right
from remedium.cli.main import app
from remedium.db.session import get_engine, transaction
from remedium.settings import get_settings
from tests.support.signin import PASSWORD, client_for, make_user, sign_in


def test_token_lifecycle_through_the_api(engine: Engine) -> None:
    admin = client_for(engine, "root")
    created = admin.post("/api/v1/tokens", json={"name": "report", "expires_days": 30})
    assert created.status_code == 201
    secret = created.json()["token"]
    own = TestClient(create_app(engine), headers={"Authorization": f"Bearer {secret}"})
    assert own.get("/api/v1/users/me").json()["name"] == "root"
    listed = admin.get("/api/v1/tokens").json()
    assert {t["prefix"] for t in listed} >= {secret[:12]}
    assert all("token" not in t for t in listed)
    token_id = created.json()["id"]
    assert admin.post(f"/api/v1/tokens/{token_id}/revoke").json()["status"] == "revoked"
    assert own.get("/api/v1/users/me").status_code == 401
    with transaction(engine) as session:
        stored = session.get(ApiToken, token_id)
        assert stored is not None
        assert secret not in stored.token_hash


def test_users_cannot_touch_others_tokens(engine: Engine) -> None:
    admin = client_for(engine, "root")
    viewer = client_for(engine, "vic", rights=[Right.VIEW])
    root_id = admin.get("/api/v1/users/me").json()["id"]
    admins_token = admin.get("/api/v1/tokens", params={"user_id": root_id}).json()[0]["id"]
    assert viewer.get(f"/api/v1/tokens/{admins_token}").status_code == 404
    assert viewer.post(f"/api/v1/tokens/{admins_token}/revoke").status_code == 404
    assert viewer.post("/api/v1/tokens", json={"user_id": 1}).status_code == 403
    assert viewer.get("/api/v1/users").status_code == 403


def test_token_page_shows_the_secret_once_and_revokes(engine: Engine) -> None:
    with transaction(engine) as session:
        make_user(session, "pat", rights=[Right.VIEW])
    client = TestClient(create_app(engine), follow_redirects=False)
    csrf = sign_in(client, "pat")
    assert client.post("/settings/tokens", data={"name": "ci"}).status_code == 403  # no CSRF
    page = client.post("/settings/tokens", data={"name": "ci", "csrf_token": csrf})
    assert page.status_code == 200
    secret = page.text.split('data-testid="new-token">', 1)[1].split("<", 1)[0]
    assert secret.startswith("rmd_")
    again = client.get("/settings/tokens")
    assert secret not in again.text
    assert secret[:12] in again.text
    api = TestClient(create_app(engine), headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/v1/audit-events").status_code == 200
    with transaction(engine) as session:
        token_id = session.scalars(select(ApiToken.id)).one()
    client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert api.get("/api/v1/audit-events").status_code == 401


def test_cli_creates_users_and_tokens(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIUM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        runner = CliRunner()
        added = runner.invoke(
            app,
            ["users", "add", "carol", "--role", "analyst", "--password-stdin"],
            input="a-long-password\n",
        )
        assert added.exit_code == 0, added.output
        bad = runner.invoke(app, ["users", "add", "dave", "--role", "wizard"])
        assert bad.exit_code == 2
        made = runner.invoke(app, ["tokens", "create", "--user", "carol", "--json"])
        assert made.exit_code == 0, made.output
        secret = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    with transaction(engine) as session:
        carol = session.scalars(select(User).where(User.name == "carol")).one()
        assert sorted(carol.rights) == ["exceptions", "remediation", "view"]
    api = TestClient(create_app(engine), headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/v1/users/me").json()["name"] == "carol"


def test_passwords_and_tokens_never_reach_logs_pages_or_replies(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQL statements with their parameters are logged too: secrets must not be among them.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        with transaction(engine) as session:
            make_user(session, "eve", rights=[Right.ADMIN])
        client = TestClient(create_app(engine), follow_redirects=False)
        csrf = sign_in(client, "eve")
        bodies = []
        created = client.post("/settings/tokens", data={"name": "x", "csrf_token": csrf})
        secret = created.text.split('data-testid="new-token">', 1)[1].split("<", 1)[0]
        api = TestClient(create_app(engine), headers={"Authorization": f"Bearer {secret}"})
        for url in ("/api/v1/users", "/api/v1/tokens", "/api/v1/audit-events?limit=500"):
            bodies.append(api.get(url).text)
        for url in ("/settings/users", "/settings/tokens", "/audit"):
            bodies.append(client.get(url).text)
        wrong = client.post("/signin", data={"username": "eve", "password": "oops-" + PASSWORD})
        bodies.append(wrong.text)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "sqlalchemy" in caplog.text.lower() or caplog.records
    for secret_text in (PASSWORD, secret, secret[12:]):
        assert secret_text not in caplog.text
        for body in bodies:
            assert secret_text not in body
    with transaction(engine) as session:
        eve = session.scalars(select(User).where(User.name == "eve")).one()
        assert eve.password_hash.startswith("$argon2id$")
