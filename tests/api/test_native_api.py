"""The native REST API under /api/v1 over real HTTP: shapes, filters, paging, errors, scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine

from remedium.auth.principal import Right
from remedium.db.session import transaction
from tests.support.orgs.hand_made import CHROME, JAVA, SCID, Org, build_org
from tests.support.signin import user_with_token


@dataclass
class Api:
    """Clients of the live server: an administrator and a viewer limited to group Alpha."""

    admin: httpx.Client
    alpha: httpx.Client
    org: Org


@pytest.fixture
def api(engine: Engine, live_server: str) -> Iterator[Api]:
    with transaction(engine) as session:
        org = build_org(session)
    admin = user_with_token(engine, "api-admin")
    viewer = user_with_token(engine, "alpha-viewer", rights=(Right.VIEW,), group_ids=[org.alpha.id])
    with (
        httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {admin}"}) as a,
        httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {viewer}"}) as v,
    ):
        yield Api(a, v, org)


def _ok(reply: httpx.Response) -> object:
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_device_list_pages_sorts_and_filters(api: Api) -> None:
    body = _ok(api.admin.get("/api/v1/devices", params={"limit": 2}))
    assert isinstance(body, dict)
    assert (body["total"], body["offset"], body["limit"]) == (4, 0, 2)
    assert [d["name"] for d in body["items"]] == ["a2", "a1"]  # most exposed first
    second = _ok(api.admin.get("/api/v1/devices", params={"limit": 2, "offset": 2}))
    assert [d["name"] for d in second["items"]] == ["b1", "b2"]  # type: ignore[index]
    by_name = _ok(api.admin.get("/api/v1/devices", params={"sort": "-name"}))
    assert [d["name"] for d in by_name["items"]] == ["b2", "b1", "a2", "a1"]  # type: ignore[index]
    high = _ok(api.admin.get("/api/v1/devices", params={"exposure_level": "High"}))
    assert [d["name"] for d in high["items"]] == ["a2"]  # type: ignore[index]
    beta = _ok(api.admin.get("/api/v1/devices", params={"device_group": api.org.beta.id}))
    assert beta["total"] == 2  # type: ignore[index]
    first = body["items"][0]
    assert first["device_group_name"] == "Alpha"
    assert first["exposure_level"] == "High"


def test_bad_parameters_answer_422_naming_them(api: Api) -> None:
    for params, name in (
        ({"sort": "password_hash"}, "sort"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"exposure_level": "Extreme"}, "exposure_level"),
        ({"device_group": 999_999}, "device_group"),
    ):
        reply = api.admin.get("/api/v1/devices", params=params)
        assert reply.status_code == 422, params
        assert name in str(reply.json()["detail"]), reply.text
    reply = api.admin.get("/api/v1/recommendations", params={"threats": "rumours"})
    assert reply.status_code == 422
    assert "threats" in reply.text


def test_unknown_ids_answer_404_with_a_message(api: Api) -> None:
    for path, words in (
        ("/api/v1/devices/987654", "device 987654 not found"),
        ("/api/v1/devices/987654/software", "device 987654 not found"),
        ("/api/v1/software/987654", "software 987654 not found"),
        ("/api/v1/vulnerabilities/CVE-1999-0000", "vulnerability CVE-1999-0000 not found"),
        ("/api/v1/recommendations/va-_-no-_-such", "recommendation va-_-no-_-such not found"),
        ("/api/v1/recommendations/va-_-no-_-such/devices", "not found"),
    ):
        reply = api.admin.get(path)
        assert reply.status_code == 404, path
        assert words in reply.json()["detail"]


def test_device_details(api: Api) -> None:
    a1 = api.org.a1.id
    device = _ok(api.admin.get(f"/api/v1/devices/{a1}"))
    assert device["name"] == "a1"  # type: ignore[index]
    assert device["weaknesses"] == 2  # type: ignore[index]
    software = _ok(api.admin.get(f"/api/v1/devices/{a1}/software"))
    assert [(s["name"], s["version"]) for s in software] == [("Chrome", "100.0")]  # type: ignore[union-attr,index]
    open_weaknesses = _ok(api.admin.get(f"/api/v1/devices/{a1}/weaknesses"))
    assert len(open_weaknesses) == 2  # type: ignore[arg-type]
    every = _ok(api.admin.get(f"/api/v1/devices/{a1}/weaknesses", params={"include_fixed": True}))
    assert len(every) == 3  # type: ignore[arg-type]
    recs = _ok(api.admin.get(f"/api/v1/devices/{a1}/recommendations"))
    assert [r["recommendation_id"] for r in recs] == [CHROME, SCID]  # type: ignore[union-attr,index]


def test_recommendations_endpoints(api: Api) -> None:
    page = _ok(api.admin.get("/api/v1/recommendations"))
    assert [r["id"] for r in page["items"]] == [CHROME, SCID, JAVA]  # type: ignore[index]
    chrome = page["items"][0]  # type: ignore[index]
    assert chrome["exposed_devices"] == 3
    assert chrome["exposure_impact"] == pytest.approx(19.37)
    assert chrome["related_component"] == "Chrome"
    exploit = _ok(api.admin.get("/api/v1/recommendations", params={"threats": "exploit"}))
    assert [r["id"] for r in exploit["items"]] == [JAVA]  # type: ignore[index]
    one = _ok(api.admin.get(f"/api/v1/recommendations/{SCID}"))
    assert one["config_score_impact"] == pytest.approx(42.86)  # type: ignore[index]
    devices = _ok(api.admin.get(f"/api/v1/recommendations/{CHROME}/devices", params={"limit": 1}))
    assert devices["total"] == 3  # type: ignore[index]
    assert [d["name"] for d in devices["items"]] == ["a2"]  # type: ignore[index]
    vulns = _ok(api.admin.get(f"/api/v1/recommendations/{CHROME}/vulnerabilities"))
    assert [(v["id"], v["exposed_devices"]) for v in vulns] == [  # type: ignore[union-attr,index]
        ("CVE-2026-0001", 3),
        ("CVE-2026-0002", 1),
    ]
    beta = _ok(
        api.admin.get(f"/api/v1/recommendations/{CHROME}", params={"device_group": api.org.beta.id})
    )
    assert beta["exposed_devices"] == 1  # type: ignore[index]


def test_vulnerability_and_software_endpoints(api: Api) -> None:
    vulns = _ok(api.admin.get("/api/v1/vulnerabilities", params={"kev": True}))
    assert [v["id"] for v in vulns["items"]] == ["CVE-2026-0001"]  # type: ignore[index]
    cve = _ok(api.admin.get("/api/v1/vulnerabilities/CVE-2026-0001"))
    assert cve["exposed_devices"] == 3  # type: ignore[index]
    assert cve["kev_listed"] is True  # type: ignore[index]
    devices = _ok(api.admin.get("/api/v1/vulnerabilities/CVE-2026-0001/devices"))
    assert [d["name"] for d in devices["items"]] == ["a1", "a2", "b1"]  # type: ignore[index]
    products = _ok(api.admin.get("/api/v1/vulnerabilities/CVE-2026-0001/software"))
    assert [p["name"] for p in products] == ["Chrome"]  # type: ignore[union-attr,index]
    software = _ok(api.admin.get("/api/v1/software", params={"sort": "-exposed_devices"}))
    assert [(s["name"], s["installed_devices"]) for s in software["items"]] == [  # type: ignore[index]
        ("Chrome", 4),
        ("Java", 1),
    ]
    versions = _ok(api.admin.get(f"/api/v1/software/{api.org.chrome_id}/versions"))
    assert [v["version"] for v in versions] == ["120.0", "101.0", "100.0"]  # type: ignore[union-attr,index]


def test_scores_and_history(api: Api) -> None:
    scores = _ok(api.admin.get("/api/v1/scores"))
    assert scores["exposure"]["score"] == pytest.approx(35.56)  # type: ignore[index]
    assert scores["secure"]["score"] == pytest.approx(57.14)  # type: ignore[index]
    assert [g["group_name"] for g in scores["by_group"]] == ["Alpha", "Beta"]  # type: ignore[index]
    assert scores["distribution"] == {"none": 1, "low": 1, "medium": 1, "high": 1}  # type: ignore[index]
    beta = _ok(api.admin.get("/api/v1/scores", params={"device_group": api.org.beta.id}))
    assert beta["exposure"]["score"] == pytest.approx(11.43)  # type: ignore[index]
    assert [g["group_name"] for g in beta["by_group"]] == ["Beta"]  # type: ignore[index]
    history = _ok(api.admin.get("/api/v1/scores/history", params={"days": 90}))
    assert len(history["points"]) == 3  # type: ignore[index]
    assert api.admin.get("/api/v1/scores/history", params={"days": 0}).status_code == 422


def test_a_viewer_of_one_group_sees_only_that_group(api: Api) -> None:
    org = api.org
    devices = _ok(api.alpha.get("/api/v1/devices"))
    assert {d["name"] for d in devices["items"]} == {"a1", "a2"}  # type: ignore[index]
    assert devices["total"] == 2  # type: ignore[index]
    assert api.alpha.get(f"/api/v1/devices/{org.b1.id}").status_code == 404
    assert api.alpha.get(f"/api/v1/devices/{org.b1.id}/weaknesses").status_code == 404
    groups = _ok(api.alpha.get("/api/v1/device-groups"))
    assert [g["name"] for g in groups] == ["Alpha"]  # type: ignore[union-attr,index]
    recs = _ok(api.alpha.get("/api/v1/recommendations"))
    assert [r["id"] for r in recs["items"]] == [CHROME, SCID]  # type: ignore[index]
    assert recs["items"][0]["exposed_devices"] == 2  # type: ignore[index]
    assert api.alpha.get(f"/api/v1/recommendations/{JAVA}").status_code == 404
    assert api.alpha.get(f"/api/v1/software/{org.java_id}").status_code == 404
    scores = _ok(api.alpha.get("/api/v1/scores"))
    assert scores["exposure"]["score"] == pytest.approx(63.33)  # type: ignore[index]
    assert scores["exposure"]["active_devices"] == 2  # type: ignore[index]
    # Asking for another group's figures is refused, as if the group did not exist.
    refused = api.alpha.get("/api/v1/scores", params={"device_group": org.beta.id})
    assert refused.status_code == 422
    cve3 = _ok(api.alpha.get("/api/v1/vulnerabilities/CVE-2026-0003"))
    assert cve3["exposed_devices"] == 0  # type: ignore[index]
    b1_devices = _ok(api.alpha.get("/api/v1/vulnerabilities/CVE-2026-0001/devices"))
    assert {d["name"] for d in b1_devices["items"]} == {"a1", "a2"}  # type: ignore[index]


def test_requests_without_credentials_are_refused(api: Api, live_server: str) -> None:
    assert httpx.get(f"{live_server}/api/v1/devices").status_code == 401


def test_openapi_documents_the_native_resources(api: Api, live_server: str) -> None:
    document = api.admin.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/devices",
        "/api/v1/devices/{device_id}/weaknesses",
        "/api/v1/device-groups",
        "/api/v1/software/{software_id}/versions",
        "/api/v1/vulnerabilities/{vulnerability_id}/devices",
        "/api/v1/recommendations/{recommendation_id}/vulnerabilities",
        "/api/v1/scores",
        "/api/v1/scores/history",
    ):
        assert "200" in paths[path]["get"]["responses"], path
    schemas = document["components"]["schemas"]
    page = next(
        s for name, s in schemas.items() if name.startswith("Page") and "Recommendation" in name
    )
    assert set(page["properties"]) == {"items", "total", "offset", "limit"}
    assert "exposure_impact" in schemas["RecommendationView"]["properties"]
