"""Inaccuracy reports and their audit events carry the device groups of their object; users of
other groups neither see them nor learn from the answer that an object exists elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from remedium.auth.principal import Right
from remedium.db.session import transaction
from tests.support.orgs.exceptions import CHROME, CVE, build
from tests.support.signin import client_for


@pytest.fixture
def groups(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        org = build(session)
        return {"alpha": org.alpha.id, "beta": org.beta.id, "gamma": org.gamma.id}


def _report(client: TestClient, object_type: str, object_id: str, details: str) -> Any:
    return client.post(
        "/api/v1/inaccuracy-reports",
        json={
            "object_type": object_type,
            "object_id": object_id,
            "category": "FalsePositive",
            "details": details,
        },
    )


def test_out_of_scope_object_answers_like_an_unknown_one(
    engine: Engine, groups: dict[str, int]
) -> None:
    gamma = client_for(engine, "gus", rights=[Right.VIEW], group_ids=[groups["gamma"]])
    unknown = _report(gamma, "recommendation", "va-_-nobody-_-nothing", "x")
    outside = _report(gamma, "recommendation", CHROME, "x")
    assert unknown.status_code == 404
    assert outside.status_code == 404
    assert outside.json().keys() == unknown.json().keys()
    assert _report(gamma, "vulnerability", CVE, "x").status_code == 404


def _inaccuracy_events(client: TestClient) -> list[dict[str, Any]]:
    reply = client.get("/api/v1/audit-events", params={"action": "inaccuracy"})
    assert reply.status_code == 200
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def test_reports_and_their_events_stay_in_their_groups(
    engine: Engine, groups: dict[str, int]
) -> None:
    alpha = client_for(engine, "al", rights=[Right.VIEW], group_ids=[groups["alpha"]])
    beta = client_for(engine, "bea", rights=[Right.VIEW], group_ids=[groups["beta"]])
    gamma = client_for(engine, "gus", rights=[Right.VIEW], group_ids=[groups["gamma"]])
    beta_admin = client_for(engine, "bob", rights=[Right.ADMIN], group_ids=[groups["beta"]])
    admin = client_for(engine, "ada")

    mine = _report(alpha, "recommendation", CHROME, "alpha's kiosk secret")
    assert mine.status_code == 201, mine.text
    assert mine.json()["device_group_ids"] == [groups["alpha"]]
    everyone = _report(admin, "recommendation", CHROME, "admin's note")
    assert sorted(everyone.json()["device_group_ids"]) == sorted([groups["alpha"], groups["beta"]])

    assert [e["reason"] for e in _inaccuracy_events(alpha)] == [
        "admin's note",
        "alpha's kiosk secret",
    ]
    assert [e["reason"] for e in _inaccuracy_events(beta)] == ["admin's note"]
    assert _inaccuracy_events(gamma) == []
    assert all(e["device_group_ids"] for e in _inaccuracy_events(admin))
    # The same with the group filter, and for one event by id.
    alpha_event = _inaccuracy_events(alpha)[1]
    assert beta.get(f"/api/v1/audit-events/{alpha_event['id']}").status_code == 404
    filtered = beta.get(
        "/api/v1/audit-events", params={"device_group_id": groups["alpha"], "action": "inaccuracy"}
    ).json()
    assert [e["reason"] for e in filtered["items"]] == ["admin's note"]

    # A scoped administrator neither lists nor resolves another group's report.
    report_id = mine.json()["id"]
    assert beta_admin.get(f"/api/v1/inaccuracy-reports/{report_id}").status_code == 404
    listed = beta_admin.get("/api/v1/inaccuracy-reports").json()["items"]
    assert report_id not in [item["id"] for item in listed]
    assert beta_admin.post(f"/api/v1/inaccuracy-reports/{report_id}/confirm").status_code == 404
    assert admin.post(f"/api/v1/inaccuracy-reports/{report_id}/confirm").status_code == 200
    confirm = [e for e in _inaccuracy_events(admin) if e["action"] == "inaccuracy.confirm"]
    assert confirm[0]["device_group_ids"] == [groups["alpha"]]
    assert [e["action"] for e in _inaccuracy_events(beta)] == ["inaccuracy.report"]
