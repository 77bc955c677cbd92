"""``GET /api/v1/health``: the one route that answers without sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from remedium import __version__
from remedium.api.deps import get_engine_from_app
from remedium.db.migrate import current_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The service's health."""

    status: str
    version: str
    database: str
    schema_version: str | None


@router.get("/api/v1/health", response_model=Health)
def health(request: Request) -> Health:
    """Status, database kind and schema version."""
    engine = get_engine_from_app(request)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return Health(
        status="ok",
        version=__version__,
        database=engine.dialect.name,
        schema_version=current_revision(engine),
    )
