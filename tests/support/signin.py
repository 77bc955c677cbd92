"""Helpers that sign tests in: accounts, API tokens, authenticated clients and browser pages.

Since issue 3 nothing but ``/api/v1/health`` and ``/signin`` answers without credentials. Tests
that call the API use a bearer token (``admin_client`` / :func:`client_for`); browser tests sign
in through the real form (``signed_in_page`` / :func:`sign_in`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remedium.auth import service
from remedium.auth.models import User
from remedium.auth.principal import Right
from remedium.db.session import transaction

PASSWORD = "correct horse battery staple"


def make_user(
    session: Session,
    name: str,
    *,
    rights: Iterable[Right] = (Right.ADMIN,),
    group_ids: Iterable[int] | None = None,
    password: str = PASSWORD,
) -> User:
    """An active account (``group_ids=None``: every device group). Flushes, never commits."""
    return service.create_user(
        session,
        actor=None,
        name=name,
        password=password,
        rights=list(rights),
        device_group_ids=group_ids or (),
        all_device_groups=group_ids is None,
    )


def make_token(session: Session, user: User, **kwargs: Any) -> str:
    """A new API token of ``user`` (its secret). Flushes, never commits."""
    _token, secret = service.create_token(session, user, actor=None, **kwargs)
    return secret


def user_with_token(
    engine: Engine,
    name: str,
    *,
    rights: Iterable[Right] = (Right.ADMIN,),
    group_ids: Iterable[int] | None = None,
) -> str:
    """Create (and commit) an account with a token; returns the token."""
    with transaction(engine) as session:
        user = make_user(session, name, rights=rights, group_ids=group_ids)
        return make_token(session, user, name="tests")


def client_for(
    engine: Engine,
    name: str = "tester",
    *,
    rights: Iterable[Right] = (Right.ADMIN,),
    group_ids: Iterable[int] | None = None,
) -> TestClient:
    """A test client of a new app on ``engine`` that sends a new user's bearer token."""
    from remedium.api.app import create_app

    token = user_with_token(engine, name, rights=rights, group_ids=group_ids)
    return TestClient(
        create_app(engine),
        headers={"Authorization": f"Bearer {token}"},
        follow_redirects=False,
    )


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in through the form; returns the session's CSRF token for later posts."""
    from remedium.auth.middleware import SESSION_COOKIE

    form = client.get("/signin")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    reply = client.post(
        "/signin",
        data={"username": name, "password": password, "csrf_token": token, "next": "/audit"},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    assert client.cookies.get(SESSION_COOKIE)
    page = client.get("/audit")
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def sign_in_page(page: Any, base_url: str, name: str, password: str = PASSWORD) -> None:
    """Sign a Playwright page in through the form."""
    page.goto(f"{base_url}/signin")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
