"""GET /api/machines over real HTTP: Microsoft's shape, OData $filter, paging and errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.support.orgs.defender import Organisation

MICROSOFT_MACHINE_FIELDS = {
    "id",
    "computerDnsName",
    "firstSeen",
    "lastSeen",
    "osPlatform",
    "version",
    "osProcessor",
    "lastIpAddress",
    "lastExternalIpAddress",
    "osBuild",
    "healthStatus",
    "rbacGroupId",
    "rbacGroupName",
    "riskScore",
    "exposureLevel",
    "isAadJoined",
    "aadDeviceId",
    "machineTags",
    "deviceValue",
    "onboardingStatus",
    "osArchitecture",
    "ipAddresses",
}


def names(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return sorted(item["computerDnsName"] for item in reply.json()["value"])


@pytest.mark.scenario("defender")
def test_machine_list_has_microsofts_fields_and_spellings(
    org: Organisation, api: httpx.Client
) -> None:
    reply = api.get("/api/machines")
    assert reply.status_code == 200
    body = reply.json()
    assert body["@odata.context"].endswith("/api/$metadata#Machines")
    assert "@odata.nextLink" not in body
    by_name = {m["computerDnsName"]: m for m in body["value"]}
    assert sorted(by_name) == ["srv-01", "srv-02", "ws-01", "ws-02"]
    ws1 = by_name["ws-01"]
    assert set(ws1) >= MICROSOFT_MACHINE_FIELDS
    assert ws1["id"] == org.devices["ws-01"].machine_id
    assert len(ws1["id"]) == 40
    assert ws1["osPlatform"] == "Windows11"
    assert ws1["osProcessor"] == "x64"
    assert ws1["osBuild"] == 22631
    assert ws1["deviceValue"] == "High"
    assert ws1["rbacGroupName"] == "GroupOne"
    assert ws1["rbacGroupId"] == org.groups["GroupOne"].id
    assert ws1["exposureLevel"] in {"Low", "Medium", "High"}
    assert by_name["srv-02"]["exposureLevel"] == "None"
    assert ws1["healthStatus"] == "Active"
    assert ws1["machineTags"] == ["Finance", "VIP", "internetFacing"]
    assert by_name["ws-02"]["isAadJoined"] is True
    # Dates are ISO 8601 in UTC with a Z, as Microsoft writes them.
    assert ws1["lastSeen"].endswith("Z")
    assert datetime.fromisoformat(ws1["firstSeen"].replace("Z", "+00:00")).tzinfo is not None


@pytest.mark.scenario("defender")
def test_single_machine_and_its_context(org: Organisation, api: httpx.Client) -> None:
    machine_id = org.devices["srv-01"].machine_id
    reply = api.get(f"/api/machines/{machine_id}")
    assert reply.status_code == 200
    body = reply.json()
    assert body["@odata.context"].endswith("/api/$metadata#Machines/$entity")
    assert body["computerDnsName"] == "srv-01"
    missing = api.get("/api/machines/" + "0" * 40)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    assert "0" * 40 in missing.json()["error"]["message"]


@pytest.mark.scenario("defender")
@pytest.mark.parametrize(
    ("odata_filter", "expected"),
    [
        # The documented samples of Microsoft's "OData queries" page, as written there.
        ("startswith(computerDnsName,'ws')", ["ws-01", "ws-02"]),
        ("lastSeen gt 2018-08-01Z", ["srv-01", "srv-02", "ws-01", "ws-02"]),
        ("healthStatus ne 'Active'", []),
        ("riskScore eq 'High'", []),
        # Field names and string values compare without case, like Microsoft's service.
        ("OsPlatform eq 'linux'", ["srv-01", "srv-02"]),
        ("ComputerDnsName eq 'WS-01'", ["ws-01"]),
        ("osPlatform in ('Linux', 'macOS')", ["srv-01", "srv-02"]),
        ("deviceValue eq 'High' or endswith(computerDnsName,'02')", ["srv-02", "ws-01", "ws-02"]),
        ("not (osPlatform eq 'Linux') and exposureLevel ne 'None'", ["ws-01", "ws-02"]),
        ("contains(computerDnsName, 'v-0')", ["srv-01", "srv-02"]),
        ("machineTags/any(tag: tag eq 'VIP')", ["ws-01"]),
        ("machineTags/any(tag: tag eq 'internetFacing')", ["ws-01"]),
        ("aadDeviceId eq null", ["srv-01", "srv-02", "ws-01", "ws-02"]),
        ("lastIpAddress ne null", ["ws-01"]),
        ("isAadJoined eq true", ["ws-02"]),
        ("lastSeen lt 2000-01-01T00:00:00Z", []),
        ("firstSeen ge 2000-01-01", ["srv-01", "srv-02", "ws-01", "ws-02"]),
        # A literal on the left reads the same as on the right.
        ("'Linux' eq osPlatform", ["srv-01", "srv-02"]),
        # LIKE wildcards in a value are plain characters.
        ("contains(computerDnsName, '%')", []),
        ("onboardingStatus eq 'Onboarded'", ["srv-01", "srv-02", "ws-01", "ws-02"]),
    ],
)
def test_machine_filters(
    org: Organisation, api: httpx.Client, odata_filter: str, expected: list[str]
) -> None:
    assert names(api.get("/api/machines", params={"$filter": odata_filter})) == expected


@pytest.mark.scenario("defender")
def test_filter_by_group_id(org: Organisation, api: httpx.Client) -> None:
    group_id = org.groups["GroupTwo"].id
    reply = api.get("/api/machines", params={"$filter": f"rbacGroupId eq {group_id}"})
    assert names(reply) == ["srv-01", "srv-02"]


@pytest.mark.scenario("defender")
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"$filter": "colour eq 'red'"}, "colour"),
        ({"$filter": "computerDnsName eq"}, "$filter"),
        ({"$filter": "computerDnsName eq 42"}, "computerDnsName"),
        ({"$filter": "lastSeen gt 'yesterday'"}, "lastSeen"),
        ({"$filter": "isAadJoined eq 'yes'"}, "isAadJoined"),
        ({"$filter": "machineTags eq 'VIP'"}, "any("),
        ({"$filter": "length(computerDnsName) eq 5"}, "length"),
        ({"$top": "10001"}, "10000"),
        ({"$top": "many"}, "$top"),
        ({"$skip": "-1"}, "$skip"),
        ({"$orderby": "computerDnsName sideways"}, "$orderby"),
        ({"$orderby": "colour"}, "colour"),
        ({"$select": "id,colour"}, "colour"),
    ],
)
def test_bad_odata_is_a_400_naming_the_problem(
    org: Organisation, api: httpx.Client, params: dict[str, str], named: str
) -> None:
    reply = api.get("/api/machines", params=params)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "BadRequest"
    assert named.lower() in error["message"].lower().replace(",", "")
    assert error["target"]


@pytest.mark.scenario("defender")
def test_top_skip_orderby_and_select(org: Organisation, api: httpx.Client) -> None:
    params = {"$orderby": "computerDnsName desc", "$top": "2", "$skip": "1"}
    reply = api.get("/api/machines", params=params)
    assert [m["computerDnsName"] for m in reply.json()["value"]] == ["ws-01", "srv-02"]
    # A client-chosen $top ends the result: no server-driven nextLink.
    assert "@odata.nextLink" not in reply.json()
    selected = api.get("/api/machines", params={"$select": "id,ComputerDnsName", "$top": "1"})
    assert set(selected.json()["value"][0]) == {"id", "computerDnsName"}
    assert api.get("/api/machines", params={"$top": "0"}).json()["value"] == []


@pytest.mark.scenario("defender")
def test_server_paging_follows_next_links(
    org: Organisation, start_server: Callable[..., str], token_for: Callable[..., str]
) -> None:
    base = start_server(page_size=3)
    headers = {"Authorization": f"Bearer {token_for()}"}
    url: str | None = f"{base}/api/machines?$filter=osPlatform ne 'macOS'"
    pages: list[list[str]] = []
    while url:
        body = httpx.get(url, headers=headers).json()
        pages.append([m["computerDnsName"] for m in body["value"]])
        url = body.get("@odata.nextLink")
    assert [len(p) for p in pages] == [3, 1]
    assert sorted(name for page in pages for name in page) == ["srv-01", "srv-02", "ws-01", "ws-02"]


@pytest.mark.scenario("defender")
def test_api_needs_a_token(org: Organisation, live_server: str) -> None:
    assert httpx.get(f"{live_server}/api/machines").status_code == 401
