"""Contract tests: every endpoint of the Defender-compatible API answers the fields of
Microsoft's documented example (tests/defender/fixtures/*.json) with the same JSON types."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from remedium.auth.principal import Right
from tests.support.orgs.defender import Organisation

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))
# Microsoft shows the item; remedium has no data of that kind (docs/defender-api.md).
EMPTY_BY_DESIGN = {"software_missing_kbs"}
BODIES = {
    "machine_set_device_value": {"DeviceValue": "High"},
    "machine_tags": {"Value": "Contract", "Action": "Add"},
}


def conforms(ours: Any, theirs: Any, where: str) -> None:
    """``ours`` has every field of ``theirs``, each of the same JSON type (null: any)."""
    if theirs is None:
        return
    if isinstance(theirs, bool):
        assert isinstance(ours, bool), (where, ours)
    elif isinstance(theirs, (int, float)):
        assert ours is None or (isinstance(ours, (int, float)) and not isinstance(ours, bool)), (
            where,
            ours,
        )
    elif isinstance(theirs, str):
        assert ours is None or isinstance(ours, str), (where, ours)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), (where, ours)
        if theirs and ours:
            for item in ours:
                conforms(item, theirs[0], where + "[]")
    else:
        assert isinstance(ours, dict), (where, ours)
        for key, value in theirs.items():
            assert key in ours, f"{where}.{key} is missing from {sorted(ours)}"
            conforms(ours[key], value, f"{where}.{key}")


@pytest.mark.scenario("defender")
@pytest.mark.parametrize("case", CASES)
def test_endpoint_answers_microsofts_shape(
    case: str,
    org: Organisation,
    live_server: str,
    token_for: Callable[..., str],
) -> None:
    fixture = json.loads((FIXTURES / f"{case}.json").read_text())
    path = fixture["path"].format(
        machine=org.devices["ws-01"].machine_id,
        recommendation="va-_-google-_-chrome",
        cve="CVE-2024-0001",
        software="google-_-chrome",
        since="2000-01-01T00:00:00Z",
    )
    token = token_for(rights=frozenset({Right.VIEW, Right.INVENTORY}))
    with httpx.Client(
        base_url=live_server, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        reply = client.request(fixture["method"], path, json=BODIES.get(case))
    expected = fixture["response"]
    body = reply.json()
    if "error" in expected:
        assert reply.status_code == 404
        conforms(body, expected, "$")
        assert body["error"]["code"] == "ResourceNotFound"
        return
    assert reply.status_code == 200, reply.text
    context = expected["@odata.context"].split("#", 1)[1]
    assert body["@odata.context"].endswith("/api/$metadata#" + context), body["@odata.context"]
    if "value" in expected:
        assert isinstance(body["value"], list)
        if case in EMPTY_BY_DESIGN:
            assert body["value"] == []
            return
        assert body["value"], f"{case}: the organisation should give at least one row"
    conforms(body, expected, "$")
