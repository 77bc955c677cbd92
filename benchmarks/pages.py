"""The pages and API reads of a large organisation, timed over HTTP as a user meets them.

    .venv/bin/python benchmarks/pages.py [--devices 100000] [--databases sqlite,postgresql]
                                         [--db FILE] [--requests 20] [--json]

Builds the synthetic organisation of ``benchmarks/scale.py`` (``--devices`` devices, about 150
installed products, 30 open weaknesses and 20 configuration assessments each, fully recomputed)
in a temporary SQLite file and/or a database of a throwaway PostgreSQL cluster on loopback.
``--db FILE`` keeps the SQLite organisation in FILE, or reuses it when FILE already holds one
(``reimport.py --db FILE`` reuses the same file). It files a few exceptions and remediation
activities through the API (so their pages list something), starts ``remedium serve
--no-worker`` (one worker) on a free loopback port, signs in through the sign-in form as a new
administrator for the pages and uses an API token of the same user for the API, asks each URL
once to warm it, then times ``--requests`` sequential requests of each: the dashboard, the
recommendation list, the most exposed recommendation, the device list, one device, the
exceptions and remediation pages, ``/api/machines`` and ``/api/recommendations`` (Defender's
collections, unpaged: up to 10,000 items a page, as Microsoft's API answers) and the same two
with ``$top=50``.

Prints per URL: median and p95 milliseconds, the size of the answer and its status, then the
machine's speed and load (``harness.machine_line``). Exits 1 when any request fails (any status
but 200). The client runs on the same machine, so each figure includes its share of the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import create_admin, machine_line, sign_in, start_server, stop_server
from scale import populate
from sqlalchemy import text

from remedium.db.session import make_engine

PAGES = (
    ("dashboard", "/"),
    ("recommendations", "/recommendations"),
    ("one recommendation", "/recommendations/{recommendation}"),
    ("devices", "/devices"),
    ("one device", "/devices/{device}"),
    ("exceptions", "/remediation/exceptions"),
    ("remediation", "/remediation"),
)
API = (
    ("api machines", "/api/machines"),
    ("api recommendations", "/api/recommendations"),
    ("api machines $top=50", "/api/machines?$top=50"),
    ("api recommendations $top=50", "/api/recommendations?$top=50"),
)
SEEDED = 5  # exceptions and remediation activities filed before the timing


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare(url: str, devices: int) -> dict[str, Any]:
    """The organisation at ``url`` (built unless it already holds devices) and the ids of the
    pages of one recommendation and one device."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            try:
                held = connection.execute(text("SELECT count(*) FROM device")).scalar_one()
            except Exception:  # no schema yet
                held = 0
        if held:
            print(f"  reusing the organisation of {held:,} devices", flush=True)
            built: dict[str, Any] = {"devices": held, "reused": True}
        else:
            started = time.perf_counter()
            built = {"devices": devices, "reused": False, **populate(engine, devices)}
            print(
                f"  built {devices:,} devices in {time.perf_counter() - started:.0f} s "
                f"(load {built['load s']:.0f} s, full recompute {built['full recompute s']:.0f} s)",
                flush=True,
            )
        with engine.connect() as connection:
            top = connection.execute(
                text(
                    "SELECT r.id, r.remediation_type FROM recommendation r JOIN ("
                    "SELECT recommendation_id, count(*) AS devices FROM device_recommendation "
                    "GROUP BY recommendation_id) d ON d.recommendation_id = r.id "
                    "ORDER BY d.devices DESC, r.id LIMIT 10"
                )
            )
            built["recommendations"] = [(row[0], row[1]) for row in top]
            built["device"] = connection.execute(text("SELECT min(id) FROM device")).scalar_one()
            built["seeded"] = connection.execute(
                text("SELECT count(*) FROM remediation_exception")
            ).scalar_one()
            built["groups"] = list(
                connection.execute(text("SELECT id FROM device_group ORDER BY id")).scalars()
            )
    finally:
        engine.dispose()
    return built


def seed(api: httpx.Client, org: dict[str, Any]) -> None:
    """A few exceptions and remediation activities, filed as a user files them."""
    due = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    recommendations = org["recommendations"]
    for index, (recommendation, remediation_type) in enumerate(recommendations[:SEEDED]):
        reply = api.post(
            "/api/v1/remediation-activities",
            json={
                "recommendation_id": recommendation,
                "remediation_type": remediation_type,
                "device_group_ids": org["groups"][:2],
                "priority": "High",
                "due_on": due,
                "notes": f"bench {index}",
            },
        )
        if reply.status_code != 201:
            print(f"  warning: remediation activity {reply.status_code} {reply.text[:200]}")
    for recommendation, _type in recommendations[SEEDED : 2 * SEEDED]:
        reply = api.post(
            "/api/v1/exceptions",
            json={
                "recommendation_id": recommendation,
                "justification": "PlannedRemediation",
                "scope": "groups",
                "device_group_ids": org["groups"][2:4] or org["groups"][:1],
                "duration_days": 90,
            },
        )
        if reply.status_code != 201:
            print(f"  warning: exception {reply.status_code} {reply.text[:200]}")


def time_urls(
    client: httpx.Client, urls: list[tuple[str, str]], requests: int
) -> list[dict[str, Any]]:
    """Each URL once to warm it, then ``requests`` timed requests; a row per URL."""
    rows = []
    for label, path in urls:
        client.get(path)
        timings, statuses, size = [], set(), 0
        for _ in range(requests):
            started = time.perf_counter()
            try:
                reply = client.get(path)
                statuses.add(reply.status_code)
                size = len(reply.content)
            except httpx.HTTPError as error:
                statuses.add(type(error).__name__)  # type: ignore[arg-type]
            timings.append(time.perf_counter() - started)
        rows.append(
            {
                "label": label,
                "url": path,
                "median_ms": statistics.median(timings) * 1000,
                "p95_ms": percentile(timings, 0.95) * 1000,
                "bytes": size,
                "status": ",".join(str(s) for s in sorted(statuses, key=str)),
                "ok": statuses == {200},
            }
        )
        print(
            f"  {label:<30}{rows[-1]['median_ms']:>9.0f}{rows[-1]['p95_ms']:>9.0f}"
            f"{size:>12,}  {rows[-1]['status']}",
            flush=True,
        )
    return rows


def measure(url: str, devices: int, requests: int) -> dict[str, Any]:
    """Build or reuse, serve, sign in, seed, time every URL; the figures of one database."""
    org = prepare(url, devices)
    name, password, token = create_admin(url)
    server, base = start_server(url)
    try:
        with httpx.Client(
            base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            if not org["seeded"]:
                seed(api, org)
            ids = {"recommendation": org["recommendations"][0][0], "device": org["device"]}
            pages = [(label, path.format(**ids)) for label, path in PAGES]
            print(f"  {'url':<30}{'median ms':>9}{'p95 ms':>9}{'bytes':>12}  status", flush=True)
            browser = sign_in(base, name, password, timeout=300)
            try:
                rows = time_urls(browser, pages, requests)
            finally:
                browser.close()
            api.headers["Accept"] = "application/json"
            rows += time_urls(api, list(API), requests)
    finally:
        stop_server(server)
    return {"organisation": org, "urls": rows}


@contextmanager
def databases(kinds: list[str], db: Path | None) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of each database to measure; the temporary ones go at the end."""
    with tempfile.TemporaryDirectory(prefix="remedium-pages-") as folder:
        found: list[tuple[str, str]] = []
        cluster: Any = None
        for kind in kinds:
            if kind == "sqlite":
                path = (db or Path(folder) / "pages.db").resolve()
                found.append(("SQLite", f"sqlite:///{path}"))
            elif kind == "postgresql":
                from tests.support.pgcluster import create_database, start_cluster

                cluster = start_cluster()
                found.append(("PostgreSQL", create_database(cluster, "pages")))
            else:
                raise SystemExit(f"unknown database {kind!r}: sqlite or postgresql")
        try:
            yield found
        finally:
            if cluster is not None:
                cluster.stop()


def main() -> None:
    """Parse the arguments, measure each database, print the figures; exit 1 on a failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite", help="sqlite,postgresql")
    parser.add_argument("--db", type=Path, default=None, help="keep or reuse a SQLite file")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per URL")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if args.devices < 1 or not 1 <= args.requests <= 1000:
        raise SystemExit("--devices ≥ 1 and --requests 1..1000")
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    with databases([k for k in args.databases.split(",") if k], args.db) as found:
        for name, url in found:
            print(f"== {name}, {args.devices:,} devices", flush=True)
            results[name] = measure(url, args.devices, args.requests)
    line = machine_line()
    print(line)
    results["machine"] = line
    failed = [
        f"{name}: {row['url']} {row['status']}"
        for name, value in results.items()
        if isinstance(value, dict)
        for row in value["urls"]
        if not row["ok"]
    ]
    if args.json:
        print(json.dumps(results))
    if failed:
        print("failed requests:\n  " + "\n  ".join(failed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
