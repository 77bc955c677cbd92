"""The scoped queries agree with what the recompute stores, on a random organisation.

The recompute writes organisation-wide figures on each recommendation; the queries compute the
same figures from the per-group rows for any scope. For the unrestricted scope both must match,
and the groups (which are disjoint) must add up to the organisation.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.auth.principal import UNRESTRICTED, Scope
from remedium.common.scoping import active_since
from remedium.inventory import queries as inventory
from remedium.inventory.models import Device
from remedium.recommendations import queries as recs
from remedium.recommendations.models import Recommendation
from remedium.recommendations.service import recompute
from remedium.scoring import engine
from remedium.scoring import queries as scores
from tests.support.orgs.builder import NOW
from tests.support.orgs.random_org import build_random_org


@pytest.fixture
def org_groups(session: Session) -> list[int]:
    org = build_random_org(session, seed=11, devices=40)
    recompute(session, as_of=NOW)
    return org.group_ids


def test_unrestricted_figures_equal_the_stored_organisation_figures(
    session: Session, org_groups: list[int]
) -> None:
    stored = {r.id: r for r in session.scalars(select(Recommendation))}
    page = recs.list_recommendations(session, UNRESTRICTED, limit=1000)
    assert page.total > 3
    assert {v.id for v in page.items} == {r.id for r in stored.values() if r.exposed_machines_count}
    for view in page.items:
        rec = stored[view.id]
        assert view.exposed_devices == rec.exposed_machines_count, view.id
        assert view.exposed_critical_devices == rec.exposed_critical_devices, view.id
        assert view.total_devices == rec.total_machine_count, view.id
        assert view.weaknesses == rec.weaknesses, view.id
        assert view.exposure_impact == pytest.approx(rec.exposure_impact, abs=0.006), view.id
        assert view.config_score_impact == pytest.approx(rec.config_score_impact, abs=0.006)


def test_groups_add_up_to_the_organisation(session: Session, org_groups: list[int]) -> None:
    everyone = {v.id: v for v in recs.list_recommendations(session, UNRESTRICTED, limit=1000).items}
    exposed_by_group: dict[str, int] = {}
    devices = 0
    for group_id in org_groups:
        scope = Scope(frozenset({group_id}))
        for view in recs.list_recommendations(session, scope, limit=1000).items:
            exposed_by_group[view.id] = exposed_by_group.get(view.id, 0) + view.exposed_devices
        devices += inventory.list_devices(session, scope).total
    assert exposed_by_group == {rec_id: v.exposed_devices for rec_id, v in everyone.items()}
    assert devices == inventory.list_devices(session, UNRESTRICTED).total


def test_exposure_score_is_the_weighted_average_of_active_devices(
    session: Session, org_groups: list[int]
) -> None:
    group = org_groups[0]
    cutoff = active_since(NOW)
    rows = session.execute(
        select(Device.device_value, Device.exposure_score).where(
            Device.device_group_id == group, Device.last_seen >= cutoff
        )
    ).all()
    expected = engine.sum_exposure((value, score) for value, score in rows).score()
    scoped = scores.exposure_score(session, Scope(frozenset({group})))
    assert scoped.score == pytest.approx(expected, abs=0.006)
    assert scoped.active_devices == len(rows)
