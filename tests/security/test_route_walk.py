"""Walks every route of the app (API and pages) and checks who gets in.

- no credentials: 401 for the API (and the OpenAPI document), a redirect to /signin for pages;
- a revoked or an expired token: 401;
- a user without the right a route requires: 403 (without view: 403 everywhere);
- a user limited to one device group: never sees another group's devices or its name, and a
  device of another group answers 404.

Path parameters are filled with real ids from the scenario; a new route whose parameter is not in
``PATH_VALUES`` fails the test so that its author adds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from remedium.api.app import create_app
from remedium.audit.models import AuditEvent
from remedium.auth import service
from remedium.auth.middleware import is_public
from remedium.auth.models import ApiToken
from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.exceptions import filing, inaccuracy
from remedium.remediation import requesting as remediation_service
from tests.support.orgs.hand_made import CHROME, build_org
from tests.support.signin import make_token, make_user

REQUIRED_QUERY = {
    "/softwarevulnerabilitychangesbymachine": "sinceTime=2000-01-01T00:00:00Z",
    "/findbytag": "tag=outsider",
}
OUTSIDE_MARKERS = ("OutsiderGroup", "outsider-device-1", "outsider-device-2")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, with the right it requires (None: view only)."""

    method: str
    path: str
    right: Right | None


def _required_right(dependant: Any) -> Right | None:
    for sub in getattr(dependant, "dependencies", []):
        right = getattr(sub.call, "required_right", None)
        if right is not None:
            return right  # type: ignore[no-any-return]
        found = _required_right(sub)
        if found is not None:
            return found
    return None


def _flatten(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            yield from route.effective_route_contexts()
        else:
            yield route


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app answers, API routes and pages alike."""
    found = []
    for route in _flatten(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD":
                continue
            dependant = getattr(route, "dependant", None)
            found.append(Endpoint(method, route.path, _required_right(dependant)))
    return found


@dataclass
class World:
    app: FastAPI
    values: dict[str, str]
    outside: dict[str, str]
    tokens: dict[str, str]


@pytest.fixture
def world(engine: Engine) -> World:
    with transaction(engine) as session:
        org = build_org(session)
        org.beta.name = "OutsiderGroup"
        org.b1.name = "outsider-device-1"
        org.b2.name = "outsider-device-2"
        admin = make_user(session, "walker-admin")
        tokens = {
            "admin": make_token(session, admin),
            "viewer": make_token(session, make_user(session, "viewer", rights=[Right.VIEW])),
            "everything_but_admin": make_token(
                session,
                make_user(
                    session,
                    "busy",
                    rights=[Right.VIEW, Right.REMEDIATION, Right.EXCEPTIONS],
                ),
            ),
            "scoped": make_token(
                session,
                make_user(
                    session,
                    "scoped",
                    rights=[Right.VIEW, Right.REMEDIATION, Right.EXCEPTIONS],
                    group_ids=[org.alpha.id],
                ),
            ),
            "no_view": make_token(session, make_user(session, "noview", rights=[])),
        }
        revoked_secret = make_token(session, admin, name="revoked")
        revoked = session.scalars(select(ApiToken).where(ApiToken.name == "revoked")).one()
        service.revoke_token(session, revoked, actor=None)
        expired_secret = make_token(session, admin, name="expired", expires_days=1)
        expired = session.scalars(select(ApiToken).where(ApiToken.name == "expired")).one()
        expired.expires_at = expired.created_at.replace(year=2000)
        tokens["revoked"] = revoked_secret
        tokens["expired"] = expired_secret
        event = session.scalars(select(AuditEvent)).first()
        assert event is not None
        walker = service.principal_for(admin)
        exceptions = [
            filing.file_exception(
                session,
                walker,
                recommendation_id=CHROME,
                justification="AcceptRisk",
                device_group_ids=[group.id],
                duration_days=30,
            )
            for group in (org.alpha, org.beta)
        ]
        activities = [
            remediation_service.request_remediation(
                session,
                walker,
                recommendation_id=CHROME,
                remediation_type="AttentionRequired",
                device_group_ids=[group.id],
                priority="High",
                due_on=None,
            )
            for group in (org.alpha, org.beta)
        ]
        report = inaccuracy.report_inaccuracy(
            session, walker, object_type="recommendation", object_id=CHROME, category="Other"
        )
        values = {
            "device_id": str(org.a1.id),
            "machine_id": org.a1.machine_id,
            "software_id": str(org.chrome_id),
            "vulnerability_id": "CVE-2026-0001",
            "cve_id": "CVE-2026-0001",
            "recommendation_id": CHROME,
            "user_id": str(admin.id),
            "token_id": str(revoked.id),
            "event_id": str(event.id),
            "exception_id": str(exceptions[0].id),
            "report_id": str(report.id),
            "activity_id": activities[0].id,
            "task_id": activities[0].id,
            "name": "jira",
            "arguments": "ip='10.0.0.1',timestamp=2024-01-01T00:00:00Z",
            "group_id": str(org.alpha.id),
            "kind": "SoftwareInventory",
            "part_name": "part-00000.json.gz",
        }
        outside = {
            "device_id": str(org.b1.id),
            "machine_id": org.b1.machine_id,
            "exception_id": str(exceptions[1].id),
            "activity_id": activities[1].id,
            "task_id": activities[1].id,
        }
    return World(create_app(engine), values, outside, tokens)


def _fill(path: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name not in values:
            pytest.fail(f"add a value for path parameter {name!r} ({path}) to PATH_VALUES")
        return values[name]

    filled = re.sub(r"\{([^}]+)\}", one, path)
    # Query parameters Microsoft's API requires (the Defender-compatible routes).
    for suffix, query in REQUIRED_QUERY.items():
        if path.lower().endswith(suffix):
            filled += "?" + query
    return filled


def _call(client: TestClient, endpoint: Endpoint, url: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if endpoint.method in UNSAFE else None
    return client.request(endpoint.method, url, headers=headers, json=body)


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def test_every_route_needs_credentials(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    checked = 0
    for endpoint in endpoints(world.app):
        if is_public(endpoint.path):
            continue
        url = _fill(endpoint.path, world.values)
        for token in (None, world.tokens["revoked"], world.tokens["expired"], "rmd_made-up"):
            reply = _call(client, endpoint, url, token)
            if token is not None or _is_api(endpoint.path):
                assert reply.status_code == 401, (endpoint, token and token[:8], reply.text)
            else:
                assert reply.status_code == 303, (endpoint, reply.status_code)
                assert reply.headers["location"].startswith("/signin?next=")
        checked += 1
    assert checked > 20


def test_only_health_and_signin_are_public(world: World) -> None:
    # /schemas/... are the published JSON schemas of the import formats, and /favicon.ico the
    # icon browsers fetch on their own: public by design.
    public = {
        e.path
        for e in endpoints(world.app)
        if is_public(e.path) and not e.path.startswith("/schemas/")
    }
    # Export files carry their own signed, expiring link (tests/defender checks it).
    assert public == {
        "/api/v1/health",
        "/signin",
        "/favicon.ico",
        "/api/exports/{kind}/{part_name}",
    }


def test_a_user_without_the_right_gets_403(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    guarded = [e for e in endpoints(world.app) if e.right is not None]
    assert any(e.right is Right.ADMIN for e in guarded)
    for endpoint in guarded:
        url = _fill(endpoint.path, world.values)
        holder = {
            Right.VIEW: "no_view",
            Right.REMEDIATION: "viewer",
            Right.EXCEPTIONS: "viewer",
            Right.INVENTORY: "everything_but_admin",
            Right.ADMIN: "everything_but_admin",
        }[endpoint.right]
        reply = _call(client, endpoint, url, world.tokens[holder])
        assert reply.status_code == 403, (endpoint, reply.status_code, reply.text[:200])
        allowed = _call(client, endpoint, url, world.tokens["admin"])
        assert allowed.status_code != 403, endpoint


def test_a_user_without_view_gets_403_everywhere(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    for endpoint in endpoints(world.app):
        if is_public(endpoint.path) or endpoint.path == "/signout":
            continue
        reply = _call(client, endpoint, _fill(endpoint.path, world.values), world.tokens["no_view"])
        assert reply.status_code == 403, endpoint


def test_a_scoped_user_never_sees_another_group(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    admin_saw_outside = False
    for endpoint in endpoints(world.app):
        if endpoint.method != "GET" or is_public(endpoint.path):
            continue
        url = _fill(endpoint.path, world.values)
        reply = _call(client, endpoint, url, world.tokens["scoped"])
        expected = {200, 404} | ({403} if endpoint.right is Right.ADMIN else set())
        assert reply.status_code in expected, (endpoint, reply.status_code, reply.text[:300])
        for marker in OUTSIDE_MARKERS:
            assert marker not in reply.text, (endpoint, marker)
        admin_view = _call(client, endpoint, url, world.tokens["admin"]).text
        admin_saw_outside |= any(marker in admin_view for marker in OUTSIDE_MARKERS)
    # The markers are real: an unscoped user does see the other group somewhere.
    assert admin_saw_outside


def test_an_object_of_another_group_answers_404(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    checked = 0
    for endpoint in endpoints(world.app):
        names = set(re.findall(r"\{([^}:]+)", endpoint.path))
        if endpoint.method != "GET" or not names & set(world.outside):
            continue
        outside_url = _fill(endpoint.path, world.values | world.outside)
        reply = _call(client, endpoint, outside_url, world.tokens["scoped"])
        assert reply.status_code == 404, (endpoint, reply.status_code)
        inside = _call(client, endpoint, _fill(endpoint.path, world.values), world.tokens["scoped"])
        assert inside.status_code == 200, (endpoint, inside.status_code, inside.text[:200])
        admin = _call(client, endpoint, outside_url, world.tokens["admin"])
        assert admin.status_code == 200, endpoint
        checked += 1
    assert checked >= 2
