"""The dashboard page, the 404 page, and the wiring of every feature's pages into the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from remedium.api.deps import SessionDep
from remedium.auth.principal import Scope
from remedium.common.cache import DASHBOARD, GenerationCache
from remedium.db.base import utcnow
from remedium.exceptions.api import exception_views
from remedium.exceptions.service import expiring_soon
from remedium.intel.pages import router as vulnerability_pages
from remedium.inventory.pages import router as inventory_pages
from remedium.inventory.queries import top_exposed_devices
from remedium.inventory.software_queries import top_vulnerable_software
from remedium.recommendations.pages import router as recommendation_pages
from remedium.recommendations.queries import top_recommendations
from remedium.remediation import pages as remediation_pages
from remedium.scoring.queries import (
    exposure_by_group,
    exposure_distribution,
    exposure_score,
    score_history,
    secure_score,
)
from remedium.web.charts import donut, trend_chart
from remedium.web.templating import STATIC_DIR, PageDep, render_error

router = APIRouter(include_in_schema=False)


# The scores, their history and the top lists: the same for everyone with the same scope until
# the next recompute or snapshot (common/cache.py).
DASHBOARD_CACHE = GenerationCache(DASHBOARD)


@dataclass(frozen=True, slots=True)
class DashboardFigures:
    """What the dashboard shows that only the recompute and the snapshot change."""

    exposure: Any
    secure: Any
    distribution: Any
    history: list[Any]
    top_recommendations: list[Any]
    top_software: list[Any]
    top_devices: list[Any]
    groups_exposure: list[Any]


def dashboard_figures(session: Session, scope: Scope) -> DashboardFigures:
    """The cached figures of ``scope`` (computed on a miss)."""

    def compute() -> DashboardFigures:
        return DashboardFigures(
            exposure=exposure_score(session, scope),
            secure=secure_score(session, scope),
            distribution=exposure_distribution(session, scope),
            history=score_history(session, scope, days=30),
            top_recommendations=top_recommendations(session, scope, 5),
            top_software=top_vulnerable_software(session, scope, 5),
            top_devices=top_exposed_devices(session, scope, 5),
            groups_exposure=exposure_by_group(session, scope),
        )

    # The day is part of the key: the 30-day history moves at midnight.
    key = (scope.device_group_ids, utcnow().date())
    return DASHBOARD_CACHE.get(session, key, compute)


@router.get("/", response_class=HTMLResponse)
def dashboard(page: PageDep, session: SessionDep) -> HTMLResponse:
    """The dashboard: scores, their trend, the distribution and the top lists."""
    figures = dashboard_figures(session, page.scope)
    distribution = figures.distribution
    history = figures.history
    return page.render(
        "dashboard.html",
        {
            "title": "Dashboard",
            "active": "dashboard",
            "exposure": figures.exposure,
            "secure": figures.secure,
            "exposure_trend": trend_chart([(p.day, p.exposure_score) for p in history]),
            "secure_trend": trend_chart([(p.day, p.secure_score) for p in history], height=110),
            "distribution": donut(
                [
                    ("high", "High", distribution.high),
                    ("medium", "Medium", distribution.medium),
                    ("low", "Low", distribution.low),
                    ("none", "No known risks", distribution.none),
                ]
            ),
            "top_recommendations": figures.top_recommendations,
            "top_software": figures.top_software,
            "top_devices": figures.top_devices,
            "groups_exposure": figures.groups_exposure,
            "top_activities": remediation_pages.dashboard_rows(session, page),
            # Named as people know them (the recommendation's name), not by their ids.
            "expiring_exceptions": exception_views(
                session, page.scope, expiring_soon(session, page.scope)
            ),
            **remediation_pages.template_context(),
        },
    )


def install_pages(app: FastAPI) -> None:
    """Mount the static files, every page router, and the HTML 404 page."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def _favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.include_router(router)
    app.include_router(recommendation_pages)
    app.include_router(vulnerability_pages)
    app.include_router(inventory_pages)

    @app.exception_handler(StarletteHTTPException)
    async def _html_errors(request: Request, exc: StarletteHTTPException) -> Response:
        # The API keeps FastAPI's JSON errors; people in a browser get a page in the layout.
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and not request.url.path.startswith("/api"):
            if exc.status_code == 404:
                return render_error(
                    request,
                    404,
                    "Not found",
                    str(exc.detail)
                    if exc.detail and exc.detail != "Not Found"
                    else "There is no such page, or it is outside the device groups you can see.",
                )
            if exc.status_code == 403:
                return render_error(
                    request,
                    403,
                    "Access denied",
                    _forbidden_message(str(exc.detail or "")),
                )
        return await http_exception_handler(request, exc)


def _forbidden_message(detail: str) -> str:
    """The 403 page's sentence: the refusal's own words, said as a sentence."""
    if not detail or detail == "Forbidden":
        return "You do not have the right to open this page. Ask an administrator for it."
    sentence = detail[:1].upper() + detail[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."
