"""``/api/v1/scores``: exposure score and Secure Score for devices, now and as a trend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from remedium.api.deps import ScopeDep, SessionDep
from remedium.common.api import VIEW_RIGHT, DeviceGroupParam, narrowed_scope
from remedium.scoring import queries
from remedium.scoring.schemas import HistoryOut, ScoresOut

router = APIRouter(prefix="/api/v1", tags=["scores"], dependencies=[VIEW_RIGHT])


@router.get("/scores", response_model=ScoresOut)
def scores(
    session: SessionDep, scope: ScopeDep, device_group: DeviceGroupParam = None
) -> ScoresOut:
    """The scores of your scope (or of the ``device_group`` filter), overall and by group."""
    scoped = narrowed_scope(session, scope, device_group)
    return ScoresOut(
        exposure=queries.exposure_score(session, scoped),
        secure=queries.secure_score(session, scoped),
        distribution=queries.exposure_distribution(session, scoped),
        by_group=queries.exposure_by_group(session, scoped),
    )


@router.get("/scores/history", response_model=HistoryOut)
def score_history(
    session: SessionDep,
    scope: ScopeDep,
    device_group: DeviceGroupParam = None,
    days: Annotated[int, Query(ge=1, le=366, description="How many days back.")] = 30,
) -> HistoryOut:
    """Daily exposure score and Secure Score over the last ``days`` days."""
    scoped = narrowed_scope(session, scope, device_group)
    return HistoryOut(days=days, points=queries.score_history(session, scoped, days=days))
