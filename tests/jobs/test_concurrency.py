"""Several processes at once on one database: ticket delivery under faults and SIGKILL, and the
periodic jobs' leases (issue 13 item 1, issue 15).

Processes, not threads: each worker is a ``remedium worker`` subprocess, killed with SIGKILL at
random moments and replaced, while a fake Jira on loopback spoils ~30 % of the requests.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update

from remedium.audit.models import AuditEvent
from remedium.connectors.base import idempotency_key_for
from remedium.connectors.models import ConnectorConfig
from remedium.db.session import transaction
from remedium.jobs.models import JobLease, JobRun
from remedium.remediation.models import OutboxMessage, RemediationActivity
from tests.support.fake_ticketing import FakeJira
from tests.support.orgs.remediation import RECOMMENDATION, build_org

ACTIVITIES = 24
WORKERS = 3
DEADLINE_SECONDS = 240.0


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REMEDIUM_DATABASE_URL": database_url,
        # Short lease and back-off so killed workers' messages come back within the test.
        "REMEDIUM_OUTBOX_LEASE_SECONDS": "6",
        "REMEDIUM_OUTBOX_BACKOFF_SECONDS": "0.2",
        "REMEDIUM_OUTBOX_EVERY_SECONDS": "0.2",
        **extra,
    }


def _worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "remedium.cli.main", "worker"],
            env=_env(database_url),
            stdout=out,
            stderr=out,
        )


def _configure_jira(engine: Engine, jira: FakeJira) -> None:
    with transaction(engine) as session:
        session.execute(
            update(ConnectorConfig)
            .where(ConnectorConfig.name == "tickets")
            .values(
                config={
                    "base_url": jira.url,
                    "project_key": "SEC",
                    "email": jira.email,
                    "api_token": jira.api_token,
                }
            )
        )


def _request(admin_client: Any, count: int) -> list[str]:
    due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    ids = []
    for n in range(count):
        reply = admin_client.post(
            "/api/v1/remediation-activities",
            json={
                "recommendation_id": RECOMMENDATION,
                "remediation_type": "Update",
                "priority": ("High", "Medium", "Low")[n % 3],
                "due_on": due,
                "connector": "tickets",
            },
        )
        assert reply.status_code == 201, reply.text
        ids.append(str(reply.json()["id"]))
    return ids


def _undelivered(engine: Engine) -> int:
    with transaction(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state != "delivered")
            )
            or 0
        )


def test_workers_killed_under_remote_faults_make_exactly_one_ticket_per_activity(
    engine: Engine, database_url: str, admin_client: Any, tmp_path: Path
) -> None:
    build_org(engine)
    activity_ids = _request(admin_client, ACTIVITIES)
    chance = random.Random(15)
    log = tmp_path / "workers.log"
    with FakeJira() as jira:
        _configure_jira(engine, jira)
        # 30 % of the requests fail (some after the ticket was made); every reply takes 50 ms,
        # so the kills land during calls, not only between them.
        jira.chaos(0.3, seed=13, latency=0.05)
        workers = [_worker(database_url, log) for _ in range(WORKERS)]
        kills = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        try:
            while _undelivered(engine) and time.monotonic() < deadline:
                time.sleep(chance.uniform(0.5, 2.0))
                if kills < 12:
                    victim = workers.pop(chance.randrange(len(workers)))
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    workers.append(_worker(database_url, log))
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
        assert _undelivered(engine) == 0, log.read_text()[-3000:]
        # Exactly one Jira issue per activity, and nothing else.
        per_activity = [jira.count_for(idempotency_key_for(a)) for a in activity_ids]
        assert per_activity == [1] * ACTIVITIES
        assert len(jira.issues) == ACTIVITIES
        assert kills >= 2
        assert jira.chaos_faults > 0
        keys_by_label = {
            label: key for key, issue in jira.issues.items() for label in issue["fields"]["labels"]
        }
    with transaction(engine) as session:
        activities = session.scalars(select(RemediationActivity)).all()
        assert len(activities) == ACTIVITIES
        for activity in activities:
            # Each activity records the one issue Jira holds for it.
            assert activity.ticket_key == keys_by_label[idempotency_key_for(activity.id)]
        created = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "remediation.ticket_created")
        )
        assert created == ACTIVITIES
        # Every claim was given back (or has run out).
        assert (
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.claimed_by.is_not(None))
            )
            == 0
        )


def _jobs_run(database_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "remedium.cli.main", "jobs", "run", "--json", *args],
        env=_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_periodic_job_runs_once_at_a_time_across_processes(
    engine: Engine, database_url: str
) -> None:
    build_org(engine, devices_per_group=20)
    # Another process holds the recompute's lease (as a running job would).
    holder = "elsewhere:1:test"
    with transaction(engine) as session:
        session.add(
            JobLease(
                job="recompute",
                holder=holder,
                leased_until=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    blocked = _jobs_run(database_url, "--only", "recompute")
    out, err = blocked.communicate(timeout=300)
    assert blocked.returncode == 0, out + err
    assert '"status": "skipped"' in out
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 0
        # The lease ran out (its holder was killed): the next run takes it over.
        session.execute(
            update(JobLease).values(leased_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    # Four processes at once: each job runs in one of them, the others skip it.
    runs = [
        _jobs_run(database_url, "--only", "recompute", "--only", "ticket_sync") for _ in range(4)
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    with transaction(engine) as session:
        done = session.execute(select(JobRun.job, func.count()).group_by(JobRun.job)).all()
        leases = session.scalars(select(JobLease)).all()
    counts = dict(done)
    # No run overlapped another: at most one per process, and never two at the same time.
    assert 1 <= counts["recompute"] <= 4
    assert all(lease.leased_until is None for lease in leases)
    with transaction(engine) as session:
        spans = session.execute(
            select(JobRun.started_at, JobRun.finished_at)
            .where(JobRun.job == "recompute")
            .order_by(JobRun.started_at)
        ).all()
    for (_s1, end), (start, _e2) in itertools.pairwise(spans):
        assert end <= start
