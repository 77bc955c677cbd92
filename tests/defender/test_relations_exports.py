"""The related-entity endpoints, the export assessment APIs and their files, errors and the
rate limit of the Defender-compatible API, over HTTP on both databases."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent
from remedium.auth.models import User
from remedium.auth.principal import Right
from remedium.auth.service import secret_key
from remedium.db.base import utcnow
from remedium.db.session import transaction
from remedium.defender.exports import _signature
from remedium.inventory.models import Device, Weakness
from tests.support.orgs.defender import Organisation


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.scenario("defender")
def test_machine_relations_are_the_machines_own(org: Organisation, api: httpx.Client) -> None:
    ws1 = org.devices["ws-01"].machine_id
    vulns = api.get(f"/api/machines/{ws1}/vulnerabilities").json()["value"]
    assert sorted(v["id"] for v in vulns) == ["CVE-2024-0001", "CVE-2024-0002"]
    # exposedMachines counts the scope, not the machine: CVE-A is on ws-01 and srv-01.
    assert {v["id"]: v["exposedMachines"] for v in vulns}["CVE-2024-0001"] == 2
    software = api.get(f"/api/machines/{ws1}/software").json()["value"]
    assert [s["id"] for s in software] == ["google-_-chrome"]
    ws2 = org.devices["ws-02"].machine_id
    names = sorted(s["id"] for s in api.get(f"/api/machines/{ws2}/software").json()["value"])
    assert names == ["google-_-chrome", "mozilla-_-firefox"]
    recs = api.get(f"/api/machines/{ws1}/recommendations").json()["value"]
    assert sorted(r["id"] for r in recs) == ["sca-_-scid-1", "va-_-google-_-chrome"]
    srv2 = org.devices["srv-02"].machine_id
    assert api.get(f"/api/machines/{srv2}/vulnerabilities").json()["value"] == []
    filtered = api.get(
        f"/api/machines/{ws1}/vulnerabilities", params={"$filter": "severity eq 'Critical'"}
    ).json()["value"]
    assert [v["id"] for v in filtered] == ["CVE-2024-0001"]


@pytest.mark.scenario("defender")
def test_relations_stay_in_the_callers_groups(
    org: Organisation, live_server: str, token_for: Callable[..., str]
) -> None:
    with _client(live_server, token_for(org.groups["GroupTwo"])) as client:
        reply = client.get(f"/api/machines/{org.devices['ws-01'].machine_id}/vulnerabilities")
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "ResourceNotFound"
        refs = client.get("/api/vulnerabilities/CVE-2024-0001/machineReferences").json()
        assert [r["computerDnsName"] for r in refs["value"]] == ["srv-01"]
        pairs = client.get("/api/vulnerabilities/machinesVulnerabilities").json()["value"]
        assert {p["machineId"] for p in pairs} == {org.devices["srv-01"].machine_id}
        # Firefox is only installed in GroupOne.
        assert client.get("/api/Software/mozilla-_-firefox/distributions").status_code == 404
        dist = client.get("/api/Software/google-_-chrome/distributions").json()["value"]
        assert dist == [{"version": "1.0", "installations": 2, "vulnerabilities": 1}]


@pytest.mark.scenario("defender")
def test_find_by_tag_and_ip(org: Organisation, api: httpx.Client) -> None:
    def names(path: str, **params: str) -> list[str]:
        reply = api.get(path, params=params)
        assert reply.status_code == 200, reply.text
        return sorted(m["computerDnsName"] for m in reply.json()["value"])

    assert names("/api/machines/findbytag", tag="finance") == ["ws-01"]
    assert names("/api/machines/findbytag", tag="Fin") == []
    assert names("/api/machines/findbytag", tag="Fin", useStartsWithFilter="true") == ["ws-01"]
    assert names("/api/machines/findbytag", tag="internetFacing") == ["ws-01"]
    assert names("/api/machines/findbyip(ip='10.0.0.11',timestamp=2024-09-22T08:44:05Z)") == [
        "ws-01"
    ]
    assert names("/api/machines/findbyip(ip='10.0.0.99',timestamp=2024-09-22T08:44:05Z)") == []
    bad = api.get("/api/machines/findbyip(ip='not-an-ip',timestamp=2024-09-22T08:44:05Z)")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BadRequest"
    missing = api.get("/api/machines/findbytag")
    assert missing.status_code == 400
    assert set(missing.json()["error"]) == {"code", "message", "target"}


@pytest.mark.scenario("defender")
def test_software_and_vulnerability_relations(org: Organisation, api: httpx.Client) -> None:
    refs = api.get("/api/Software/google-_-chrome/machineReferences").json()["value"]
    assert sorted(r["computerDnsName"] for r in refs) == ["srv-01", "srv-02", "ws-01", "ws-02"]
    vulns = api.get("/api/Software/mozilla-_-firefox/vulnerabilities").json()["value"]
    assert [v["id"] for v in vulns] == ["CVE-2024-0003"]
    assert api.get("/api/Software/google-_-chrome/getmissingkbs").json()["value"] == []
    dist = api.get("/api/Software/google-_-chrome/distributions").json()["value"]
    assert dist == [{"version": "1.0", "installations": 4, "vulnerabilities": 2}]
    refs = api.get("/api/vulnerabilities/CVE-2024-0002/machineReferences").json()["value"]
    assert sorted(r["computerDnsName"] for r in refs) == ["ws-01", "ws-02"]
    pairs = api.get("/api/vulnerabilities/machinesVulnerabilities").json()["value"]
    assert len(pairs) == 5
    assert {p["id"].split("-_-")[1] for p in pairs} == {
        "CVE-2024-0001",
        "CVE-2024-0002",
        "CVE-2024-0003",
    }
    assert api.get("/api/vulnerabilities/CVE-1999-0001/machineReferences").status_code == 404


def _all_pages(api: httpx.Client, url: str) -> tuple[list[dict[str, object]], int]:
    rows: list[dict[str, object]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        reply = api.get(next_url)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        rows.extend(body["value"])
        next_url = body.get("@odata.nextLink")
        pages += 1
    return rows, pages


@pytest.mark.scenario("defender")
def test_export_pages_follow_next_links(org: Organisation, api: httpx.Client) -> None:
    rows, pages = _all_pages(api, "/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=2")
    assert (len(rows), pages) == (5, 3)
    assert len({r["id"] for r in rows}) == 5
    page_two = api.get(
        "/api/machines/SoftwareVulnerabilitiesByMachine", params={"pageSize": 2, "pageIndex": 2}
    ).json()
    assert [r["id"] for r in page_two["value"]] == [r["id"] for r in rows[2:4]]
    top = api.get("/api/machines/SoftwareVulnerabilitiesByMachine", params={"$top": 2}).json()
    assert len(top["value"]) == 2
    assert "@odata.nextLink" not in top
    inventory, _ = _all_pages(api, "/api/machines/SoftwareInventoryByMachine?pageSize=3")
    assert len(inventory) == 5  # four Chromes and one Firefox
    ws1 = next(r for r in inventory if r["deviceName"] == "ws-01")
    assert ws1["numberOfWeaknesses"] == 2
    configs, _ = _all_pages(api, "/api/machines/SecureConfigurationsAssessmentByMachine")
    assert sorted((c["deviceName"], c["isCompliant"]) for c in configs) == [
        ("ws-01", False),
        ("ws-02", True),
    ]
    for bad in ({"pageSize": 0}, {"pageSize": 200_001}, {"pageIndex": "x"}, {"$top": -1}):
        reply = api.get("/api/machines/SoftwareInventoryByMachine", params=bad)
        assert reply.status_code == 400, bad
        assert reply.json()["error"]["code"] == "BadRequest"


@pytest.mark.scenario("defender")
def test_vulnerability_changes_since(org: Organisation, api: httpx.Client, engine: Engine) -> None:
    assert api.get("/api/machines/SoftwareVulnerabilityChangesByMachine").status_code == 400
    before = utcnow()
    time.sleep(0.01)
    with transaction(engine) as session:
        session.execute(
            update(Weakness)
            .where(Weakness.device_id == org.devices["ws-02"].id)
            .where(Weakness.vulnerability_id == "CVE-2024-0003")
            .values(fixed_at=utcnow())
        )
    since = before.isoformat().replace("+00:00", "Z")
    changes = api.get(
        "/api/machines/SoftwareVulnerabilityChangesByMachine", params={"sinceTime": since}
    ).json()["value"]
    assert [(c["cveId"], c["status"], c["deviceName"]) for c in changes] == [
        ("CVE-2024-0003", "Fixed", "ws-02")
    ]
    everything = api.get(
        "/api/machines/SoftwareVulnerabilityChangesByMachine",
        params={"sinceTime": "2000-01-01T00:00:00Z"},
    ).json()["value"]
    assert {c["status"] for c in everything} == {"New", "Fixed"}
    assert len(everything) == 5


def _download(url: str) -> list[dict[str, object]]:
    reply = httpx.get(url, timeout=30)  # no token: the link is its own credential
    assert reply.status_code == 200, reply.text
    return [json.loads(line) for line in gzip.decompress(reply.content).splitlines() if line]


@pytest.mark.scenario("defender")
def test_export_files_are_signed_scoped_gzip_json_lines(
    org: Organisation, live_server: str, token_for: Callable[..., str], engine: Engine
) -> None:
    with _client(live_server, token_for()) as client:
        body = client.get("/api/machines/SoftwareVulnerabilitiesExport").json()
        rows = [row for url in body["exportFiles"] for row in _download(url)]
        paged = client.get("/api/machines/SoftwareVulnerabilitiesByMachine").json()["value"]
        assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in paged)
        assert body["generatedTime"].endswith("Z")
        inventory = client.get("/api/machines/SoftwareInventoryExport").json()["exportFiles"]
        assert len([row for url in inventory for row in _download(url)]) == 5
        configs = client.get("/api/machines/SecureConfigurationsAssessmentExport").json()
        assert len([r for url in configs["exportFiles"] for r in _download(url)]) == 2
        too_long = client.get("/api/machines/SoftwareInventoryExport?sasValidHours=7")
        assert too_long.status_code == 400
    with _client(live_server, token_for(org.groups["GroupTwo"])) as client:
        scoped = client.get("/api/machines/SoftwareVulnerabilitiesExport").json()["exportFiles"]
    scoped_rows = [row for url in scoped for row in _download(url)]
    assert {r["deviceName"] for r in scoped_rows} == {"srv-01"}
    # A changed range, a changed user or a wrong signature is refused.
    url = scoped[0]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for changed in ({"lo": "0", "hi": "999999999"}, {"u": "1"}, {"sig": "0" * 64}):
        forged = f"{parts.scheme}://{parts.netloc}{parts.path}?" + "&".join(
            f"{k}={v}" for k, v in (query | changed).items()
        )
        assert httpx.get(forged, timeout=30).status_code == 403, changed
    # An expired link, even genuinely signed, is refused.
    with Session(engine) as session:
        key = secret_key(session)
    expired = int(time.time()) - 10
    low, high, user, part = int(query["lo"]), int(query["hi"]), int(query["u"]), 0
    signature = _signature(
        key, "SoftwareVulnerabilities", part=part, low=low, high=high, user=user, expires=expired
    )
    stale = f"{parts.scheme}://{parts.netloc}{parts.path}?lo={low}&hi={high}&u={user}"
    assert httpx.get(f"{stale}&se={expired}&sig={signature}", timeout=30).status_code == 403
    # A user deactivated since cannot use the links they were given.
    with transaction(engine) as session:
        session.execute(update(User).where(User.id == user).values(active=False))
    assert httpx.get(url, timeout=30).status_code == 403


@pytest.mark.scenario("defender")
def test_errors_use_microsofts_body(
    org: Organisation, live_server: str, token_for: Callable[..., str]
) -> None:
    anonymous = httpx.get(f"{live_server}/api/machines", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "Unauthorized"
    machine = org.devices["ws-01"].machine_id
    with _client(live_server, token_for()) as viewer:
        denied = viewer.post(f"/api/machines/{machine}/setDeviceValue", json={"DeviceValue": "Low"})
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "Forbidden"
        bad = viewer.get("/api/machines", params={"$filter": "nosuchfield eq 1"})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "BadRequest"
        missing = viewer.get("/api/Software/nobody-_-nothing/distributions")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ResourceNotFound"


@pytest.mark.scenario("defender")
def test_rate_limit_answers_429_across_servers(
    org: Organisation, start_server: Callable[..., str], token_for: Callable[..., str]
) -> None:
    first, second = start_server(rate_limit=3), start_server(rate_limit=3)
    token, other = token_for(), token_for()
    with _client(first, token) as one, _client(second, token) as two:
        assert one.get("/api/exposureScore").status_code == 200
        assert two.get("/api/exposureScore").status_code == 200
        assert one.get("/api/exposureScore").status_code == 200
        # The fourth call of the minute, on either server, is refused.
        limited = two.get("/api/exposureScore")
        if limited.status_code == 200:  # the minute turned between the calls: count again
            for _ in range(3):
                limited = one.get("/api/exposureScore")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "TooManyRequests"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
    with _client(first, other) as fresh:
        assert fresh.get("/api/exposureScore").status_code == 200


@pytest.mark.scenario("defender")
def test_set_device_value_and_tags(
    org: Organisation, live_server: str, token_for: Callable[..., str], engine: Engine
) -> None:
    srv1 = org.devices["srv-01"]
    token = token_for(rights=frozenset({Right.VIEW, Right.INVENTORY}))
    with _client(live_server, token) as client:
        before = client.get("/api/exposureScore").json()["score"]
        reply = client.post(
            f"/api/machines/{srv1.machine_id}/setDeviceValue", json={"DeviceValue": "High"}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["deviceValue"] == "High"
        # A High-value exposed device weighs more: the organisation's score moves at once.
        assert client.get("/api/exposureScore").json()["score"] != before
        bad = client.post(
            f"/api/machines/{srv1.machine_id}/setDeviceValue", json={"DeviceValue": "Huge"}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "InvalidRequestBody"
        added = client.post(
            f"/api/machines/{srv1.machine_id}/tags", json={"Value": "PCI", "Action": "Add"}
        )
        assert added.json()["machineTags"] == ["PCI"]
        found = client.get("/api/machines/findbytag", params={"tag": "pci"}).json()["value"]
        assert [m["computerDnsName"] for m in found] == ["srv-01"]
        removed = client.post(
            f"/api/machines/{srv1.machine_id}/tags", json={"Value": "PCI", "Action": "Remove"}
        )
        assert removed.json()["machineTags"] == []
        wrong = client.post(
            f"/api/machines/{srv1.machine_id}/tags", json={"Value": "PCI", "Action": "Toggle"}
        )
        assert wrong.status_code == 400
    with Session(engine) as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_id == str(srv1.id))
            .order_by(AuditEvent.id)
        ).all()
        assert actions == ["device.set_value", "device.tag_add", "device.tag_remove"]
        device = session.get(Device, srv1.id)
        assert device is not None
        assert device.device_value == "High"
