"""``remedium jobs run --as-of`` in a subprocess: run records, retention, progress, history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from remedium.db.session import transaction
from remedium.inventory.models import Weakness
from remedium.jobs.models import JobRun
from remedium.remediation.models import RemediationActivity
from remedium.scoring.models import ScoreSnapshot
from tests.support.orgs.remediation import RECOMMENDATION, build_org


def _jobs_run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "remedium.cli.main", "jobs", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _request(admin_client: Any) -> str:
    due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    reply = admin_client.post(
        "/api/v1/remediation-activities",
        json={"recommendation_id": RECOMMENDATION, "remediation_type": "Update", "due_on": due},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def test_jobs_run_measures_completes_snapshots_and_purges(
    engine: Engine, database_url: str, admin_client: Any
) -> None:
    build_org(engine)
    fixed_later = _request(admin_client)
    old = _request(admin_client)
    admin_client.post(f"/api/v1/remediation-activities/{old}/complete")
    with transaction(engine) as session:
        # A scan closed every weakness (the import pipeline did not measure activities).
        session.execute(update(Weakness).values(fixed_at=datetime.now(UTC)))
    as_of = datetime.now(UTC) + timedelta(days=200)
    result = _jobs_run(database_url, "--as-of", as_of.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == []
    jobs = report["jobs"]
    assert jobs["activity_progress"]["completed"] == 1
    # Completed 200 days "ago" as of --as-of: past the 180-day retention.
    assert jobs["activity_retention"]["removed"] == 1
    assert jobs["score_snapshot"]["day"] == as_of.date().isoformat()
    # No exception exists in this organisation: the lifecycle job ran and changed nothing.
    assert jobs["exception_lifecycle"] == {
        "exceptions_expired": 0,
        "exceptions_resurfaced": 0,
        "exceptions_resumed": 0,
        "exceptions_expiring_soon": 0,
        "status": "ok",
        "error": "",
    }
    with transaction(engine) as session:
        remaining = session.get(RemediationActivity, fixed_later)
        assert remaining is not None
        assert remaining.completion_method == "System confirmation"
        assert session.get(RemediationActivity, old) is None
        assert session.scalar(select(func.count()).select_from(JobRun)) == 7
    # Run as of now again (the devices are active again): the history gains a row per group.
    today = _jobs_run(database_url, "--only", "recompute", "--only", "score_snapshot")
    assert today.returncode == 0, today.stderr
    with transaction(engine) as session:
        day = datetime.now(UTC).date()
        assert session.scalar(select(func.count()).where(ScoreSnapshot.day == day)) == 2


def test_jobs_run_refuses_a_bad_time(database_url: str) -> None:
    result = _jobs_run(database_url, "--as-of", "yesterday-ish")
    assert result.returncode != 0
    assert "ISO 8601" in result.stderr
