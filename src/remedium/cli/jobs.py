"""``remedium jobs run`` and ``remedium worker``: the periodic jobs and the ticket outbox."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from remedium.cli.common import console, loading, print_json, ready_engine

if TYPE_CHECKING:
    from remedium.jobs.models import JobRun

# The jobs, the connectors and SQLAlchemy load when a command runs, not for its --help
# (docs/imports.md, "Start-up"): hence the imports inside the commands.

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
    with loading():
        from remedium.connectors.service import EnabledConnectors, http_client  # noqa: PLC0415 — not for --help
        from remedium.db.base import utcnow  # noqa: PLC0415 — not for --help
        from remedium.jobs.runner import PERIODIC_JOBS, SKIPPED, run_jobs  # noqa: PLC0415 — not for --help

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
    failed = [r for r in runs if r.status not in ("ok", SKIPPED)]
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
            colour = {"ok": "green", SKIPPED: "yellow"}.get(r.status, "red")
            console.print(f"[{colour}]{r.status:6}[/] {r.job}: {r.result or r.error}")
    if failed:
        raise typer.Exit(1)


def worker_command(
    outbox_every: float = typer.Option(
        None, help="Seconds between outbox passes (default $REMEDIUM_OUTBOX_EVERY_SECONDS, 5)."
    ),
    jobs_every: float = typer.Option(
        None,
        help="Seconds between runs of each periodic job (default "
        "$REMEDIUM_JOBS_EVERY_SECONDS, 3600).",
    ),
    once: bool = typer.Option(False, help="One jobs run and one outbox pass, then stop."),
    parent_pid: int = typer.Option(None, hidden=True, help="Stop when this process is gone."),
) -> None:
    """Run the periodic jobs on their schedule and deliver the ticket outbox (Ctrl-C stops).

    Any number of workers (and ``remedium serve`` processes) may run against one database:
    deliveries are claimed one by one and each periodic job runs under its lease.
    """
    from remedium.connectors.service import EnabledConnectors, http_client  # noqa: PLC0415 — not for --help
    from remedium.jobs.runner import run_jobs  # noqa: PLC0415 — not for --help
    from remedium.jobs.scheduler import outbox_pass, run_scheduler  # noqa: PLC0415 — not for --help
    from remedium.settings import get_settings  # noqa: PLC0415 — not for --help

    settings = get_settings()
    engine = ready_engine()
    outbox_seconds = outbox_every or settings.outbox_every_seconds
    jobs_seconds = jobs_every or settings.jobs_every_seconds

    def say(run: JobRun) -> None:
        colour = "green" if run.status == "ok" else "red"
        console.print(f"[{colour}]{run.status:6}[/] {run.job}: {run.result or run.error}")

    console.print(
        f"remedium worker started (pid {os.getpid()}): outbox every {outbox_seconds:g} s, "
        f"periodic jobs every {jobs_seconds:g} s"
    )
    with http_client() as client:
        resolve = EnabledConnectors(client)
        if once:
            for run in run_jobs(engine, resolve):
                say(run)
            say(outbox_pass(engine, resolve))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            run_scheduler(
                engine,
                resolve,
                outbox_every=outbox_seconds,
                jobs_every=jobs_seconds,
                stop=stop,
                say=say,
                parent_pid=parent_pid,
            )
        console.print("remedium worker stopped")
