"""``/api/v1/device-groups`` over HTTP: create, rename, rank and delete with rules; rights,
validation and the refusal to delete a group an exception still covers."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from remedium.auth.principal import Right
from remedium.db.session import transaction
from remedium.recommendations.service import recompute
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.signin import user_with_token


def _org(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        home = make_group(session, "Home")
        chrome = make_software(session, "google", "chrome")
        cve = make_vulnerability(session, "CVE-2024-7100", cvss=7.5, severity="High")
        ids = {"home": home.id}
        for name in ("web-1.dmz.example.com", "web-2.dmz.example.com", "db-1.lan.example.com"):
            device = make_device(session, home, name, os_platform="Linux")
            install(session, device, chrome, "1.0")
            add_weakness(session, device, chrome, cve)
            ids[name] = device.id
        recompute(session)
    return ids


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_groups_are_managed_over_the_api(live_server: str, engine: Engine) -> None:
    ids = _org(engine)
    admin = _client(live_server, user_with_token(engine, "root"))
    created = admin.post(
        "/api/v1/device-groups",
        json={
            "name": "DMZ",
            "description": "Web servers",
            "rules": [{"field": "domain", "operator": "equals", "value": "dmz.example.com"}],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["devices_moved"] == 2
    dmz = body["group"]
    assert (dmz["rank"], dmz["devices"]) == (1, 2)
    # The Defender API sees the move at once.
    machines = admin.get("/api/machines", params={"$filter": f"rbacGroupId eq {dmz['id']}"})
    assert sorted(m["computerDnsName"] for m in machines.json()["value"]) == [
        "web-1.dmz.example.com",
        "web-2.dmz.example.com",
    ]
    web1 = admin.post(
        "/api/v1/device-groups",
        json={"name": "Web one", "rules": [{"field": "name", "value": "web-1.dmz.example.com"}]},
    ).json()
    assert web1["group"]["rank"] == 2
    assert web1["devices_moved"] == 0  # DMZ (rank 1) takes web-1 first
    moved = admin.patch(f"/api/v1/device-groups/{web1['group']['id']}", json={"rank": 1})
    assert moved.json()["devices_moved"] == 1
    renamed = admin.patch(f"/api/v1/device-groups/{dmz['id']}", json={"name": "Perimeter"})
    assert renamed.json()["group"]["name"] == "Perimeter"
    assert renamed.json()["group"]["rank"] == 2
    one = admin.get(f"/api/v1/device-groups/{dmz['id']}").json()
    assert one["rules"] == [{"field": "domain", "operator": "equals", "value": "dmz.example.com"}]
    # Bad input answers 400/409/422, never a half-made change.
    assert admin.post("/api/v1/device-groups", json={"name": "Perimeter"}).status_code == 409
    bad_rule = admin.post(
        "/api/v1/device-groups", json={"name": "X", "rules": [{"field": "owner", "value": "me"}]}
    )
    assert bad_rule.status_code == 400
    assert admin.post("/api/v1/device-groups", json={"name": ""}).status_code == 422
    assert admin.get("/api/v1/device-groups/999999").status_code == 404
    deleted = admin.delete(f"/api/v1/device-groups/{web1['group']['id']}")
    assert deleted.json()["devices_moved"] == 1
    listed = {g["name"]: g for g in admin.get("/api/v1/device-groups").json()}
    assert listed["Perimeter"]["devices"] == 2
    assert listed["Home"]["devices"] == 1
    assert ids["home"] == listed["Home"]["id"]


def test_only_administrators_change_groups(live_server: str, engine: Engine) -> None:
    _org(engine)
    token = user_with_token(engine, "clerk", rights=(Right.VIEW, Right.INVENTORY))
    with _client(live_server, token) as clerk:
        assert clerk.post("/api/v1/device-groups", json={"name": "Mine"}).status_code == 403
        assert clerk.get("/api/v1/device-groups").status_code == 200


def test_a_group_under_an_exception_is_not_deleted(live_server: str, engine: Engine) -> None:
    ids = _org(engine)
    admin = _client(live_server, user_with_token(engine, "root"))
    filed = admin.post(
        "/api/v1/exceptions",
        json={
            "recommendation_id": "va-_-google-_-chrome",
            "justification": "AcceptRisk",
            "device_group_ids": [ids["home"]],
            "duration_days": 30,
        },
    )
    assert filed.status_code in (200, 201), filed.text
    refused = admin.delete(f"/api/v1/device-groups/{ids['home']}")
    assert refused.status_code == 409
    assert "exceptions #" in refused.json()["detail"]
    assert admin.get(f"/api/v1/device-groups/{ids['home']}").status_code == 200
