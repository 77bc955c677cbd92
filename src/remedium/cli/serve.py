"""``remedium serve``: the web UI and API, N processes, and the background worker beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from remedium.cli.common import console, ready_engine
from remedium.settings import get_settings


@contextmanager
def background_worker(enabled: bool) -> Iterator[None]:
    """Run ``remedium worker`` as a child process for as long as the server runs.

    A child process, not a thread: the hourly recompute then uses the other core instead of
    the server's, and the worker stops by itself when the server is gone (``--parent-pid``).
    """
    settings = get_settings()
    if not enabled:
        console.print(
            "background jobs: OFF (--no-worker). Tickets stay pending and periodic jobs do not "
            "run until a `remedium worker` process runs against this database."
        )
        yield
        return
    child = subprocess.Popen(  # noqa: S603 - our own command, same interpreter
        [sys.executable, "-m", "remedium.cli.main", "worker", "--parent-pid", str(os.getpid())],
        env=os.environ.copy(),
    )
    console.print(
        f"background jobs: ON in a worker process (pid {child.pid}): ticket delivery every "
        f"{settings.outbox_every_seconds:g} s, periodic jobs every "
        f"{settings.jobs_every_seconds:g} s (Administration > Background jobs shows them; "
        "--no-worker turns this off)."
    )
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def serve_command(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default $PORT or 8000)."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes sharing the port (and database)."
    ),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not run the background jobs (run `remedium worker`)."
    ),
) -> None:
    """Serve the web UI and the API on the configured database, with the background jobs."""
    # The server and the whole web application load when the command runs, not for --help.
    import uvicorn  # noqa: PLC0415 — CLI start-up speed

    from remedium.api.app import serving_app  # noqa: PLC0415 — CLI start-up speed
    from remedium.api.proxy import uvicorn_proxy_options  # noqa: PLC0415 — CLI start-up speed

    settings = get_settings()
    engine = ready_engine()
    listen_host = host or settings.host
    listen_port = port or settings.port
    database = engine.url.render_as_string(hide_password=True)
    console.print(
        f"remedium on http://{listen_host}:{listen_port}  (database: {database}; "
        f"{workers} server process{'es' if workers > 1 else ''})"
    )
    if settings.database_read_url:
        console.print("reads (GET) go to the standby in REMEDIUM_DATABASE_READ_URL")
    with background_worker(not no_worker):
        if workers == 1:
            uvicorn.run(
                serving_app(engine),
                host=listen_host,
                port=listen_port,
                log_level="info",
                **uvicorn_proxy_options(settings),
            )
        else:
            engine.dispose()
            uvicorn.run(
                "remedium.api.app:serving_app",
                factory=True,
                host=listen_host,
                port=listen_port,
                workers=workers,
                log_level="info",
                # Under load a process can take more than uvicorn's 5 s to answer its first
                # health check; it would be restarted again and again.
                timeout_worker_healthcheck=60,
                **uvicorn_proxy_options(settings),
            )
