"""GET /api/machines and /api/recommendations read plain rows and write their JSON once
(defender/encoding.py): the replies must be what the ORM entities and FastAPI's own encoding
gave before, for an administrator and for a user of one device group, with OData options."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.common.scoping import active_since
from remedium.db.base import utcnow
from remedium.inventory.models import Device, DeviceGroup, device_tags
from remedium.recommendations.models import Recommendation
from tests.support.orgs.defender import Organisation

# What FastAPI wrote for a route returning a dict (its response model is dict[str, Any]).
_PYDANTIC = TypeAdapter(dict[str, Any])
_BUILD = re.compile(r"^\d+\.\d+\.(\d+)")
_PROCESSORS = {"x64": ("x64", "64-bit"), "": (None, None)}


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _machine_from_entity(device: Device, group: str, now: datetime) -> dict[str, Any]:
    """The machine as the previous path built it, from the ORM entity (schemas.machine)."""
    processor, architecture = _PROCESSORS[device.os_architecture]
    build = _BUILD.match(device.os_version or "")
    return {
        "id": device.machine_id,
        "computerDnsName": device.name,
        "firstSeen": _z(device.first_seen),
        "lastSeen": _z(device.last_seen),
        "osPlatform": device.os_platform,
        "version": device.os_version or None,
        "osVersion": device.os_version or None,
        "osProcessor": processor,
        "osArchitecture": architecture,
        "osBuild": int(build.group(1)) if build else None,
        "lastIpAddress": device.ip_address or None,
        "lastExternalIpAddress": None,
        "healthStatus": "Active" if device.last_seen >= active_since(now) else "Inactive",
        "onboardingStatus": "Onboarded",
        "deviceValue": device.device_value,
        "rbacGroupId": device.device_group_id,
        "rbacGroupName": group,
        "riskScore": "None",
        "exposureLevel": device.exposure_level,
        "isAadJoined": bool(device.is_aad_joined),
        "aadDeviceId": device.aad_device_id,
        "machineTags": device_tags(device),
        "ipAddresses": (
            [{"ipAddress": device.ip_address, "macAddress": None, "operationalStatus": "Up"}]
            if device.ip_address
            else []
        ),
    }


def _recommendation_facts(rec: Recommendation) -> dict[str, Any]:
    """The recommendation's own fields as the previous path read them from the entity."""
    return {
        "id": rec.id,
        "productName": rec.product_name,
        "recommendationName": rec.name,
        "vendor": rec.vendor,
        "recommendedVersion": rec.recommended_version,
        "recommendedProgram": rec.recommended_program,
        "recommendedVendor": rec.recommended_vendor,
        "recommendationCategory": rec.category,
        "subCategory": rec.sub_category,
        "severityScore": rec.severity_score,
        "publicExploit": bool(rec.public_exploit),
        "activeAlert": bool(rec.active_alert),
        "associatedThreats": list(rec.associated_threats or []),
        "remediationType": rec.remediation_type,
        "relatedComponent": rec.related_component,
        "hasUnpatchableCve": bool(rec.has_unpatchable_cve),
        "tags": list(rec.tags or []),
    }


def _body(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = reply.json()
    # The same bytes as FastAPI's encoding of the same reply.
    assert reply.content == _PYDANTIC.dump_json(body)
    return body


def _awkward_facts(session: Session, org: Organisation) -> None:
    """Values whose encoding could differ: non-ASCII and quoted tags, microseconds, no IP."""
    ws1, ws2, srv1 = org.devices["ws-01"], org.devices["ws-02"], org.devices["srv-01"]
    ws1.tags = ['Zürich "HQ" \\ ✓', "VIP", "internetFacing"]
    ws1.first_seen = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    ws2.last_seen = utcnow() - timedelta(days=90)  # Inactive
    ws2.aad_device_id = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
    srv1.os_version = "5.15.0-91-generic"
    session.commit()


@pytest.mark.scenario("defender")
def test_machines_are_the_entities_as_before(
    org: Organisation,
    session: Session,
    live_server: str,
    token_for: Callable[..., str],
) -> None:
    _awkward_facts(session, org)
    rows = session.execute(
        select(Device, DeviceGroup.name).join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
    ).all()
    now = utcnow()
    expected = {d.machine_id: _machine_from_entity(d, g, now) for d, g in rows}
    one = org.groups["GroupOne"].id
    in_one = {d.machine_id for d, _ in rows if d.device_group_id == one}
    for groups, visible in (((), set(expected)), ((org.groups["GroupOne"],), in_one)):
        headers = {"Authorization": f"Bearer {token_for(*groups)}"}
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as api:
            body = _body(api.get("/api/machines"))
            assert body["@odata.context"] == f"{live_server}/api/$metadata#Machines"
            assert {m["id"]: m for m in body["value"]} == {i: expected[i] for i in visible}
            # Microsoft's field order, as before.
            order = list(next(iter(expected.values())))
            assert all(list(m) == order for m in body["value"])

            chosen = "id,machineTags,firstSeen,healthStatus,osBuild"
            body = _body(
                api.get(
                    "/api/machines",
                    params={
                        "$select": chosen,
                        "$filter": "machineTags/any(t: t eq 'VIP') or healthStatus eq 'Inactive'",
                        "$orderby": "computerDnsName desc",
                    },
                )
            )
            wanted = sorted(
                (
                    m
                    for i, m in expected.items()
                    if i in visible and ("VIP" in m["machineTags"] or m["healthStatus"] != "Active")
                ),
                key=lambda m: m["computerDnsName"],
                reverse=True,
            )
            assert wanted
            assert body["value"] == [{f: m[f] for f in chosen.split(",")} for m in wanted]

            paged = _body(api.get("/api/machines", params={"$top": "1", "$skip": "1"}))
            assert len(paged["value"]) == 1
            assert paged["value"][0] == expected[paged["value"][0]["id"]]


@pytest.mark.scenario("defender")
def test_machine_pages_link_to_the_next_as_before(
    org: Organisation,
    session: Session,
    start_server: Callable[..., str],
    token_for: Callable[..., str],
) -> None:
    base = start_server(page_size=3)
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token_for()}"}, timeout=30
    ) as api:
        first = _body(api.get("/api/machines", params={"$select": "id"}))
        assert len(first["value"]) == 3
        assert first["@odata.nextLink"] == f"{base}/api/machines?%24select=id&%24skip=3"
        rest = _body(api.get(first["@odata.nextLink"]))
        assert len(rest["value"]) == 1
        assert "@odata.nextLink" not in rest


@pytest.mark.scenario("defender")
def test_recommendations_are_the_entities_as_before(
    org: Organisation,
    session: Session,
    live_server: str,
    token_for: Callable[..., str],
) -> None:
    facts = {r.id: _recommendation_facts(r) for r in session.scalars(select(Recommendation))}
    for groups in ((), (org.groups["GroupTwo"],)):
        headers = {"Authorization": f"Bearer {token_for(*groups)}"}
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as api:
            body = _body(api.get("/api/recommendations"))
            assert body["@odata.context"] == f"{live_server}/api/$metadata#Recommendations"
            assert body["value"]
            for item in body["value"]:
                assert {k: item[k] for k in facts[item["id"]]} == facts[item["id"]]
                # The figures are those of the single recommendation's reply (same query).
                one = api.get(f"/api/recommendations/{item['id']}").json()
                assert {"@odata.context": one.pop("@odata.context"), **item} == {
                    "@odata.context": f"{live_server}/api/$metadata#Recommendations/$entity",
                    **one,
                }
            # A small page counts the weaknesses per row (service.GROUPED_WEAKNESSES_FROM).
            paged = _body(api.get("/api/recommendations", params={"$top": "2", "$skip": "1"}))
            assert paged["value"] == body["value"][1:3]
            chosen = "id,exposureImpact,configScoreImpact,weaknesses,severityScore,status"
            picked = _body(
                api.get(
                    "/api/recommendations",
                    params={
                        "$select": chosen,
                        "$filter": "exposedMachinesCount gt 0",
                        "$orderby": "exposureImpact desc",
                    },
                )
            )
            by_id = {i["id"]: i for i in body["value"]}
            assert sorted(i["id"] for i in picked["value"]) == sorted(by_id)
            assert all(list(i) == chosen.split(",") for i in picked["value"])
            assert all(
                i == {f: by_id[i["id"]][f] for f in chosen.split(",")} for i in picked["value"]
            )
