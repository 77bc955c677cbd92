"""An incremental recompute that touches most of the organisation takes the full rebuild's
shortcuts (a full rebuild, or rebuilding every group's sums); the result must not change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from remedium.recommendations import service
from remedium.recommendations.service import recompute
from tests.recommendations.test_incremental import _dump, _random_change
from tests.support.orgs.builder import NOW
from tests.support.orgs.random_org import build_random_org


def _regroup_choices(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The answers of ``_most_devices_grouped`` from now on, in order."""
    taken: list[bool] = []
    grouped = service._most_devices_grouped

    def spy(run: Any) -> bool:
        answer = grouped(run)
        taken.append(answer)
        return answer

    monkeypatch.setattr(service, "_most_devices_grouped", spy)
    return taken


@pytest.mark.parametrize("seed", [4, 5])
def test_wide_incremental_recompute_equals_full_rebuild(
    session: Session, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny organisation counts as large, so that the shortcuts are taken.
    monkeypatch.setattr(service, "_FULL_FROM_DEVICES", 1)
    taken = _regroup_choices(monkeypatch)
    org = build_random_org(session, seed=seed, devices=30)
    recompute(session, as_of=NOW)
    for _ in range(6):
        touched: set[int] = set()
        for _ in range(org.rng.randint(1, 3)):
            touched |= _random_change(session, org)
        recompute(session, device_ids=touched, as_of=NOW)
        incremental = _dump(session)
        recompute(session, as_of=NOW)
        full = _dump(session)
        for name in full:
            assert incremental[name] == full[name], name
    # Some incremental runs rebuilt every group's sums instead of the touched pairs.
    assert any(taken)


def test_a_small_organisation_whose_recommendations_are_mostly_touched_is_regrouped_whole(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under 1,000 devices, but the import touched every device and so every recommendation
    # (one image of 100,000 products, on its own): every group row is rebuilt set-based.
    taken = _regroup_choices(monkeypatch)
    org = build_random_org(session, seed=6, devices=20)
    recompute(session, as_of=NOW)
    for _ in range(8):
        _random_change(session, org)
    stats = recompute(session, device_ids={d.id for d in org.devices}, as_of=NOW)
    assert not stats.full
    assert taken == [True]
    incremental = _dump(session)
    recompute(session, as_of=NOW)
    full = _dump(session)
    for name in full:
        assert incremental[name] == full[name], name
    # One device of the twenty touches far fewer than half: the pairs are followed.
    _random_change(session, org)
    recompute(session, device_ids={org.devices[0].id}, as_of=NOW)
    assert taken[-1] is False
