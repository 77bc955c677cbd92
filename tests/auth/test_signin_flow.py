"""Signing in and out through the pages, session cookies, CSRF and the throttle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from remedium.api.app import create_app
from remedium.audit.models import AuditEvent
from remedium.auth import service
from remedium.auth.middleware import SESSION_COOKIE
from remedium.auth.models import SignInFailure
from remedium.auth.principal import Right
from remedium.db.session import transaction
from tests.support.signin import PASSWORD, make_user, sign_in


@pytest.fixture
def client(engine: Engine) -> TestClient:
    with transaction(engine) as session:
        make_user(session, "alice", rights=[Right.VIEW])
    return TestClient(create_app(engine), follow_redirects=False)


def _form_token(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _actions(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_pages_redirect_to_signin_and_come_back_after(client: TestClient) -> None:
    reply = client.get("/audit?action=auth")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/signin?next=%2Faudit%3Faction%3Dauth"
    form = client.get(reply.headers["location"])
    assert form.status_code == 200
    signed = client.post(
        "/signin",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": _form_token(form.text),
            "next": "/audit?action=auth",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/audit?action=auth"
    cookie = signed.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie
    assert client.get("/audit").status_code == 200


def test_cookie_is_secure_behind_tls(client: TestClient, engine: Engine) -> None:
    # A client's own X-Forwarded-Proto counts for nothing: only a proxy listed in
    # REMEDIUM_TRUSTED_PROXIES is believed (tests/security/test_proxy_and_headers.py).
    proxied = client.get("/signin", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in proxied.headers["set-cookie"]
    tls = TestClient(create_app(engine), base_url="https://testserver", follow_redirects=False)
    form = tls.get("/signin")
    signed = tls.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": _form_token(form.text)},
    )
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]
    assert tls.get("/audit").status_code == 200


def test_next_never_leaves_the_site(client: TestClient) -> None:
    form = client.get("/signin")
    signed = client.post(
        "/signin",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": _form_token(form.text),
            "next": "//evil.example/",
        },
    )
    assert signed.headers["location"] == "/"


def test_wrong_password_is_refused_and_recorded(client: TestClient, engine: Engine) -> None:
    form = client.get("/signin")
    reply = client.post(
        "/signin",
        data={
            "username": "alice",
            "password": "wrong-password",
            "csrf_token": _form_token(form.text),
        },
    )
    assert reply.status_code == 401
    assert "Wrong user name or password" in reply.text
    assert SESSION_COOKIE not in reply.headers.get("set-cookie", "")
    assert client.get("/audit").status_code == 303
    assert _actions(engine)[-1] == "auth.signin_failed"


def test_signin_form_without_its_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/signin")
    reply = client.post("/signin", data={"username": "alice", "password": PASSWORD})
    assert reply.status_code == 403
    assert SESSION_COOKIE not in reply.headers.get("set-cookie", "")


def test_signout_ends_the_session_on_the_server(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "alice")
    cookie = client.cookies.get(SESSION_COOKIE)
    assert client.post("/signout", data={}).status_code == 403  # no CSRF token
    out = client.post("/signout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/signin"
    # Replaying the old cookie after sign-out does not work: the session is revoked server-side.
    replay = TestClient(
        create_app(engine), follow_redirects=False, cookies={SESSION_COOKIE: cookie}
    )
    assert replay.get("/audit").status_code == 303
    assert _actions(engine)[-2:] == ["auth.signin", "auth.signout"]


def test_deactivating_a_user_ends_their_sessions(client: TestClient, engine: Engine) -> None:
    sign_in(client, "alice")
    assert client.get("/audit").status_code == 200
    with transaction(engine) as session:
        user = service.get_user_by_name(session, "alice")
        assert user is not None
        service.update_user(session, user, actor=None, active=False)
    assert client.get("/audit").status_code == 303


def test_throttle_locks_after_five_failures_with_a_clear_message(
    client: TestClient, engine: Engine
) -> None:
    for _ in range(5):
        form = client.get("/signin")
        reply = client.post(
            "/signin",
            data={
                "username": "alice",
                "password": "nope-nope-nope",
                "csrf_token": _form_token(form.text),
            },
        )
        assert reply.status_code in (401, 429)
    form = client.get("/signin")
    locked = client.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": _form_token(form.text)},
    )
    # Even the right password is refused while locked.
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")
    assert _actions(engine)[-1] == "auth.signin_locked"
    # Fifteen minutes later the lock has lifted.
    with transaction(engine) as session:
        for failure in session.scalars(select(SignInFailure)):
            failure.occurred_at -= timedelta(minutes=16)
    form = client.get("/signin")
    again = client.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": _form_token(form.text)},
    )
    assert again.status_code == 303


def test_throttle_counts_per_client_address_across_names(engine: Engine) -> None:
    with transaction(engine) as session:
        for index in range(5):
            result = service.authenticate(
                session, f"guess{index}", "whatever-pass", client_address="203.0.113.9"
            )
            assert result.user is None
        make_user(session, "bob")
        blocked = service.authenticate(session, "bob", PASSWORD, client_address="203.0.113.9")
        assert blocked.user is None
        assert blocked.locked_until is not None
        other = service.authenticate(session, "bob", PASSWORD, client_address="198.51.100.1")
        assert other.user is not None


def test_user_without_view_right_gets_403_but_can_sign_out(engine: Engine) -> None:
    with transaction(engine) as session:
        make_user(session, "norights", rights=[])
    client = TestClient(create_app(engine), follow_redirects=False)
    form = client.get("/signin")
    client.post(
        "/signin",
        data={"username": "norights", "password": PASSWORD, "csrf_token": _form_token(form.text)},
    )
    assert client.get("/audit").status_code == 403
    assert client.get("/api/v1/audit-events").status_code == 403
