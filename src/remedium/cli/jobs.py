"""``remedium jobs run`` and ``remedium worker``: the periodic jobs and the ticket outbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer

from remedium.cli.common import console, print_json, ready_engine
from remedium.connectors.service import EnabledConnectors, http_client
from remedium.db.base import utcnow
from remedium.jobs.runner import PERIODIC_JOBS, run_jobs
from remedium.remediation.outbox import deliver_pending

jobs_app = typer.Typer(no_args_is_help=True, help="Periodic jobs.")


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@jobs_app.command("run")
def run_command(
    as_of: str = typer.Option(None, "--as-of", help="Run as of this time (ISO 8601; default now)."),
    only: list[str] = typer.Option(None, "--only", help="Run only these jobs (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run every periodic job once: exceptions, progress, retention, tickets, score history."""
    when = _parse_time(as_of) or utcnow()
    jobs = [j for j in PERIODIC_JOBS if not only or j.name in only]
    unknown = set(only or ()) - {j.name for j in PERIODIC_JOBS}
    if unknown:
        raise typer.BadParameter(
            f"unknown job(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(j.name for j in PERIODIC_JOBS)}"
        )
    engine = ready_engine()
    with http_client() as client:
        runs = run_jobs(engine, EnabledConnectors(client), as_of=when, jobs=jobs)
    failed = [r for r in runs if r.status != "ok"]
    if as_json:
        print_json(
            {
                "as_of": when.isoformat(),
                "jobs": {r.job: {"status": r.status, **r.result, "error": r.error} for r in runs},
                "failed": [r.job for r in failed],
            }
        )
    else:
        for r in runs:
            colour = "green" if r.status == "ok" else "red"
            console.print(f"[{colour}]{r.status:6}[/] {r.job}: {r.result or r.error}")
    if failed:
        raise typer.Exit(1)


def worker_command(
    outbox_every: float = typer.Option(10.0, help="Seconds between outbox passes."),
    jobs_every: float = typer.Option(3600.0, help="Seconds between runs of the periodic jobs."),
    once: bool = typer.Option(False, help="One outbox pass and one jobs run, then stop."),
) -> None:
    """Run the periodic jobs and deliver the ticket outbox continuously (Ctrl-C stops)."""
    engine = ready_engine()
    next_jobs = 0.0
    console.print("remedium worker started")
    with http_client() as client:
        resolve = EnabledConnectors(client)
        try:
            while True:
                if time.monotonic() >= next_jobs:
                    for run in run_jobs(engine, resolve):
                        console.print(f"{run.status:6} {run.job}: {run.result or run.error}")
                    next_jobs = time.monotonic() + jobs_every
                stats = deliver_pending(engine, resolve)
                if stats.delivered or stats.retried or stats.failed:
                    console.print(f"outbox: {stats.as_dict()}")
                if once:
                    return
                time.sleep(outbox_every)
        except KeyboardInterrupt:
            console.print("remedium worker stopped")
