"""The native exception and inaccuracy API, over HTTP, with real accounts and tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from sqlalchemy import Engine, select

from remedium.audit.models import AuditEvent
from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.settings import get_settings
from tests.exceptions.test_vex import check_openvex
from tests.support.orgs.exceptions import CHROME, CVE, build
from tests.support.signin import client_for

ANALYST_RIGHTS = [Right.VIEW, Right.EXCEPTIONS]


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def groups(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        org = build(session)
        return {"alpha": org.alpha.id, "beta": org.beta.id, "gamma": org.gamma.id}


def _body(**extra: object) -> dict[str, object]:
    return {
        "recommendation_id": CHROME,
        "justification": "CompensatingControl",
        "context": "WAF rule 42 blocks the vector",
        "duration_days": 60,
        **extra,
    }


def test_file_list_get_cancel(engine: Engine, groups: dict[str, int]) -> None:
    client = client_for(engine, "ana", rights=ANALYST_RIGHTS)
    reply = client.post("/api/v1/exceptions", json=_body(device_group_ids=[groups["alpha"]]))
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["status"] == "InEffect"
    assert created["status_label"] == "In effect"
    assert created["impact"] == "MitigationLike"
    assert created["justification_label"] == "Compensating/alternate control"
    assert created["target_name"]
    assert [g["name"] for g in created["device_groups"]] == ["Alpha"]
    assert [h["kind"] for h in created["history"]] == ["file", "in_effect"]
    again = client.post("/api/v1/exceptions", json=_body(device_group_ids=[groups["alpha"]]))
    assert again.status_code == 409
    assert "Alpha" in again.json()["detail"]
    client.post(
        "/api/v1/exceptions",
        json=_body(
            recommendation_id=None,
            vulnerability_id=CVE,
            justification="AcceptRisk",
            device_group_ids=[groups["beta"]],
        ),
    )
    listed = client.get("/api/v1/exceptions", params={"type": "cve"}).json()
    assert listed["total"] == 1
    assert listed["items"][0]["justification"] == "AcceptRisk"
    assert client.get("/api/v1/exceptions", params={"status": "InEffect"}).json()["total"] == 2
    assert (
        client.get("/api/v1/exceptions", params={"justification": "FalsePositive"}).json()["total"]
        == 0
    )
    cancel = client.post(f"/api/v1/exceptions/{created['id']}/cancel", json={"reason": "fixed"})
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "Canceled"
    detail = client.get(f"/api/v1/exceptions/{created['id']}").json()
    assert [h["kind"] for h in detail["history"]][-1] == "cancel"
    with transaction(engine) as session:
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "exception"))
        )
    assert {"exception.file", "exception.cancel"} <= actions


def test_bad_requests_answer_422(engine: Engine, groups: dict[str, int]) -> None:
    client = client_for(engine, "ana", rights=ANALYST_RIGHTS)
    no_duration = _body(device_group_ids=[groups["alpha"]], duration_days=None)
    assert client.post("/api/v1/exceptions", json=no_duration).status_code == 422
    odd = _body(device_group_ids=[groups["alpha"]], duration_days=45)
    assert client.post("/api/v1/exceptions", json=odd).status_code == 422
    past = _body(device_group_ids=[groups["alpha"]], duration_days=None, expires_on="2001-01-01")
    reply = client.post("/api/v1/exceptions", json=past)
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "expires_on"]


def test_rights_global_and_scope(engine: Engine, groups: dict[str, int]) -> None:
    viewer = client_for(engine, "vic", rights=[Right.VIEW])
    assert viewer.post("/api/v1/exceptions", json=_body(scope="all_groups")).status_code == 403
    analyst = client_for(engine, "ana", rights=ANALYST_RIGHTS)
    assert analyst.post("/api/v1/exceptions", json=_body(scope="global")).status_code == 403
    admin = client_for(engine, "ada")
    glob = admin.post("/api/v1/exceptions", json=_body(scope="global")).json()
    assert glob["scope"] == "global"
    assert analyst.post(f"/api/v1/exceptions/{glob['id']}/cancel").status_code == 403
    scoped = client_for(engine, "sam", rights=ANALYST_RIGHTS, group_ids=[groups["alpha"]])
    outside = _body(recommendation_id=None, vulnerability_id=CVE, device_group_ids=[groups["beta"]])
    assert scoped.post("/api/v1/exceptions", json=outside).status_code == 404
    beta_only = analyst.post("/api/v1/exceptions", json=outside).json()
    assert scoped.get(f"/api/v1/exceptions/{beta_only['id']}").status_code == 404
    assert scoped.post(f"/api/v1/exceptions/{beta_only['id']}/cancel").status_code == 404
    seen = {e["id"] for e in scoped.get("/api/v1/exceptions").json()["items"]}
    assert seen == {glob["id"]}  # the global exception covers their group too
    assert "Beta" not in scoped.get("/api/v1/exceptions/export").text


def test_approval_over_the_api(
    engine: Engine, groups: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", "1")
    get_settings.cache_clear()
    requester = client_for(engine, "ana", rights=ANALYST_RIGHTS)
    reviewer = client_for(engine, "rex", rights=ANALYST_RIGHTS)
    filed = requester.post("/api/v1/exceptions", json=_body(scope="all_groups")).json()
    assert filed["status"] == "PendingApproval"
    own = requester.post(f"/api/v1/exceptions/{filed['id']}/approve", json={"comment": "me"})
    assert own.status_code == 403
    approved = reviewer.post(f"/api/v1/exceptions/{filed['id']}/approve", json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "InEffect"
    assert approved.json()["decided_by"] == "rex"
    other = requester.post(
        "/api/v1/exceptions",
        json=_body(recommendation_id=None, vulnerability_id=CVE, scope="all_groups"),
    ).json()
    rejected = reviewer.post(f"/api/v1/exceptions/{other['id']}/reject", json={"comment": "no"})
    assert rejected.json()["status"] == "Rejected"
    assert reviewer.post(f"/api/v1/exceptions/{other['id']}/approve").status_code == 409


def test_vex_export_over_the_api(engine: Engine, groups: dict[str, int]) -> None:
    admin = client_for(engine, "ada")
    admin.post("/api/v1/exceptions", json=_body(device_group_ids=[groups["alpha"]]))
    admin.post(
        "/api/v1/exceptions",
        json=_body(justification="AcceptRisk", device_group_ids=[groups["beta"]]),
    )
    openvex = admin.get("/api/v1/exceptions/export", params={"format": "openvex"})
    assert openvex.status_code == 200
    check_openvex(openvex.json())
    assert {s["status"] for s in openvex.json()["statements"]} == {"not_affected", "affected"}
    cdx = admin.get("/api/v1/exceptions/export", params={"format": "cyclonedx"})
    assert cdx.headers["content-type"].startswith("application/vnd.cyclonedx+json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(cdx.json())) is None
    assert admin.get("/api/v1/exceptions/export", params={"format": "csaf"}).status_code == 422


def test_expiring_soon_endpoint(engine: Engine, groups: dict[str, int]) -> None:
    admin = client_for(engine, "ada")
    admin.post("/api/v1/exceptions", json=_body(scope="all_groups", duration_days=None,
               expires_on="2099-01-01"))  # fmt: skip
    assert admin.get("/api/v1/exceptions/expiring-soon").json() == []

    soon = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    admin.post(
        "/api/v1/exceptions",
        json=_body(
            recommendation_id=None, vulnerability_id=CVE, scope="all_groups",
            duration_days=None, expires_on=soon,
        ),
    )  # fmt: skip
    [item] = admin.get("/api/v1/exceptions/expiring-soon").json()
    assert item["vulnerability_id"] == CVE
