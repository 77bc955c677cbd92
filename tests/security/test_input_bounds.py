"""Whole numbers outside 32 bits answer 422 (400 with Microsoft's body on the Defender API), never
500: in every path parameter, every integer query parameter, JSON and form bodies."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import pytest
from fastapi.testclient import TestClient

HUGE = str(2**63)
HUGER = "9" * 40


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_int(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_int(arg) for arg in typing.get_args(annotation))
    return False


def _int_queries(route: Any) -> list[str]:
    names = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        stack.extend(dependant.dependencies)
        for field in dependant.query_params:
            if _is_int(field.field_info.annotation):
                names.append(field.alias)
    return names


def _flatten(routes: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            flat.extend(route.effective_route_contexts())
        else:
            flat.append(route)
    return flat


def _walk(client: TestClient) -> list[tuple[str, str]]:
    """(method, url) for every route, path parameters and integer queries set to 2**63."""
    calls: list[tuple[str, str]] = []
    app = client.app
    assert hasattr(app, "routes")
    for route in _flatten(app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        path = re.sub(r"\{[^}]+\}", HUGE, route.path)
        has_path_params = path != route.path
        queries = _int_queries(route)
        for method in sorted(route.methods - {"HEAD"}):
            if has_path_params:
                calls.append((method, path))
            for name in queries:
                calls.append((method, f"{path}?{name}={HUGE}"))
    return calls


def test_every_route_refuses_integers_beyond_32_bits(admin_client: TestClient) -> None:
    calls = _walk(admin_client)
    assert len(calls) > 40
    failures = []
    for method, url in calls:
        reply = admin_client.request(method, url, headers={"Accept": "application/json"})
        refused = reply.status_code in (400, 404, 405, 422)
        if reply.status_code >= 500 or ("?" in url and not refused):
            failures.append((method, url, reply.status_code))
    assert failures == []


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/api/v1/devices?offset={HUGE}", 422),
        (f"/api/v1/devices?limit={HUGER}", 422),
        (f"/api/v1/devices/{HUGE}", 422),
        (f"/api/v1/audit-events?device_group_id={HUGE}", 422),
        (f"/api/v1/audit-events/{HUGE}", 422),
        (f"/api/v1/devices/{2**31}", 422),
        (f"/api/v1/devices?device_group={2**31}", 422),
        (f"/api/v1/devices/{2**31 - 1}", 404),
        (f"/api/machines?$skip={HUGE}", 400),
        (f"/api/machines?$top=-{HUGE}", 400),
    ],
)
def test_named_inputs(admin_client: TestClient, url: str, status: int) -> None:
    reply = admin_client.get(url)
    assert reply.status_code == status, reply.text
    body = reply.json()
    if url.startswith("/api/v1/"):
        if status == 422:
            assert body["detail"][0]["loc"][0] in ("query", "path")
    else:
        assert body["error"]["code"] == "BadRequest"


def test_json_and_form_bodies(admin_client: TestClient) -> None:
    reply = admin_client.post(
        "/api/v1/inaccuracy-reports",
        json={"recommendation_id": "x", "device_id": 2**64, "reason": "wrong"},
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body"]
    form = admin_client.post(
        "/settings/users",
        data={"name": "bounds", "password": "x" * 16, "device_group_ids": HUGE},
    )
    assert form.status_code == 422
    assert form.json()["detail"][0]["loc"] == ["body", "device_group_ids"]


def test_numeric_text_is_not_an_integer(admin_client: TestClient) -> None:
    """Only inputs a route declares as integers are bounded: digits in free text pass."""
    reply = admin_client.get(f"/api/v1/devices?search={HUGER}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["items"] == []
    machine = admin_client.get(f"/api/machines/{HUGER}")
    assert machine.status_code == 404, machine.text
    assert machine.json()["error"]["code"] == "ResourceNotFound"
    undeclared = admin_client.post("/signout", data={"group": HUGE})
    assert undeclared.status_code != 422
