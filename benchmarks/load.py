"""Many users at once on the demo organisation: latency percentiles, errors, requests per second.

    .venv/bin/python benchmarks/load.py [--users 50] [--seconds 30] [--workers 1,2]
                                        [--databases sqlite,postgresql] [--database-file FILE]

Builds the demo organisation (``remedium demo --no-serve``) in a temporary SQLite file and/or a
database of a throwaway PostgreSQL cluster on loopback (``--database-file`` reuses a SQLite demo
file already built), gives the demo users API tokens, then for each database and each
``--workers`` count starts ``remedium serve --workers N --no-worker`` on a free loopback port and
runs ``--users`` concurrent users for ``--seconds`` seconds. Each user, with no think time,
cycles through a mix of pages (dashboard, recommendations, devices, weaknesses, software,
remediation) and API reads (``/api/v1/...`` and the Defender-compatible ``/api/...``); a third of
the users sign in as ``scoped`` (two device groups), the rest as administrators and analysts.

Prints per run: requests, requests per second, p50 / p95 / p99 latency, errors (any answer but
200, or no answer), then the p95 of each URL. The load generator is one asyncio process with one
httpx connection per user; it runs on the same machine and takes its share of the CPU, so the
figures are a floor of what the server does alone. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The server start and the CLI are shared with pages.py (harness.py, which also puts the
# repository root on the path for the lazy imports of tests/support/pgcluster.py below).
from harness import run_cli, start_server, stop_server

DEMO_USERS = ("admin", "analyst", "scoped")

# (weight, path): pages and API reads a security team opens again and again.
MIX: tuple[tuple[int, str], ...] = (
    (6, "/"),
    (4, "/recommendations"),
    (2, "/devices"),
    (2, "/vulnerabilities"),
    (2, "/software"),
    (2, "/remediation"),
    (4, "/api/v1/recommendations?limit=50"),
    (2, "/api/v1/devices?limit=50"),
    (2, "/api/v1/scores"),
    (2, "/api/recommendations"),
    (2, "/api/machines?$top=50"),
)


@dataclass
class Results:
    """Latencies (seconds) per path, and the errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def all(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_demo(database_url: str) -> dict[str, str]:
    """The demo organisation in ``database_url`` (unless there), and a token per demo user."""
    started = time.monotonic()
    run_cli(database_url, "demo", "--no-serve")
    print(f"  demo ready in {time.monotonic() - started:.0f} s", flush=True)
    tokens = {}
    for user in DEMO_USERS:
        out = run_cli(database_url, "tokens", "create", "--user", user, "--name", "load", "--json")
        tokens[user] = str(json.loads(out)["token"])
    return tokens


async def user_loop(base: str, token: str, offset: int, stop_at: float, results: Results) -> None:
    paths = [path for weight, path in MIX for _ in range(weight)]
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html,application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        n = offset
        while time.monotonic() < stop_at:
            path = paths[n % len(paths)]
            n += 1
            started = time.monotonic()
            try:
                reply = await client.get(path)
                ok = reply.status_code == 200
                why = f"{reply.status_code} {path}"
            except httpx.HTTPError as error:
                ok, why = False, f"{type(error).__name__} {path}"
            elapsed = time.monotonic() - started
            key = path.split("?", 1)[0]
            results.latencies[key].append(elapsed)
            if not ok:
                results.errors[key] += 1
                if len(results.examples) < 5:
                    results.examples.append(why)


async def run_load(base: str, tokens: dict[str, str], users: int, seconds: float) -> Results:
    results = Results()
    stop_at = time.monotonic() + seconds
    names = [
        "scoped" if n % 3 == 2 else ("admin" if n % 3 == 0 else "analyst") for n in range(users)
    ]
    await asyncio.gather(
        *(user_loop(base, tokens[name], n * 7, stop_at, results) for n, name in enumerate(names))
    )
    return results


def warm_up(base: str, tokens: dict[str, str]) -> None:
    """Every path once per user kind (first requests fill caches and connection pools)."""
    for token in tokens.values():
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/html,application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for _weight, path in MIX:
                reply = client.get(path)
                if reply.status_code != 200:
                    raise SystemExit(f"warm-up: {path} answered {reply.status_code}")


def report(label: str, results: Results, seconds: float) -> None:
    latencies = results.all()
    errors = sum(results.errors.values())
    print(
        f"{label}: {len(latencies):,} requests, {len(latencies) / seconds:.1f}/s, "
        f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, errors {errors}",
        flush=True,
    )
    for path, values in sorted(results.latencies.items()):
        print(
            f"    {path:32} {len(values):6} req  p50 {statistics.median(values) * 1000:6.0f} ms"
            f"  p95 {percentile(values, 0.95) * 1000:6.0f} ms  errors {results.errors[path]}"
        )
    for example in results.examples:
        print(f"    error: {example}")


def measure(database_url: str, label: str, args: argparse.Namespace) -> None:
    tokens = build_demo(database_url)
    for workers in args.workers:
        server, base = start_server(database_url, workers)
        try:
            warm_up(base, tokens)
            results = asyncio.run(run_load(base, tokens, args.users, args.seconds))
            report(f"{label}, {workers} worker(s), {args.users} users", results, args.seconds)
        finally:
            stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--database-file", type=Path, default=None)
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",") if w]
    if not 1 <= args.users <= 500 or not 1 <= args.seconds <= 600:
        raise SystemExit("--users 1..500 and --seconds 1..600")
    with tempfile.TemporaryDirectory(prefix="remedium-load-") as folder:
        for kind in args.databases.split(","):
            if kind == "sqlite":
                path = args.database_file or Path(folder) / "demo.db"
                measure(f"sqlite:///{path.resolve()}", "SQLite", args)
            elif kind == "postgresql":
                from tests.support.pgcluster import create_database, start_cluster

                cluster = start_cluster()
                try:
                    measure(create_database(cluster, "demo"), "PostgreSQL", args)
                finally:
                    cluster.stop()


if __name__ == "__main__":
    main()
