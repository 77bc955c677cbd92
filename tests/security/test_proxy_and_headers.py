"""Proxy headers are believed only from configured proxies; security headers on every response.

``remedium serve`` runs in a subprocess (as an operator starts it) on the test's database.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

import remedium
from remedium.audit.models import AuditEvent
from remedium.db.session import session_factory, transaction
from tests.support.signin import PASSWORD, make_user

REMEDIUM = Path(sys.executable).with_name("remedium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(database_url: str, **env: str) -> Iterator[str]:
    """``remedium serve`` on a free port; yields its base URL."""
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REMEDIUM_")},
        "REMEDIUM_DATABASE_URL": database_url,
        **env,
    }
    process = subprocess.Popen(
        [str(REMEDIUM), "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("remedium serve did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _form_token(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _failed_signin(client: httpx.Client, forwarded_for: str, name: str = "alice") -> int:
    form = client.get("/signin")
    reply = client.post(
        "/signin",
        data={
            "username": name,
            "password": "wrong password!",
            "csrf_token": _form_token(form.text),
        },
        headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"},
    )
    return reply.status_code


def _failure_addresses(engine: Engine) -> set[str]:
    with session_factory(engine)() as session:
        rows = session.scalars(
            select(AuditEvent.client_address).where(AuditEvent.action == "auth.signin_failed")
        ).all()
    return set(rows)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(database_url: str, engine: Engine) -> None:
    """The per-address lock counts the real peer, and the audit records it, whatever the
    client claims in X-Forwarded-For (uvicorn's default trusted 127.0.0.1)."""
    with transaction(engine) as session:
        make_user(session, "alice")
    with served(database_url) as base, httpx.Client(base_url=base) as client:
        # A new name and a new claimed address each time: only the per-address lock can hold.
        codes = [_failed_signin(client, f"203.0.113.{n}", f"user{n}") for n in range(6)]
        # X-Forwarded-Proto: https from an untrusted peer does not make cookies Secure.
        assert "secure" not in client.get("/signin").headers["set-cookie"].lower()
    assert codes[0] == 401
    assert codes[-1] == 429
    assert _failure_addresses(engine) == {"127.0.0.1"}


def test_forwarded_for_from_a_trusted_proxy_is_used(database_url: str, engine: Engine) -> None:
    with transaction(engine) as session:
        make_user(session, "alice")
    with (
        served(database_url, REMEDIUM_TRUSTED_PROXIES="127.0.0.1") as base,
        httpx.Client(base_url=base) as client,
    ):
        assert _failed_signin(client, "203.0.113.7") == 401
        form = client.get("/signin", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in form.headers["set-cookie"].lower()
    assert _failure_addresses(engine) == {"203.0.113.7"}


def test_secure_cookies_setting_marks_every_cookie(database_url: str, engine: Engine) -> None:
    with transaction(engine) as session:
        make_user(session, "alice")
    with (
        served(database_url, REMEDIUM_SECURE_COOKIES="true") as base,
        httpx.Client(base_url=base) as client,
    ):
        form = client.get("/signin")
        assert "secure" in form.headers["set-cookie"].lower()
        # The client would not send a Secure cookie back over plain HTTP: send it by hand.
        nonce = form.headers["set-cookie"].split(";", 1)[0]
        signed_in = client.post(
            "/signin",
            data={"username": "alice", "password": PASSWORD, "csrf_token": _form_token(form.text)},
            headers={"Cookie": nonce},
        )
        assert signed_in.status_code == 303
        cookies = signed_in.headers.get_list("set-cookie")
        assert cookies
        assert all("secure" in cookie.lower() for cookie in cookies)


@pytest.mark.parametrize(
    "path", ["/signin", "/api/v1/health", "/api/v1/devices", "/", "/static/remedium.css"]
)
def test_security_headers_on_every_response(live_server: str, path: str) -> None:
    reply = httpx.get(live_server + path)
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in csp
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "same-origin"


def test_no_inline_script_in_any_template() -> None:
    """The policy forbids inline script: no template may hold one (or an on*= handler)."""

    root = Path(remedium.__file__).parent
    offenders = []
    for template in root.rglob("*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text):
            offenders.append(str(template.relative_to(root)))
        if "javascript:" in text:
            offenders.append(str(template.relative_to(root)))
    assert offenders == []
