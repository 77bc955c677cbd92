"""Device groups managed in remedium: rules (SQL agrees with Python), ranks, re-evaluation on
rule change and on import, recomputed figures, and what a change does to exceptions and
remediation activities (docs/device-groups.md). Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent
from remedium.auth.principal import Principal, Right
from remedium.exceptions import filing, lifecycle
from remedium.exceptions import service as exceptions
from remedium.importers.service import import_report
from remedium.inventory import group_admin, groups
from remedium.inventory.models import Device, DeviceGroup
from remedium.recommendations.service import recompute
from remedium.scoring.models import GroupScoreStat
from tests.support.orgs.builder import (
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)

ADMIN = Principal(user_id=None, name="ada", rights=frozenset({Right.ADMIN}))

NAMES = [
    ("web-01.corp.example.com", "Linux", ["DMZ", "pci"]),
    ("WEB-02.Corp.Example.com", "Linux", []),
    ("db-01.data.example.com", "Linux", ["PCI-scope"]),
    ("laptop_7", "Windows11", ["100%"]),
    ("laptop-8.corp.example.com", "Windows11", ["Finance"]),
    ("mac-1", "macOS", []),
]
RULE_SETS = [
    [{"field": "name", "operator": "startsWith", "value": "web-"}],
    [{"field": "name", "operator": "contains", "value": "_"}],
    [{"field": "name", "operator": "endsWith", "value": ".COM"}],
    [{"field": "name", "operator": "equals", "value": "mac-1"}],
    [{"field": "domain", "operator": "equals", "value": "corp.example.com"}],
    [{"field": "domain", "operator": "endsWith", "value": "example.com"}],
    [{"field": "os_platform", "operator": "equals", "value": "Linux"}],
    [{"field": "tag", "operator": "equals", "value": "PCI"}],
    [{"field": "tag", "operator": "startsWith", "value": "pci"}],
    [{"field": "tag", "operator": "contains", "value": "%"}],
    [{"field": "tag", "operator": "endsWith", "value": "scope"}],
    [
        {"field": "os_platform", "operator": "equals", "value": "Windows11"},
        {"field": "domain", "operator": "contains", "value": "corp"},
    ],
]


@pytest.fixture
def fleet(session: Session) -> dict[str, Device]:
    group = make_group(session, "Imported")
    devices = {}
    for name, platform, tags in NAMES:
        device = make_device(session, group, name, os_platform=platform)
        device.tags = tags
        devices[name] = device
    session.flush()
    return devices


@pytest.mark.parametrize("raw", RULE_SETS, ids=lambda r: "+".join(x["field"] for x in r))
def test_sql_rules_agree_with_python(
    session: Session, fleet: dict[str, Device], raw: list[dict[str, str]]
) -> None:
    rules = groups.parse_rules(raw)
    in_sql = set(
        session.scalars(select(Device.name).where(and_(*(groups.rule_condition(r) for r in rules))))
    )
    in_python = {
        name
        for name, platform, tags in NAMES
        if groups.matches(rules, name=name, os_platform=platform, tags=tags)
    }
    assert in_sql == in_python
    assert in_python  # each rule set matches something, so a broken condition shows


def test_bad_rules_are_refused() -> None:
    for raw in (
        [{"field": "owner", "value": "x"}],
        [{"field": "name", "operator": "like", "value": "x"}],
        [{"field": "name", "value": ""}],
        [{"field": "os_platform", "operator": "contains", "value": "Lin"}],
        [{"field": "os_platform", "value": "Plan9"}],
        [{"field": "tag", "value": "x"}] * (groups.MAX_RULES + 1),
    ):
        with pytest.raises(groups.GroupError):
            groups.parse_rules(raw)


def _group_of(session: Session, name: str) -> str:
    session.expire_all()
    device = session.scalars(select(Device).where(Device.name == name)).one()
    return session.get_one(DeviceGroup, device.device_group_id).name


def test_first_ranked_match_wins_and_devices_follow_changes(
    session: Session, fleet: dict[str, Device]
) -> None:
    linux = group_admin.create_group(
        session,
        actor=ADMIN,
        name="Linux servers",
        rules=[{"field": "os_platform", "value": "Linux"}],
    )
    assert linux.moved == 3
    pci = group_admin.create_group(
        session, actor=ADMIN, name="PCI", rules=[{"field": "tag", "value": "pci"}]
    )
    assert pci.group is not None
    assert pci.group.rank == 2
    # web-01 matches both; rank 1 (Linux servers) wins.
    assert _group_of(session, "web-01.corp.example.com") == "Linux servers"
    group_admin.update_group(session, pci.group, actor=ADMIN, rank=1)
    assert _group_of(session, "web-01.corp.example.com") == "PCI"
    assert _group_of(session, "db-01.data.example.com") == "Linux servers"
    # Devices nobody's rules take keep the group their import named.
    assert _group_of(session, "mac-1") == "Imported"
    # Without rules, Linux servers lets its devices go back where imports put them.
    assert linux.group is not None
    group_admin.update_group(session, linux.group, actor=ADMIN, rules=[])
    assert _group_of(session, "db-01.data.example.com") == "Imported"
    assert linux.group.rank is None
    assert pci.group.rank == 1
    # Deleting the rule group puts its devices back too.
    group_admin.delete_group(session, pci.group, actor=ADMIN)
    assert _group_of(session, "web-01.corp.example.com") == "Imported"
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "device_group")
    ).all()
    assert actions.count("device_group.create") == 2
    assert "device_group.delete" in actions


def test_names_are_unique_and_ungrouped_is_protected(session: Session) -> None:
    group_admin.create_group(session, actor=ADMIN, name="Servers")
    with pytest.raises(groups.GroupError) as clash:
        group_admin.create_group(session, actor=ADMIN, name="servers")
    assert clash.value.status == 409
    ungrouped = session.get_one(DeviceGroup, groups.ungrouped_id(session))
    with pytest.raises(groups.GroupError):
        group_admin.delete_group(session, ungrouped, actor=ADMIN)
    with pytest.raises(groups.GroupError):
        group_admin.update_group(
            session, ungrouped, actor=ADMIN, rules=[{"field": "tag", "value": "x"}]
        )
    with pytest.raises(groups.GroupError):
        group_admin.update_group(session, ungrouped, actor=ADMIN, name="Leftovers")


def test_moves_recompute_the_group_figures(session: Session) -> None:
    home = make_group(session, "Home")
    device = make_device(session, home, "ws-1.corp.example.com")
    chrome = make_software(session, "google", "chrome")
    cve = make_vulnerability(session, "CVE-2024-7001", cvss=9.8, severity="Critical")
    install(session, device, chrome, "1.0")
    add_weakness(session, device, chrome, cve)
    recompute(session)
    change = group_admin.create_group(
        session,
        actor=ADMIN,
        name="Corp",
        rules=[{"field": "domain", "value": "corp.example.com"}],
    )
    assert change.group is not None
    stats = {
        row.device_group_id: row.active_devices for row in session.scalars(select(GroupScoreStat))
    }
    assert stats.get(change.group.id) == 1
    assert stats.get(home.id, 0) == 0


def test_import_places_devices_by_the_rules(session: Session, tmp_path: Path) -> None:
    group_admin.create_group(
        session,
        actor=ADMIN,
        name="Corp",
        rules=[{"field": "domain", "operator": "equals", "value": "corp.example.com"}],
    )
    report = tmp_path / "findings.csv"
    report.write_text(
        "device,ip,os_platform,device_group,vendor,product,version,cve,fixed_version,severity\n"
        "web-01.corp.example.com,10.1.0.5,Linux,DMZ,openssl,openssl,3.0.11,,,\n"
        "db-01.data.example.com,10.1.0.9,Linux,Data,postgresql,postgresql,15.4,,,\n"
        "ws-9,10.1.0.10,Windows11,,mozilla,firefox,120.0,,,\n"
    )
    import_report(session, report, format="csv")
    assert _group_of(session, "web-01.corp.example.com") == "Corp"
    assert _group_of(session, "db-01.data.example.com") == "Data"
    assert _group_of(session, "ws-9") == groups.UNGROUPED
    web = session.scalars(select(Device).where(Device.name.startswith("web-01"))).one()
    # What the import said is kept: without the rule, web-01 goes back to DMZ.
    assert session.get_one(DeviceGroup, web.assigned_group_id or 0).name == "DMZ"


def _exposed_org(session: Session) -> tuple[DeviceGroup, Device]:
    alpha = make_group(session, "Alpha")
    device = make_device(session, alpha, "a-1")
    chrome = make_software(session, "google", "chrome")
    cve = make_vulnerability(session, "CVE-2024-7002", cvss=8.1, severity="High")
    install(session, device, chrome, "1.0")
    add_weakness(session, device, chrome, cve)
    recompute(session)
    return alpha, device


def test_a_group_with_an_exception_in_effect_is_not_deleted(session: Session) -> None:
    alpha, _ = _exposed_org(session)
    analyst = Principal(
        user_id=None, name="ana", rights=frozenset({Right.VIEW, Right.EXCEPTIONS, Right.ADMIN})
    )
    exc = filing.file_exception(
        session,
        analyst,
        justification="AcceptRisk",
        recommendation_id="va-_-google-_-chrome",
        device_group_ids=[alpha.id],
        duration_days=30,
    )
    with pytest.raises(groups.GroupError) as refused:
        group_admin.delete_group(session, alpha, actor=ADMIN)
    assert refused.value.status == 409
    assert f"#{exc.id}" in str(refused.value)
    # Renaming keeps the exception on the group (it follows the id, not the name).
    group_admin.update_group(session, alpha, actor=ADMIN, name="Alpha renamed")
    assert exceptions.covered_groups(session, "recommendation", "va-_-google-_-chrome") == {
        alpha.id
    }
    lifecycle.cancel_exception(session, analyst, exc.id)
    group_admin.delete_group(session, alpha, actor=ADMIN)
    assert session.get(DeviceGroup, alpha.id) is None
    assert _group_of(session, "a-1") == groups.UNGROUPED


def test_a_device_moved_into_a_group_gains_its_exception(session: Session) -> None:
    alpha, device = _exposed_org(session)
    beta = make_group(session, "Beta")
    analyst = Principal(user_id=None, name="ana", rights=frozenset({Right.VIEW, Right.EXCEPTIONS}))
    filing.file_exception(
        session,
        analyst,
        justification="AcceptRisk",
        recommendation_id="va-_-google-_-chrome",
        device_group_ids=[beta.id],
        duration_days=30,
    )
    covered = exceptions.covered_groups(session, "recommendation", "va-_-google-_-chrome")
    assert device.device_group_id not in covered
    group_admin.create_group(
        session, actor=ADMIN, name="Rule", rules=[{"field": "name", "value": "a-1"}]
    )
    rule_group = session.scalars(select(DeviceGroup).where(DeviceGroup.name == "Rule")).one()
    # The exception names Beta, not the device: moving the device to Rule does not cover it;
    # making Beta's rules take the device does.
    group_admin.delete_group(session, rule_group, actor=ADMIN)
    group_admin.update_group(
        session,
        beta,
        actor=ADMIN,
        rules=[{"field": "name", "operator": "startsWith", "value": "a-"}],
    )
    session.refresh(device)
    assert device.device_group_id == beta.id
    assert device.device_group_id in exceptions.covered_groups(
        session, "recommendation", "va-_-google-_-chrome"
    )
    assert alpha.id != beta.id
