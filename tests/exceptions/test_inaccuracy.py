"""Report inaccuracy: report, review by an administrator, and a false positive to an exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from remedium.audit.models import AuditEvent
from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.settings import get_settings
from tests.support.orgs.exceptions import CHROME, CVE, build
from tests.support.signin import client_for


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def org_built(engine: Engine) -> None:
    with transaction(engine) as session:
        build(session)


@pytest.mark.usefixtures("org_built")
def test_confirmed_false_positive_becomes_an_exception(engine: Engine) -> None:
    viewer = client_for(engine, "vic", rights=[Right.VIEW])
    admin = client_for(engine, "ada")
    reply = viewer.post(
        "/api/v1/inaccuracy-reports",
        json={
            "object_type": "recommendation",
            "object_id": CHROME,
            "category": "SoftwareNotInstalled",
            "details": "Chrome was removed from the kiosk image in March",
        },
    )
    assert reply.status_code == 201, reply.text
    report = reply.json()
    assert report["status"] == "new"
    assert report["category_label"] == "Software not installed"
    # Only administrators resolve; a report must be confirmed before it becomes an exception.
    assert viewer.post(f"/api/v1/inaccuracy-reports/{report['id']}/confirm").status_code == 403
    early = admin.post(f"/api/v1/inaccuracy-reports/{report['id']}/to-exception")
    assert early.status_code == 409
    confirmed = admin.post(
        f"/api/v1/inaccuracy-reports/{report['id']}/confirm", json={"comment": "checked"}
    )
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["resolver"] == "ada"
    made = admin.post(f"/api/v1/inaccuracy-reports/{report['id']}/to-exception")
    assert made.status_code == 201, made.text
    exception = made.json()
    assert exception["justification"] == "FalsePositive"
    assert exception["justification_label"] == "Other \u2013 false positive"
    assert exception["scope"] == "global"
    assert exception["status"] == "InEffect"
    assert "removed from the kiosk image" in exception["context"]
    linked = admin.get(f"/api/v1/inaccuracy-reports/{report['id']}").json()
    assert linked["exception_id"] == exception["id"]
    again = admin.post(f"/api/v1/inaccuracy-reports/{report['id']}/to-exception")
    assert again.status_code == 409
    # The software is not there at all: OpenVEX says so with the matching justification.
    openvex = admin.get("/api/v1/exceptions/export").json()
    assert {s["justification"] for s in openvex["statements"]} == {"component_not_present"}
    with transaction(engine) as session:
        actions = set(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.startswith("inaccuracy."))
            )
        )
    assert actions == {"inaccuracy.report", "inaccuracy.confirm", "inaccuracy.to_exception"}


@pytest.mark.usefixtures("org_built")
def test_reports_are_private_to_their_reporter_until_an_admin_looks(engine: Engine) -> None:
    vic = client_for(engine, "vic", rights=[Right.VIEW])
    wes = client_for(engine, "wes", rights=[Right.VIEW])
    admin = client_for(engine, "ada")
    body = {"object_type": "vulnerability", "object_id": CVE, "category": "WrongVersion"}
    mine = vic.post("/api/v1/inaccuracy-reports", json=body).json()
    wes.post("/api/v1/inaccuracy-reports", json=body | {"category": "Other"})
    assert vic.get("/api/v1/inaccuracy-reports").json()["total"] == 1
    assert wes.get(f"/api/v1/inaccuracy-reports/{mine['id']}").status_code == 404
    assert admin.get("/api/v1/inaccuracy-reports").json()["total"] == 2
    dismissed = admin.post(f"/api/v1/inaccuracy-reports/{mine['id']}/dismiss").json()
    assert dismissed["status"] == "dismissed"
    assert admin.get("/api/v1/inaccuracy-reports", params={"status": "new"}).json()["total"] == 1
    assert admin.post(f"/api/v1/inaccuracy-reports/{mine['id']}/confirm").status_code == 409
    unknown = body | {"object_id": "CVE-1999-0000"}
    assert vic.post("/api/v1/inaccuracy-reports", json=unknown).status_code == 404
    no_view = client_for(engine, "nobody", rights=[])
    assert no_view.post("/api/v1/inaccuracy-reports", json=body).status_code == 403


@pytest.mark.usefixtures("org_built")
def test_a_cve_report_becomes_a_cve_exception_for_chosen_groups(engine: Engine) -> None:
    admin = client_for(engine, "ada")
    report = admin.post(
        "/api/v1/inaccuracy-reports",
        json={"object_type": "vulnerability", "object_id": CVE, "category": "FalsePositive"},
    ).json()
    admin.post(f"/api/v1/inaccuracy-reports/{report['id']}/confirm")
    made = admin.post(
        f"/api/v1/inaccuracy-reports/{report['id']}/to-exception",
        json={"scope": "all_groups", "duration_days": 90},
    ).json()
    assert made["type"] == "cve"
    assert made["vulnerability_id"] == CVE
    assert {g["name"] for g in made["device_groups"]} == {"Alpha", "Beta", "Gamma"}
