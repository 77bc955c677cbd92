"""Recommendations, vulnerabilities, software and scores through the Defender-compatible API,
organisation-wide and for a user limited to one device group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.orgs.defender import Organisation

CHROME = "va-_-google-_-chrome"
RECOMMENDATION_FIELDS = {
    "id",
    "productName",
    "recommendationName",
    "weaknesses",
    "vendor",
    "recommendedVersion",
    "recommendationCategory",
    "subCategory",
    "severityScore",
    "publicExploit",
    "activeAlert",
    "associatedThreats",
    "remediationType",
    "status",
    "configScoreImpact",
    "exposureImpact",
    "totalMachineCount",
    "exposedMachinesCount",
    "nonProductivityImpactedAssets",
    "relatedComponent",
    "hasUnpatchableCve",
    "tags",
    "exposedCriticalDevices",
}


def values(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["value"]
    return items


@pytest.mark.scenario("defender")
def test_recommendation_list_matches_microsofts_example_shape(
    org: Organisation, api: httpx.Client
) -> None:
    body = api.get("/api/recommendations").json()
    assert body["@odata.context"].endswith("/api/$metadata#Recommendations")
    by_id = {r["id"]: r for r in body["value"]}
    chrome = by_id[CHROME]
    assert set(chrome) == RECOMMENDATION_FIELDS | {"recommendedProgram", "recommendedVendor"}
    assert chrome["productName"] == "chrome"
    assert chrome["vendor"] == "google"
    assert chrome["recommendationCategory"] == "Application"
    assert chrome["remediationType"] == "Update"
    assert chrome["status"] == "Active"
    # ws-01, ws-02 and srv-01 are exposed; srv-02 has Chrome installed but no weakness.
    assert chrome["exposedMachinesCount"] == 3
    assert chrome["totalMachineCount"] == 4
    assert chrome["weaknesses"] == 2
    assert chrome["exposedCriticalDevices"] == 1
    assert chrome["activeAlert"] is True
    assert chrome["publicExploit"] is True
    assert chrome["exposureImpact"] > by_id["va-_-mozilla-_-firefox"]["exposureImpact"] > 0
    configuration = next(r for r in body["value"] if r["remediationType"] == "ConfigurationChange")
    assert configuration["recommendationCategory"] == "OS"
    assert configuration["severityScore"] == 8.0
    assert configuration["configScoreImpact"] > 0


@pytest.mark.scenario("defender")
@pytest.mark.parametrize(
    ("odata_filter", "expected"),
    [
        ("remediationType eq 'Update'", [CHROME, "va-_-mozilla-_-firefox"]),
        ("recommendationCategory eq 'OS'", ["sca-_-scid-1"]),
        ("productName eq 'chrome' and vendor eq 'google'", [CHROME]),
        ("status eq 'Active' and severityScore gt 5", ["sca-_-scid-1"]),
        ("status eq 'Exception'", []),
        ("id in ('va-_-google-_-chrome', 'nope')", [CHROME]),
        ("activeAlert eq true", [CHROME]),
        ("exposedMachinesCount ge 2", [CHROME]),
    ],
)
def test_recommendation_filters(
    org: Organisation, api: httpx.Client, odata_filter: str, expected: list[str]
) -> None:
    reply = api.get("/api/recommendations", params={"$filter": odata_filter})
    assert sorted(r["id"] for r in values(reply)) == expected


@pytest.mark.scenario("defender")
def test_recommendations_sort_by_impact(org: Organisation, api: httpx.Client) -> None:
    reply = api.get("/api/recommendations", params={"$orderby": "exposureImpact desc", "$top": 1})
    assert [r["id"] for r in values(reply)] == [CHROME]


@pytest.mark.scenario("defender")
def test_recommendation_and_its_sub_resources(org: Organisation, api: httpx.Client) -> None:
    single = api.get(f"/api/recommendations/{CHROME}").json()
    assert single["@odata.context"].endswith("#Recommendations/$entity")
    assert single["exposedMachinesCount"] == 3
    machines = api.get(f"/api/recommendations/{CHROME}/machineReferences").json()
    assert machines["@odata.context"].endswith("#MachineReferences")
    assert sorted(m["computerDnsName"] for m in machines["value"]) == ["srv-01", "ws-01", "ws-02"]
    assert {"id", "computerDnsName", "osPlatform", "rbacGroupName"} <= set(machines["value"][0])
    filtered = api.get(
        f"/api/recommendations/{CHROME}/machineReferences",
        params={"$filter": "rbacGroupName eq 'GroupTwo'"},
    )
    assert [m["computerDnsName"] for m in values(filtered)] == ["srv-01"]
    vulns = values(api.get(f"/api/recommendations/{CHROME}/vulnerabilities"))
    assert {v["id"]: v["exposedMachines"] for v in vulns} == {
        "CVE-2024-0001": 2,
        "CVE-2024-0002": 2,
    }
    software = values(api.get(f"/api/recommendations/{CHROME}/software"))
    assert [s["id"] for s in software] == ["google-_-chrome"]
    assert values(api.get("/api/recommendations/sca-_-scid-1/software")) == []
    missing = api.get("/api/recommendations/va-_-nobody-_-nothing/machineReferences")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"


@pytest.mark.scenario("defender")
def test_vulnerabilities_and_software(org: Organisation, api: httpx.Client) -> None:
    vulns = api.get("/api/vulnerabilities").json()
    assert vulns["@odata.context"].endswith("#Vulnerabilities")
    by_id = {v["id"]: v for v in vulns["value"]}
    assert by_id["CVE-2024-0001"]["severity"] == "Critical"
    assert by_id["CVE-2024-0001"]["cvssV3"] == 9.8
    assert by_id["CVE-2024-0003"]["exposedMachines"] == 1
    critical = api.get("/api/vulnerabilities", params={"$filter": "cvssV3 ge 7"})
    assert [v["id"] for v in values(critical)] == ["CVE-2024-0001"]
    none_published = api.get("/api/vulnerabilities", params={"$filter": "publishedOn ne null"})
    assert values(none_published) == []
    single = api.get("/api/vulnerabilities/cve-2024-0002").json()
    assert single["id"] == "CVE-2024-0002"
    assert single["publicExploit"] is True
    assert api.get("/api/vulnerabilities/CVE-1999-0001").status_code == 404
    software = values(api.get("/api/Software"))
    chrome = next(s for s in software if s["id"] == "google-_-chrome")
    assert chrome == {
        "id": "google-_-chrome",
        "name": "chrome",
        "vendor": "google",
        "weaknesses": 2,
        "publicExploit": True,
        "activeAlert": True,
        "exposedMachines": 3,
        "impactScore": pytest.approx(chrome["impactScore"]),
    }
    assert chrome["impactScore"] > 0
    by_vendor = api.get("/api/Software", params={"$filter": "vendor eq 'mozilla'"})
    assert [s["name"] for s in values(by_vendor)] == ["firefox"]
    assert api.get("/api/Software/google-_-chrome").json()["exposedMachines"] == 3


@pytest.mark.scenario("defender")
def test_scores(org: Organisation, api: httpx.Client) -> None:
    exposure = api.get("/api/exposureScore").json()
    assert exposure["@odata.context"].endswith("#ExposureScore/$entity")
    assert 0 < exposure["score"] < 100
    assert exposure["time"].endswith("Z")
    groups = api.get("/api/exposureScore/ByMachineGroups").json()
    assert [g["rbacGroupName"] for g in groups["value"]] == ["GroupOne", "GroupTwo"]
    assert all(0 < g["score"] < 100 for g in groups["value"])
    configuration = api.get("/api/configurationScore").json()
    assert configuration["@odata.context"].endswith("#ConfigurationScore/$entity")
    # One check, failing on one of the two devices assessed.
    assert configuration["score"] == pytest.approx(50.0)


@pytest.mark.scenario("defender")
def test_a_user_of_one_group_sees_only_that_group(
    org: Organisation, live_server: str, token_for: Callable[..., str]
) -> None:
    token = token_for(org.groups["GroupTwo"])
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {token}"}) as client:
        machines = values(client.get("/api/machines"))
        assert sorted(m["computerDnsName"] for m in machines) == ["srv-01", "srv-02"]
        ws1 = org.devices["ws-01"].machine_id
        assert client.get(f"/api/machines/{ws1}").status_code == 404
        recommendations = {r["id"]: r for r in values(client.get("/api/recommendations"))}
        # Only Chrome has an exposed device (srv-01) in GroupTwo.
        assert list(recommendations) == [CHROME]
        assert recommendations[CHROME]["exposedMachinesCount"] == 1
        assert recommendations[CHROME]["totalMachineCount"] == 2
        assert recommendations[CHROME]["weaknesses"] == 1
        assert client.get("/api/recommendations/va-_-mozilla-_-firefox").status_code == 404
        refs = values(client.get(f"/api/recommendations/{CHROME}/machineReferences"))
        assert [m["computerDnsName"] for m in refs] == ["srv-01"]
        vulns = values(client.get("/api/vulnerabilities"))
        assert [(v["id"], v["exposedMachines"]) for v in vulns] == [("CVE-2024-0001", 1)]
        software = values(client.get("/api/Software"))
        assert [(s["id"], s["exposedMachines"]) for s in software] == [("google-_-chrome", 1)]
        groups = values(client.get("/api/exposureScore/ByMachineGroups"))
        assert [g["rbacGroupName"] for g in groups] == ["GroupTwo"]
        score = client.get("/api/exposureScore").json()["score"]
        assert score == pytest.approx(groups[0]["score"], abs=0.01)


@pytest.mark.scenario("defender")
def test_a_script_written_for_microsofts_api_runs_unchanged(
    org: Organisation, start_server: Callable[..., str], token_for: Callable[..., str]
) -> None:
    """Microsoft's Python samples, with only the base URL and token changed: list every
    recommendation page by page, keep those with exposed devices, and fetch their machines."""
    base = start_server(page_size=2)
    token = token_for()

    # --- the script -----------------------------------------------------------------------
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": "Bearer " + token,
    }

    def get_all(url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while url:
            response = httpx.get(url, headers=headers)
            json_response = response.json()
            items.extend(json_response["value"])
            url = json_response.get("@odata.nextLink")
        return items

    recommendations = get_all(base + "/api/recommendations?$filter=remediationType+eq+'Update'")
    report = {}
    for recommendation in recommendations:
        if recommendation["exposedMachinesCount"] > 0:
            machines = get_all(
                base + "/api/recommendations/" + recommendation["id"] + "/machineReferences"
            )
            report[recommendation["recommendationName"]] = sorted(
                m["computerDnsName"] for m in machines
            )
    # --- end of the script ----------------------------------------------------------------

    assert report == {
        next(r["recommendationName"] for r in recommendations if r["id"] == CHROME): [
            "srv-01",
            "ws-01",
            "ws-02",
        ],
        next(
            r["recommendationName"] for r in recommendations if r["id"] == "va-_-mozilla-_-firefox"
        ): ["ws-02"],
    }
