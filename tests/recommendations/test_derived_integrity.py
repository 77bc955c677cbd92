"""The recompute's derived rows carry no foreign keys (recommendations/models.py): no row may
name a device, recommendation, vulnerability or device group that is not there, after any
change, incremental or full rebuild, orphaned recommendation or deleted group. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal, Right
from remedium.inventory import group_admin
from remedium.inventory.models import Device, DeviceGroup, Software, Weakness
from remedium.recommendations.models import (
    DeviceRecommendation,
    Recommendation,
    RecommendationGroupStat,
    RecommendationVulnerability,
)
from remedium.recommendations.service import forget_group, recompute
from tests.recommendations.test_incremental import _random_change
from tests.support.orgs.builder import (
    NOW,
    add_weakness,
    install,
    make_device,
    make_group,
    make_software,
    make_vulnerability,
)
from tests.support.orgs.random_org import build_random_org

ADMIN = Principal(user_id=None, name="ada", rights=frozenset({Right.ADMIN}))

# (table, column, the table it names): every reference a foreign key used to check.
_REFERENCES = (
    ("device_recommendation", "device_id", "device"),
    ("device_recommendation", "recommendation_id", "recommendation"),
    ("recommendation_group_stat", "recommendation_id", "recommendation"),
    ("recommendation_group_stat", "device_group_id", "device_group"),
    ("recommendation_vulnerability", "recommendation_id", "recommendation"),
    ("recommendation_vulnerability", "vulnerability_id", "vulnerability"),
    ("recommendation_vulnerability", "device_group_id", "device_group"),
)


def _dangling(session: Session) -> dict[str, int]:
    """How many rows of each derived table name a row that is not there, by reference."""
    session.flush()
    found: dict[str, int] = {}
    for table, column, named in _REFERENCES:
        count = session.scalar(
            text(
                f"SELECT count(*) FROM {table} x WHERE NOT EXISTS "
                f"(SELECT 1 FROM {named} n WHERE n.id = x.{column})"
            )
        )
        if count:
            found[f"{table}.{column}"] = int(count or 0)
    return found


def _count(session: Session, model: type, **where: object) -> int:
    query = select(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return len(session.execute(query).all())


def test_no_row_names_a_missing_one_through_changes_and_rebuilds(session: Session) -> None:
    org = build_random_org(session, seed=11, devices=30)
    recompute(session, as_of=NOW)
    assert _count(session, RecommendationVulnerability) > 0
    assert _dangling(session) == {}
    for round_ in range(8):
        touched: set[int] = set()
        for _ in range(org.rng.randint(1, 4)):
            touched |= _random_change(session, org)
        recompute(session, device_ids=touched, as_of=NOW)
        assert _dangling(session) == {}, round_
    recompute(session, as_of=NOW)
    assert _dangling(session) == {}


def _two_groups(session: Session) -> tuple[DeviceGroup, Device, Recommendation]:
    """Group A: a1 exposed to a product's vulnerability (and to a third product's, alone).
    Group B: b1 with the product installed and no weakness (B's row of the recommendation counts
    b1 as installed only), and b2 exposed to another product."""
    a, b = make_group(session, "A"), make_group(session, "B")
    a1, b1, b2 = (
        make_device(session, a, "a1"),
        make_device(session, b, "b1"),
        make_device(session, b, "b2"),
    )
    tool, other = make_software(session, "acme", "tool"), make_software(session, "acme", "other")
    for device in (a1, b1):
        install(session, device, tool, "1.0")
    install(session, b2, other, "1.0")
    add_weakness(session, a1, tool, make_vulnerability(session, "CVE-2026-0101"))
    add_weakness(session, b2, other, make_vulnerability(session, "CVE-2026-0102"))
    solo = make_software(session, "acme", "solo")  # on a1 alone
    install(session, a1, solo, "1.0")
    add_weakness(session, a1, solo, make_vulnerability(session, "CVE-2026-0103"))
    recompute(session, as_of=NOW)
    rec = session.scalars(select(Recommendation).where(Recommendation.software_id == tool.id)).one()
    return b, a1, rec


def test_a_recommendation_no_device_needs_goes_with_its_rows(session: Session) -> None:
    _, a1, rec = _two_groups(session)
    rec_id = rec.id
    assert _count(session, RecommendationGroupStat, recommendation_id=rec_id) == 2
    assert _count(session, RecommendationVulnerability, recommendation_id=rec_id) == 1
    # a1's weakness fixed: no device is exposed any more, the recommendation is deleted by the
    # incremental recompute of a1 alone, with B's row (its pair was not touched) and the rest.
    session.execute(delete(Weakness).where(Weakness.device_id == a1.id))
    recompute(session, device_ids=[a1.id], as_of=NOW)
    session.expire_all()
    assert session.get(Recommendation, rec_id) is None
    assert _count(session, RecommendationGroupStat, recommendation_id=rec_id) == 0
    assert _count(session, RecommendationVulnerability, recommendation_id=rec_id) == 0
    assert _dangling(session) == {}


def test_a_deleted_group_leaves_no_rows(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    b, _, _ = _two_groups(session)
    assert _count(session, RecommendationGroupStat, device_group_id=b.id) == 2
    assert _count(session, RecommendationVulnerability, device_group_id=b.id) == 1
    # A row of B for a recommendation no device of B has (the third product's), as a failed
    # earlier run might have left. In an organisation this small the recompute of B's devices
    # rebuilds every group row, so the row is put back after it: the group's deletion must take
    # it whatever the recompute left.
    solo_id, vulnerability_id = session.execute(
        select(
            RecommendationVulnerability.recommendation_id,
            RecommendationVulnerability.vulnerability_id,
        )
        .join(Recommendation, Recommendation.id == RecommendationVulnerability.recommendation_id)
        .join(Software, Software.id == Recommendation.software_id)
        .where(Software.product == "solo")
    ).one()
    real_recompute = group_admin.recompute

    def recompute_leaving_a_row(*args: Any, **kwargs: Any) -> Any:
        stats = real_recompute(*args, **kwargs)
        session.execute(
            insert(RecommendationVulnerability).values(
                recommendation_id=solo_id,
                vulnerability_id=vulnerability_id,
                device_group_id=b.id,
                exposed_devices=1,
                unpatchable_devices=0,
            )
        )
        return stats

    monkeypatch.setattr(group_admin, "recompute", recompute_leaving_a_row)
    group_admin.delete_group(session, b, actor=ADMIN)
    assert _count(session, RecommendationGroupStat, device_group_id=b.id) == 0
    assert _count(session, RecommendationVulnerability, device_group_id=b.id) == 0
    assert _dangling(session) == {}


def test_a_full_rebuild_drops_the_rows_of_a_device_deleted_outside_remedium(
    session: Session,
) -> None:
    # remedium never deletes a device; one deleted in the database by hand leaves its rows
    # until the next full rebuild (docs/scoring.md), which drops them.
    org = build_random_org(session, seed=14, devices=15)
    recompute(session, as_of=NOW)
    device = next(
        d for d in org.devices if _count(session, DeviceRecommendation, device_id=d.id) > 0
    )
    device_id = device.id
    session.execute(delete(Device).where(Device.id == device_id))
    assert _dangling(session) == {
        "device_recommendation.device_id": _count(
            session, DeviceRecommendation, device_id=device_id
        )
    }
    recompute(session, as_of=NOW)
    assert _count(session, DeviceRecommendation, device_id=device_id) == 0
    assert _dangling(session) == {}


def test_forgetting_a_group_deletes_its_rows_and_no_others(session: Session) -> None:
    # What delete_group relies on whatever the recompute before it left (in an organisation
    # this small, that recompute rebuilds every group row anyway).
    b, _, _ = _two_groups(session)
    before = {
        model: _count(session, model)
        for model in (RecommendationGroupStat, RecommendationVulnerability)
    }
    forget_group(session, b.id)
    assert _count(session, RecommendationGroupStat, device_group_id=b.id) == 0
    assert _count(session, RecommendationVulnerability, device_group_id=b.id) == 0
    assert _count(session, RecommendationGroupStat) == before[RecommendationGroupStat] - 2
    assert _count(session, RecommendationVulnerability) == before[RecommendationVulnerability] - 1
