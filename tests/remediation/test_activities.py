"""Requesting remediation through the API: scope, rights, progress, completion, the cap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from remedium.audit.models import AuditEvent
from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.inventory.models import Weakness
from remedium.remediation.models import ActivityWeakness, OutboxMessage, RemediationActivity
from remedium.remediation.progress import refresh_activity_progress
from remedium.settings import get_settings
from tests.support.orgs.remediation import RECOMMENDATION, build_org, fix_devices
from tests.support.signin import client_for

TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recommendation_id": RECOMMENDATION,
        "remediation_type": "Update",
        "priority": "High",
        "due_on": TOMORROW,
        "notes": "PCI finding",
    }
    body.update(overrides)
    return body


def test_request_progress_and_automatic_completion(engine: Engine, admin_client: Any) -> None:
    org = build_org(engine)
    reply = admin_client.post("/api/v1/remediation-activities", json=_request(connector="tickets"))
    assert reply.status_code == 201, reply.text
    activity = reply.json()
    assert activity["status"] == "Active"
    assert activity["target_devices"] == 4
    assert activity["fixed_devices"] == 0
    assert activity["progress_percent"] == 0.0
    assert activity["ticket"]["delivery"] == "pending"
    assert sorted(activity["device_groups"]) == ["group-A", "group-B"]
    assert activity["requester"] == "test-admin"
    with transaction(engine) as session:
        # The activity and its pending ticket were committed together.
        assert session.scalar(select(OutboxMessage.state)) == "pending"
        targeted = set(session.scalars(select(ActivityWeakness.target_key)))
        assert targeted == {"CVE-2026-0001", "CVE-2026-0002"}

    listed = admin_client.get("/api/v1/remediation-activities", params={"status": "Active"})
    assert [a["id"] for a in listed.json()["items"]] == [activity["id"]]

    with transaction(engine) as session:
        fix_devices(session, org.devices_a)
        completed = refresh_activity_progress(session, device_ids=org.devices_a)
        assert completed == []
    one = admin_client.get(f"/api/v1/remediation-activities/{activity['id']}").json()
    assert one["fixed_devices"] == 2
    assert one["progress_percent"] == 50.0
    devices = admin_client.get(f"/api/v1/remediation-activities/{activity['id']}/devices").json()
    status = {d["name"]: d["status"] for d in devices["items"]}
    assert status == {"a-0": "Fixed", "a-1": "Fixed", "b-0": "Not fixed", "b-1": "Not fixed"}

    with transaction(engine) as session:
        fix_devices(session, org.devices_b)
        assert refresh_activity_progress(session, device_ids=org.devices_b) == [activity["id"]]
    done = admin_client.get(f"/api/v1/remediation-activities/{activity['id']}").json()
    assert done["status"] == "Completed"
    assert done["completion_method"] == "System confirmation"
    assert done["completed_by"] == "System confirmation"
    with transaction(engine) as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == activity["id"]))
        )
    assert actions.count("remediation.request") == 1
    assert actions.count("remediation.complete") == 1
    csv_text = admin_client.get("/api/v1/remediation-activities/export.csv").text
    assert activity["id"] in csv_text
    assert "System confirmation" in csv_text
    devices_csv = admin_client.get(
        f"/api/v1/remediation-activities/{activity['id']}/devices.csv"
    ).text
    assert devices_csv.count("\n") == 5


def test_a_weakness_that_comes_back_undoes_progress(engine: Engine, admin_client: Any) -> None:
    org = build_org(engine)
    activity = admin_client.post("/api/v1/remediation-activities", json=_request()).json()
    with transaction(engine) as session:
        fix_devices(session, org.devices_a[:1])
        refresh_activity_progress(session)

        for weakness in session.scalars(
            select(Weakness).where(Weakness.device_id == org.devices_a[0])
        ):
            weakness.fixed_at = None
        refresh_activity_progress(session)
    one = admin_client.get(f"/api/v1/remediation-activities/{activity['id']}").json()
    assert one["fixed_devices"] == 0


def test_manual_completion_is_recorded(engine: Engine, admin_client: Any) -> None:
    build_org(engine)
    activity = admin_client.post("/api/v1/remediation-activities", json=_request()).json()
    reply = admin_client.post(f"/api/v1/remediation-activities/{activity['id']}/complete")
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "Completed"
    assert reply.json()["completion_method"] == "Manual"
    assert reply.json()["completed_by"] == "test-admin"
    again = admin_client.post(f"/api/v1/remediation-activities/{activity['id']}/complete")
    assert again.status_code == 409


def test_scoped_user_cannot_target_or_see_another_group(engine: Engine, admin_client: Any) -> None:
    org = build_org(engine)
    theirs = admin_client.post(
        "/api/v1/remediation-activities", json=_request(device_group_ids=[org.group_b])
    ).json()
    client = client_for(
        engine, "analyst-a", rights=(Right.VIEW, Right.REMEDIATION), group_ids=[org.group_a]
    )
    refused = client.post(
        "/api/v1/remediation-activities", json=_request(device_group_ids=[org.group_b])
    )
    assert refused.status_code == 422
    assert client.get(f"/api/v1/remediation-activities/{theirs['id']}").status_code == 404
    assert client.get("/api/v1/remediation-activities").json()["total"] == 0
    # "All device groups" means all of *their* groups.
    mine = client.post("/api/v1/remediation-activities", json=_request())
    assert mine.status_code == 201, mine.text
    assert mine.json()["target_devices"] == 2
    assert mine.json()["device_groups"] == ["group-A"]


def test_remediation_right_is_required(engine: Engine) -> None:
    build_org(engine)
    viewer = client_for(engine, "viewer", rights=(Right.VIEW,))
    assert viewer.post("/api/v1/remediation-activities", json=_request()).status_code == 403
    assert viewer.get("/api/v1/remediation-activities").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"remediation_type": "AttentionRequired"}, "due_on"),
        ({"due_on": (date.today() - timedelta(days=2)).isoformat()}, "due_on"),
        ({"due_on": None}, "due_on"),
        ({"remediation_type": "ConfigurationChange"}, "remediation_type"),
        ({"connector": "off"}, "connector"),
        ({"connector": "nowhere"}, "connector"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    engine: Engine, admin_client: Any, overrides: dict[str, Any], field: str
) -> None:
    build_org(engine)
    reply = admin_client.post("/api/v1/remediation-activities", json=_request(**overrides))
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"][-1] == field
    with transaction(engine) as session:
        assert session.scalar(select(RemediationActivity.id)) is None


def test_attention_required_has_no_due_date_and_no_progress(
    engine: Engine, admin_client: Any
) -> None:
    org = build_org(engine)
    reply = admin_client.post(
        "/api/v1/remediation-activities",
        json=_request(remediation_type="AttentionRequired", due_on=None),
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["progress_percent"] is None
    assert reply.json()["due_on"] is None
    with transaction(engine) as session:
        fix_devices(session, org.devices_a + org.devices_b)
        assert refresh_activity_progress(session) == []


def test_unknown_recommendation_is_404(engine: Engine, admin_client: Any) -> None:
    build_org(engine)
    reply = admin_client.post(
        "/api/v1/remediation-activities", json=_request(recommendation_id="va-_-nope-_-nope")
    )
    assert reply.status_code == 404


def test_over_the_cap_targets_the_most_exposed_and_says_so(
    engine: Engine, admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_org(engine)
    monkeypatch.setenv("REMEDIUM_MAX_DEVICES_PER_TICKET", "3")
    get_settings.cache_clear()
    try:
        preview = admin_client.post(
            "/api/v1/remediation-activities/preview", json={"recommendation_id": RECOMMENDATION}
        ).json()
        assert preview["devices_in_scope"] == 4
        assert preview["intune_eligible_devices"] == 2
        assert preview["devices_over_cap"] == 1
        assert "another request for each remaining device group" in preview["message"]
        activity = admin_client.post(
            "/api/v1/remediation-activities", json=_request(connector="tickets")
        ).json()
        assert activity["target_devices"] == 3
        assert activity["devices_over_cap"] == 1
        assert "at most 3" in activity["cap_message"]
        names = [
            d["name"]
            for d in admin_client.get(
                f"/api/v1/remediation-activities/{activity['id']}/devices"
            ).json()["items"]
        ]
        # The two devices with two vulnerabilities are the most exposed: both go first.
        assert set(names[:2]) == {"a-0", "b-0"}
        with transaction(engine) as session:
            payload = session.scalars(select(OutboxMessage.payload)).one()
        assert len(payload["target_devices"]) == 3
    finally:
        get_settings.cache_clear()


def test_overdue_filter(engine: Engine, admin_client: Any) -> None:
    build_org(engine)
    activity = admin_client.post("/api/v1/remediation-activities", json=_request()).json()
    with transaction(engine) as session:
        row = session.get(RemediationActivity, activity["id"])
        assert row is not None
        row.due_on = datetime.now(UTC) - timedelta(days=3)
    overdue = admin_client.get("/api/v1/remediation-activities", params={"overdue": "true"})
    assert [a["id"] for a in overdue.json()["items"]] == [activity["id"]]
    assert overdue.json()["items"][0]["overdue"] is True
    assert (
        admin_client.get("/api/v1/remediation-activities", params={"overdue": "false"}).json()[
            "total"
        ]
        == 0
    )
