"""The OpenAPI document names the error answers of every operation, with the bodies really sent."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from remedium.auth.middleware import is_public


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def _schema_name(response: dict[str, Any]) -> str:
    ref: str = response["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def test_every_operation_documents_its_errors(admin_client: TestClient) -> None:
    schema = admin_client.get("/openapi.json").json()
    models = schema["components"]["schemas"]
    operations = _operations(schema)
    assert len(operations) > 70
    for path, method, operation in operations:
        codes = ["404", "422"] + ([] if is_public(path) else ["401", "403"])
        for code in codes:
            assert code in operation["responses"], (method, path, code)
            assert _schema_name(operation["responses"][code]) in models, (method, path, code)
    assert set(models["ErrorDetail"]["required"]) == {"detail"}
    assert set(models["ODataError"]["required"]) == {"error"}


def _keys_match(body: dict[str, Any], model: dict[str, Any]) -> None:
    assert set(model["required"]) <= set(body), (body, model)


def test_documented_bodies_are_the_real_ones(live_server: str, admin_token: str) -> None:
    schema = httpx.get(
        live_server + "/openapi.json", headers={"Authorization": f"Bearer {admin_token}"}
    ).json()
    models = schema["components"]["schemas"]
    auth = {"Authorization": f"Bearer {admin_token}"}

    anonymous = httpx.get(live_server + "/api/v1/devices")
    assert anonymous.status_code == 401
    _keys_match(anonymous.json(), models["ErrorDetail"])

    missing = httpx.get(live_server + "/api/v1/devices/123456", headers=auth)
    assert missing.status_code == 404
    _keys_match(missing.json(), models["ErrorDetail"])

    invalid = httpx.get(live_server + "/api/v1/devices?limit=abc", headers=auth)
    assert invalid.status_code == 422
    for item in invalid.json()["detail"]:
        _keys_match(item, models["ValidationError"])

    machine = httpx.get(live_server + "/api/machines/nope", headers=auth)
    assert machine.status_code == 404
    _keys_match(machine.json(), models["ODataError"])
    _keys_match(machine.json()["error"], models["ODataErrorBody"])
