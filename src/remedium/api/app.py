"""The application factory: every router is registered here, explicitly."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from remedium import __version__
from remedium.api import health
from remedium.auth.middleware import install_authentication
from remedium.db.session import get_engine


def create_app(engine: Engine | None = None) -> FastAPI:
    """Build the web UI and API application on ``engine`` (default: the configured database)."""
    app = FastAPI(
        title="remedium",
        version=__version__,
        description="Vulnerability remediation and exception management.",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.engine = engine or get_engine()
    install_authentication(app)
    app.include_router(health.router)
    return app
