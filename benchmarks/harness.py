"""What the benchmarks share: the ``remedium`` command, a served app on loopback, signing in,
and the speed of the machine at the time of a run.

Not a benchmark itself: ``load.py``, ``pages.py`` and ``reimport.py`` import it (benchmarks run
as scripts from the repository root, so this folder is on the path).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# The throwaway PostgreSQL cluster is test support (tests/support/pgcluster.py), not part of the
# installed package; put the repository root on the path for the lazy imports of it.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

REMEDIUM = [sys.executable, "-m", "remedium.cli.main"]
_SIGNIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(database_url: str, *args: str, stdin: str | None = None) -> str:
    """``remedium ARGS`` against ``database_url``; its standard output (exits on failure)."""
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    done = subprocess.run(
        [*REMEDIUM, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"remedium {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def start_server(database_url: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """``remedium serve --no-worker`` on a free loopback port; the process and its base URL."""
    port = free_port()
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    server = subprocess.Popen(
        [*REMEDIUM, "serve", "--port", str(port), "--workers", str(workers), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its server processes go with it (os.killpg)
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop a server of ``start_server`` (and its worker processes)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def create_admin(database_url: str, prefix: str = "bench") -> tuple[str, str, str]:
    """A new administrator (a fresh name, so a database can be reused): name, password, token."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    created = json.loads(run_cli(database_url, "users", "add", name, "--role", "admin", "--json"))
    out = run_cli(database_url, "tokens", "create", "--user", name, "--name", prefix, "--json")
    return name, str(created["password"]), str(json.loads(out)["token"])


def sign_in(base: str, username: str, password: str, timeout: float = 60) -> httpx.Client:
    """A client signed in through the sign-in form (session cookie), as a browser is."""
    client = httpx.Client(base_url=base, timeout=timeout, headers={"Accept": "text/html"})
    form = client.get("/signin")
    found = _SIGNIN_TOKEN.search(form.text)
    if form.status_code != 200 or found is None:
        client.close()
        raise SystemExit(f"sign-in form: {form.status_code}")
    reply = client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": found.group(1)},
    )
    if reply.status_code != 303:
        client.close()
        raise SystemExit(f"sign-in as {username} answered {reply.status_code}")
    return client


def machine_speed() -> float:
    """Seconds a pure-Python loop of 20 million additions takes now (docs/imports.md): the
    2 shared cores of the development machine vary by half from one minute to the next."""
    started = time.perf_counter()
    total = 0
    for n in range(20_000_000):
        total += n
    return time.perf_counter() - started


def machine_line() -> str:
    """The machine's speed and load, to print beside a run's figures."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"machine: 20M-addition loop {machine_speed():.2f} s, load average {load} (1/5/15 min)"
