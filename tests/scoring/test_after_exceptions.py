"""After-exceptions scores: incremental == full with exceptions, history, the preview function,
and the ``exception.expiring`` webhook announcement."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.auth.principal import Principal, Right, Scope
from remedium.connectors.models import ConnectorConfig
from remedium.connectors.registry import build_connector
from remedium.exceptions import filing, lifecycle, service
from remedium.exceptions.models import ExceptionNotification
from remedium.exceptions.notify import deliver_notifications
from remedium.inventory.models import Device, Weakness
from remedium.recommendations.coverage import effective_coverage
from remedium.recommendations.models import DeviceRecommendation
from remedium.recommendations.service import recompute
from remedium.scoring import engine as formulas
from remedium.scoring.queries import score_history
from remedium.scoring.service import PreviewDevice, preview_after_exceptions, snapshot_scores
from tests.recommendations.test_incremental import _dump, _random_change
from tests.support.fake_ticketing import FakeWebhook
from tests.support.orgs.builder import NOW
from tests.support.orgs.exceptions import ADMIN
from tests.support.orgs.random_org import build_random_org
from tests.support.orgs.worked_example import CHROME, build_example

ALL = Scope()
# Global exceptions need an administrator; this one may also file group exceptions anywhere.
BOTH = Principal(user_id=9, name="bo", rights=frozenset({Right.ADMIN, Right.EXCEPTIONS}))


def _device_after(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    return sorted(
        (d.id, round(d.exposure_points_after, 6), round(d.exposure_score_after, 6),
         round(d.secure_passed_weight_after, 6))
        for d in session.scalars(select(Device))
    )  # fmt: skip


def _random_exception(session: Session, rng: Any, groups: list[int]) -> None:
    """File or cancel one exception on a random recommendation or CVE (hooks recompute)."""
    active = [
        e
        for e in service.list_exceptions(session, ALL, limit=100)[0]
        if e.status in ("InEffect", "Suspended")
    ]
    if active and rng.random() < 0.3:
        lifecycle.cancel_exception(session, BOTH, rng.choice(active).id, as_of=NOW)
        return
    impact = rng.choice(["NoImpact", "MitigationLike", "Hybrid"])
    if rng.random() < 0.5:
        ids = sorted(set(session.scalars(select(DeviceRecommendation.recommendation_id))))
        target: dict[str, Any] = {"recommendation_id": rng.choice(ids)}
    else:
        cves = sorted(set(session.scalars(select(Weakness.vulnerability_id))))
        target = {"vulnerability_id": rng.choice(cves)}
    is_global = rng.random() < 0.3
    # A target may already have an exception there: then nothing is filed.
    with contextlib.suppress(service.ExceptionConflict):
        filing.file_exception(
            session,
            BOTH,
            justification="CompensatingControl",
            impact=impact,
            is_global=is_global,
            device_group_ids=[] if is_global else rng.sample(groups, k=min(2, len(groups))),
            duration_days=30,
            as_of=NOW,
            **target,
        )


@pytest.mark.parametrize("seed", [4, 5])
def test_incremental_equals_full_with_exceptions(session: Session, seed: int) -> None:
    org = build_random_org(session, seed=seed, devices=30)
    recompute(session, as_of=NOW)
    for _ in range(6):
        _random_exception(session, org.rng, org.group_ids)
        touched: set[int] = set()
        for _ in range(org.rng.randint(1, 2)):
            touched |= _random_change(session, org)
        recompute(session, device_ids=touched, as_of=NOW)
        incremental, devices = _dump(session), _device_after(session)
        recompute(session, as_of=NOW)
        full = _dump(session)
        for name in full:
            assert incremental[name] == full[name], name
        assert devices == _device_after(session)
    # The random exceptions did change something (not a vacuous property).
    assert effective_coverage(session, NOW)


def test_history_keeps_both_figures(session: Session) -> None:
    build_example(session)
    recompute(session, as_of=NOW)
    filing.file_exception(
        session,
        ADMIN,
        recommendation_id=CHROME,
        justification="CompensatingControl",
        is_global=True,
        duration_days=30,
        as_of=NOW,
    )
    snapshot_scores(session, NOW.date())
    (point,) = score_history(session, ALL, today=NOW.date())
    assert point.exposure_score == pytest.approx(15.06, abs=0.01)
    assert point.exposure_score_after_exceptions == pytest.approx(1.48, abs=0.01)
    assert point.secure_score == point.secure_score_after_exceptions == 60.0


def test_preview_is_the_formula_over_the_covered_devices() -> None:
    # Two Normal devices of 30 points each: score f(30) each; covering 30 points on one.
    f = formulas.exposure_score
    sums = formulas.sum_exposure([("Normal", f(30.0)), ("Normal", f(30.0))])
    exposure, secure = preview_after_exceptions(
        sums, 10.0, 20.0, [PreviewDevice("Normal", 30.0, 30.0, config_weight=5.0)]
    )
    assert exposure == pytest.approx(f(30.0) / 2)
    assert secure == pytest.approx(75.0)
    # A High-value device weighs N/10.
    sums = formulas.sum_exposure([("Normal", f(30.0)), ("High", f(60.0))])
    exposure, _ = preview_after_exceptions(sums, 0.0, 0.0, [PreviewDevice("High", 60.0, 60.0)])
    assert exposure == pytest.approx(f(30.0) / 1.2)


@pytest.fixture
def fake_webhook() -> Iterator[FakeWebhook]:
    fake = FakeWebhook().start()
    yield fake
    fake.stop()


def _expiring_world(engine: Engine, fake: FakeWebhook | None) -> int:
    with Session(engine) as session:
        build_example(session)
        recompute(session, as_of=NOW)
        if fake is not None:
            session.add(
                ConnectorConfig(
                    name="hooks",
                    kind="webhook",
                    enabled=True,
                    config={"url": fake.hook_url, "secret": fake.secret},
                )
            )
        exc = filing.file_exception(
            session,
            ADMIN,
            recommendation_id=CHROME,
            justification="AcceptRisk",
            is_global=True,
            duration_days=30,
            as_of=NOW,
        )
        session.commit()
        return exc.id


def test_expiring_exceptions_are_announced_once_through_the_webhook(
    engine: Engine, fake_webhook: FakeWebhook
) -> None:
    exc_id = _expiring_world(engine, fake_webhook)
    soon = NOW + timedelta(days=25)
    with Session(engine) as session:
        assert lifecycle.run_exception_jobs(session, soon).expiring_soon == [exc_id]
        # A second run flags nothing new and queues nothing more.
        assert lifecycle.run_exception_jobs(session, soon + timedelta(hours=1)).expiring_soon == []
        session.commit()
    with httpx.Client() as client:

        def resolve(_session: Session, name: str) -> Any:
            row = _session.get(ConnectorConfig, name)
            assert row is not None
            return build_connector(row.kind, row.config, client)

        stats = deliver_notifications(engine, resolve, now=soon)
        assert stats.delivered == 1
        assert deliver_notifications(engine, resolve, now=soon).delivered == 0
    (delivery,) = fake_webhook.requests
    payload = json.loads(delivery.body)
    assert payload["event"] == "exception.expiring"
    assert payload["schema"] == "remedium.exception.v1"
    assert payload["exception"]["id"] == exc_id
    assert payload["exception"]["recommendation_id"] == CHROME
    assert payload["exception"]["expires_on"].startswith("2026-12-20")
    assert delivery.headers["Idempotency-Key"] == payload["idempotency_key"]
    with Session(engine) as session:
        (row,) = session.scalars(select(ExceptionNotification))
        assert row.state == "delivered"


def test_nothing_is_queued_without_an_enabled_webhook(engine: Engine) -> None:
    _expiring_world(engine, None)
    with Session(engine) as session:
        assert lifecycle.run_exception_jobs(session, NOW + timedelta(days=25)).expiring_soon
        session.flush()
        assert session.scalars(select(ExceptionNotification)).first() is None
