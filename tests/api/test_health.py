"""The health route answers over real HTTP on both databases."""

from __future__ import annotations

import httpx

from remedium.db.migrate import head_revision


def test_health_reports_database_and_schema(live_server: str, database_url: str) -> None:
    reply = httpx.get(f"{live_server}/api/v1/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert body["schema_version"] == head_revision()
