"""Scripts written for Microsoft's ``/api/remediationTasks`` read remedium's activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from remedium.auth.principal import Right
from tests.support.orgs.remediation import RECOMMENDATION, build_org
from tests.support.signin import client_for


def test_remediation_tasks_in_microsofts_shape(engine: Engine, admin_client: Any) -> None:
    org = build_org(engine)
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    created = admin_client.post(
        "/api/v1/remediation-activities",
        json={
            "recommendation_id": RECOMMENDATION,
            "remediation_type": "Update",
            "priority": "Medium",
            "due_on": due,
            "notes": "before the audit",
            "device_group_ids": [org.group_a],
        },
    ).json()
    reply = admin_client.get("/api/remediationTasks", params={"$filter": "status eq 'Active'"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["@odata.context"].endswith("$metadata#RemediationTasks")
    (item,) = body["value"]
    assert item["id"] == created["id"]
    assert item["category"] == "Software"
    assert item["type"] == "Update"
    assert item["priority"] == "Medium"
    assert item["requesterNotes"] == "before the audit"
    assert item["targetDevices"] == 2
    assert item["fixedDevices"] == 0
    assert item["rbacGroupNames"] == ["group-A"]
    assert item["productId"] == "google-_-chrome"
    assert item["completionMethod"] is None
    assert item["dueOn"].startswith(due)
    none = admin_client.get("/api/remediationTasks", params={"$filter": "status eq 'Completed'"})
    assert none.json()["value"] == []
    one = admin_client.get(f"/api/remediationTasks/{created['id']}").json()
    assert one["title"] == item["title"]
    machines = admin_client.get(f"/api/remediationTasks/{created['id']}/machineReferences")
    assert sorted(m["computerDnsName"] for m in machines.json()["value"]) == ["a-0", "a-1"]
    assert {m["rbacGroupName"] for m in machines.json()["value"]} == {"group-A"}
    admin_client.post(f"/api/v1/remediation-activities/{created['id']}/complete")
    done = admin_client.get(f"/api/remediationTasks/{created['id']}").json()
    assert done["completionMethod"] == "Manual"
    assert done["completerEmail"] == "test-admin"
    # Another group's user does not see it.
    other = client_for(engine, "b-viewer", rights=(Right.VIEW,), group_ids=[org.group_b])
    assert other.get(f"/api/remediationTasks/{created['id']}").status_code == 404
    assert other.get("/api/remediationTasks").json()["value"] == []
