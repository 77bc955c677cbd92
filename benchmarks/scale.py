"""How remedium's recompute and read queries scale with the size of the organisation.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000]
                                         [--databases sqlite,postgresql]
                                         [--keep-cluster DIR]

For each database and size it builds a synthetic organisation (about 150 installed products,
30 open weaknesses and 20 configuration assessments per device), then prints: load time, full
recompute, incremental recompute after one device changes (median of several), the dashboard
and recommendation-list queries, and the peak memory of this process (the PostgreSQL server's
own memory is not included). Everything runs on loopback; PostgreSQL is a throwaway cluster.

``--keep-cluster DIR`` keeps the PostgreSQL cluster in ``DIR`` instead (created on the first run,
started again by the next ones) with its ``bench_SIZE`` databases: a database that already holds
its organisation is not built again (a 100,000-device build takes minutes), so one build serves
many runs of the recompute. The incremental rounds of a run leave their few changes behind.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import machine_line  # beside this script
from sqlalchemy import Engine, Table, text
from sqlalchemy.orm import Session

from remedium.auth.principal import UNRESTRICTED, Scope
from remedium.db.migrate import upgrade_database
from remedium.db.registry import metadata
from remedium.db.session import make_engine, session_factory
from remedium.recommendations.service import recompute
from remedium.scoring.engine import vulnerability_points

# The throwaway PostgreSQL cluster is test support (tests/support/pgcluster.py), not part of the
# installed package; benchmarks are run from the repo root as scripts, so put the root on the path
# for the lazy imports of it below.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PRODUCTS = 2000
VULNERABLE_PRODUCTS = 400
CHECKS = 200
INSTALLED_PER_DEVICE = 150
VULNERABLE_PER_DEVICE = 6  # x ~5 weaknesses each = ~30 open weaknesses per device
ASSESSMENTS_PER_DEVICE = 20
GROUP_SIZE = 2500
CHUNK_DEVICES = 2000
CATEGORIES = ("Accounts", "Application", "Network", "OS", "SecurityControls")


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Loader:
    """Bulk-inserts rows: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def _complete(self, table: Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        # Fill the columns a row leaves out with the model's Python-side defaults.
        defaults: dict[str, Any] = {}
        for column in table.columns:
            default = column.default
            if default is None or not getattr(default, "is_scalar", False):
                if column.name in ("first_seen", "last_seen", "created_at"):
                    defaults[column.name] = NOW
                elif column.type.__class__.__name__ == "JSON":
                    defaults[column.name] = []
                else:
                    defaults[column.name] = None
            else:
                defaults[column.name] = default.arg  # type: ignore[attr-defined]
        names = self._names(table, rows)
        return [tuple(row.get(n, defaults[n]) for n in names) for row in rows]

    @staticmethod
    def _names(table: Table, rows: list[dict[str, Any]]) -> list[str]:
        # A generated key the rows do not give is left to the database.
        return [
            c.name
            for c in table.columns
            if not (c.primary_key and c.autoincrement is True and c.name not in rows[0])
            and not (c.primary_key and c.name == "id" and c.name not in rows[0])
        ]

    def load(self, table_name: str, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` into ``table_name`` (one transaction)."""
        if not rows:
            return
        table = metadata.tables[table_name]
        tuples = self._complete(table, rows)
        names = self._names(table, rows)
        json_columns = {
            i for i, name in enumerate(names) if table.c[name].type.__class__.__name__ == "JSON"
        }
        if self.postgres:
            import json

            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                with cursor.copy(  # type: ignore[attr-defined]
                    f"COPY {table_name} ({', '.join(names)}) FROM STDIN"
                ) as copy:
                    for row in tuples:
                        copy.write_row(
                            [json.dumps(v) if i in json_columns else v for i, v in enumerate(row)]
                        )
                raw.commit()
            finally:
                raw.close()
            return
        import json

        converted = [
            tuple(
                json.dumps(v)
                if i in json_columns
                else v.replace(tzinfo=None).isoformat(" ", "microseconds")
                if isinstance(v, datetime)
                else v
                for i, v in enumerate(row)
            )
            for row in tuples
        ]
        placeholders = ", ".join("?" for _ in names)
        with self.engine.begin() as connection:
            connection.exec_driver_sql(
                f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({placeholders})",
                converted,  # type: ignore[arg-type]
            )


def build_organisation(
    engine: Engine, devices: int, seed: int = 42, *, progress: bool = False
) -> None:
    """A synthetic organisation of ``devices`` devices (deterministic for a seed); with
    ``progress``, a line every 10,000 devices (a large build takes minutes)."""
    rng = random.Random(seed)
    loader = Loader(engine)
    groups = max(2, devices // GROUP_SIZE)
    loader.load("device_group", [{"id": g + 1, "name": f"group-{g + 1}"} for g in range(groups)])
    loader.load(
        "software",
        [
            {
                "id": p + 1,
                "vendor": f"vendor{p % 300}",
                "product": f"product{p}",
                "display_name": f"Product {p}",
                "display_vendor": f"Vendor {p % 300}",
                "product_key": f"vendor{p % 300}-_-product{p}",
                "is_operating_system": p < 5,
                "end_of_support_on": NOW - timedelta(days=100) if p % 97 == 0 else None,
            }
            for p in range(PRODUCTS)
        ],
    )
    vulnerabilities: dict[int, list[str]] = {}
    vuln_rows = []
    for p in range(VULNERABLE_PRODUCTS):
        ids = []
        for n in range(rng.randint(5, 15)):
            cve = f"CVE-2026-{p:04d}{n:02d}"
            cvss = round(rng.uniform(3.0, 10.0), 1)
            kev, exploit, epss = rng.random() < 0.05, rng.random() < 0.2, rng.random() * 0.5
            vuln_rows.append(
                {
                    "id": cve,
                    "name": cve,
                    "severity": "Critical" if cvss >= 9 else "High" if cvss >= 7 else "Medium",
                    "cvss_v3_score": cvss,
                    "kev_listed": kev,
                    "public_exploit": exploit,
                    "epss": epss,
                    "exposure_points": vulnerability_points(
                        cvss_score=cvss,
                        severity="High",
                        kev_listed=kev,
                        public_exploit=exploit,
                        epss=epss,
                    ),
                }
            )
            ids.append(cve)
        vulnerabilities[p + 1] = ids
    loader.load("vulnerability", vuln_rows)
    loader.load(
        "security_configuration",
        [
            {
                "id": f"scid-{c}",
                "name": f"Check {c}",
                "category": CATEGORIES[c % 5],
                "weight": float(1 + c % 10),
            }
            for c in range(CHECKS)
        ],
    )
    values = ["Low"] * 2 + ["Normal"] * 7 + ["High"]
    for start in range(0, devices, CHUNK_DEVICES):
        device_rows, installed, weaknesses, assessments = [], [], [], []
        for d in range(start + 1, min(devices, start + CHUNK_DEVICES) + 1):
            device_rows.append(
                {
                    "id": d,
                    "machine_id": f"{d:040x}",
                    "identity_key": f"host:device-{d}",
                    "name": f"device-{d}",
                    "device_group_id": 1 + d % groups,
                    "os_platform": "Windows11",
                    "device_value": rng.choice(values),
                    "is_intune_managed": False,
                    "is_aad_joined": False,
                    "internet_facing": rng.random() < 0.1,
                    "last_seen": NOW - timedelta(days=60) if rng.random() < 0.05 else NOW,
                }
            )
            vulnerable = rng.sample(range(1, VULNERABLE_PRODUCTS + 1), VULNERABLE_PER_DEVICE)
            others = rng.sample(
                range(VULNERABLE_PRODUCTS + 1, PRODUCTS + 1),
                INSTALLED_PER_DEVICE - VULNERABLE_PER_DEVICE,
            )
            for software_id in vulnerable + others:
                installed.append({"device_id": d, "software_id": software_id, "version": "1.0"})
            for software_id in vulnerable:
                cves = vulnerabilities[software_id]
                for cve in rng.sample(cves, 5):
                    weaknesses.append(
                        {
                            "device_id": d,
                            "software_id": software_id,
                            "vulnerability_id": cve,
                            "installed_version": "1.0",
                            "fixed_version": None if rng.random() < 0.01 else f"2.{len(cve) % 7}",
                            "source": "bench",
                        }
                    )
            for check in rng.sample(range(CHECKS), ASSESSMENTS_PER_DEVICE):
                assessments.append(
                    {
                        "device_id": d,
                        "configuration_id": f"scid-{check}",
                        "is_compliant": rng.random() < 0.75,
                        "source": "bench",
                    }
                )
        loader.load("device", device_rows)
        loader.load("installed_software", installed)
        loader.load("weakness", weaknesses)
        loader.load("configuration_assessment", assessments)
        done = min(devices, start + CHUNK_DEVICES)
        if progress and done % 10_000 == 0:
            print(f"  {done:,} devices loaded", flush=True)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def populate(engine: Engine, devices: int) -> dict[str, float]:
    """The schema, a ``devices``-device organisation and its full recompute, as a running
    system holds it (``pages.py`` and ``reimport.py`` start from this); seconds per step."""
    upgrade_database(engine)
    seconds = {"load s": _timed(lambda: build_organisation(engine, devices, progress=True))}
    with session_factory(engine)() as session:
        seconds["full recompute s"] = recompute(session, as_of=NOW).seconds
        session.commit()
    return seconds


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _change_one_device(session: Session, device_id: int, round_: int) -> None:
    # A rescan: one weakness fixed and one configuration check flipped.
    session.execute(
        text(
            "UPDATE weakness SET fixed_at = :now WHERE id = "
            "(SELECT min(id) FROM weakness WHERE device_id = :d AND fixed_at IS NULL)"
        ),
        {"now": NOW.replace(tzinfo=None) if session.get_bind().dialect.name == "sqlite" else NOW,
         "d": device_id},
    )  # fmt: skip
    session.execute(
        text(
            "UPDATE configuration_assessment SET is_compliant = NOT is_compliant "
            "WHERE device_id = :d AND configuration_id = "
            "(SELECT min(configuration_id) FROM configuration_assessment WHERE device_id = :d)"
        ),
        {"d": device_id},
    )


def _read_queries(session: Session, scope: Scope) -> dict[str, float]:
    from remedium.recommendations import queries as recommendation_queries
    from remedium.scoring import queries as score_queries

    def dashboard() -> None:
        score_queries.exposure_score(session, scope)
        score_queries.secure_score(session, scope)
        score_queries.exposure_distribution(session, scope)
        score_queries.exposure_by_group(session, scope)
        recommendation_queries.top_recommendations(session, scope)

    def recommendation_list() -> None:
        recommendation_queries.list_recommendations(session, scope)

    results = {}
    for name, action in (("dashboard", dashboard), ("recommendation list", recommendation_list)):
        action()  # warm the caches the way a running server has them
        results[name] = statistics.median(_timed(action) for _ in range(5))
    return results


class Figures(dict[str, Any]):
    """The figures of one run, printed as soon as each is measured (a long run that fails
    late still shows what it measured)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"  {name:<42} {shown}", flush=True)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for name, value in dict(*args, **kwargs).items():
            self[name] = value


def _built(engine: Engine, devices: int) -> bool:
    """True when the database already holds an organisation of ``devices`` devices."""
    with engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM device")).scalar_one()
    return int(found) == devices


def _forget_derived(engine: Engine) -> None:
    """Empty the derived tables of a reused PostgreSQL organisation and vacuum it, so that its
    full recompute starts where a fresh build's does: the device table rewritten without the
    room its earlier updates left in its pages (a fresh build's pages are full, so every update
    of a device writes its indexes too)."""
    from remedium.recommendations._sql import DERIVED_TABLES

    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(DERIVED_TABLES)}"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM FULL device"))
        connection.execute(text("VACUUM ANALYZE"))


def run_one(engine: Engine, devices: int, *, reuse: bool = False) -> dict[str, Any]:
    """Load (unless ``reuse`` and already built), recompute and query one organisation;
    returns the figures."""
    upgrade_database(engine)
    figures = Figures()
    figures["devices"] = devices
    if reuse and _built(engine, devices):
        figures["load s"] = "reused"
        _forget_derived(engine)
    else:
        figures["load s"] = _timed(lambda: build_organisation(engine, devices))
    factory = session_factory(engine)
    with factory() as session:
        stats = recompute(session, as_of=NOW)
        session.commit()
        figures["full recompute s"] = stats.seconds
        figures["full steps"] = {k: round(v, 2) for k, v in stats.timings.items()}
        figures["recommendations"] = session.execute(
            text("SELECT count(*) FROM recommendation")
        ).scalar_one()
        rng = random.Random(7)
        timings = []
        for round_ in range(5):
            device_id = rng.randint(1, devices)
            _change_one_device(session, device_id, round_)
            incremental = recompute(session, device_ids=[device_id], as_of=NOW)
            session.commit()
            timings.append(incremental.seconds)
        figures["incremental recompute s (median of 5)"] = statistics.median(timings)
        figures["incremental max s"] = max(timings)
        try:
            for label, scope in (
                ("all groups", UNRESTRICTED),
                ("one group", Scope(frozenset({1}))),
            ):
                figures.update(
                    {f"{k} s ({label})": v for k, v in _read_queries(session, scope).items()}
                )
        except Exception as error:  # the read side is another feature's code: report, go on
            session.rollback()
            figures["read queries"] = f"failed: {error!r}"
    figures["peak memory MB (this process)"] = _peak_memory_mb()
    # Other work on the machine slows every figure down; say how busy it was.
    figures["load average (1 min)"] = os.getloadavg()[0]
    return figures


def _databases(
    kinds: list[str], size: int, folder: Path, keep: Path | None
) -> Iterator[tuple[str, Engine]]:
    for kind in kinds:
        if kind == "sqlite":
            engine = make_engine(f"sqlite:///{folder / f'bench-{size}.db'}")
        elif keep is not None:
            engine = make_engine(_kept_database(_cluster(keep), f"bench_{size}"))
        else:
            from tests.support.pgcluster import create_database

            engine = make_engine(create_database(_cluster(), f"bench_{size}"))
        try:
            yield kind, engine
        finally:
            engine.dispose()


_CLUSTER: Any = None
_STARTED: list[Any] = []  # kept clusters this run started (and stops at its end)


def _cluster(keep: Path | None = None) -> Any:
    global _CLUSTER  # noqa: PLW0603 - one cluster per benchmark run
    if _CLUSTER is None:
        from tests.support.pgcluster import start_cluster

        _CLUSTER = start_cluster() if keep is None else _kept_cluster(keep)
    return _CLUSTER


def _kept_cluster(folder: Path) -> Any:
    """The cluster kept in ``folder``, with the throwaway cluster's settings: the running
    server when it still runs, else started again (created the first time)."""
    from tests.support import pgcluster

    folder = folder.resolve()
    data = folder / "data"
    as_user = "postgres" if os.geteuid() == 0 else None
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
            # Started by someone else: left running at the end.
            return pgcluster.PostgresCluster(folder=folder, port=int(lines[3]), as_user=as_user)
        except (OSError, ValueError, IndexError):
            pass  # a stale file: pg_ctl starts the server anyway
    folder.mkdir(parents=True, exist_ok=True)
    if as_user:
        import shutil

        shutil.chown(folder, user=as_user)
    cluster = pgcluster.PostgresCluster(folder=folder, port=pgcluster._free_port(), as_user=as_user)
    if not data.exists():
        cluster._run(
            pgcluster._find_bin("initdb"), "-D", str(data), "-A", "trust", "-E", "UTF8",
            "--no-locale",
        )  # fmt: skip
    _STARTED.append(cluster)
    return pgcluster._start(cluster, pgcluster._options(cluster, "256MB"))


def _kept_database(cluster: Any, name: str) -> str:
    """URL of database ``name`` of a kept cluster, created when it does not exist yet."""
    import psycopg

    admin_url = cluster.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if found is None:
            connection.execute(f'CREATE DATABASE "{name}"'.encode())
    url: str = cluster.url(name)
    return url


def _stop_kept(cluster: Any) -> None:
    """Stop a kept cluster's server if this run started it; its files stay for the next run."""
    from tests.support import pgcluster

    if cluster not in _STARTED:
        return
    cluster._run(
        pgcluster._find_bin("pg_ctl"), "-D", str(cluster.folder / "data"), "-m", "fast", "stop"
    )


def main() -> None:
    """Parse the arguments and print the figures of every database and size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="device counts, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument(
        "--keep-cluster",
        metavar="DIR",
        type=Path,
        help="keep the PostgreSQL cluster and its organisations in DIR and reuse them",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.databases.split(",") if k]
    keep: Path | None = args.keep_cluster
    try:
        with tempfile.TemporaryDirectory(prefix="remedium-bench-") as folder:
            for size in sizes:
                for kind, engine in _databases(kinds, size, Path(folder), keep):
                    print(f"== {kind}, {size:,} devices", flush=True)
                    # How fast and how busy the machine is, before the run and after it.
                    print(machine_line(), flush=True)
                    run_one(engine, size, reuse=kind == "postgresql" and keep is not None)
                    print(machine_line(), flush=True)
                    if kind == "sqlite":
                        Path(folder, f"bench-{size}.db").unlink(missing_ok=True)
    finally:
        if _CLUSTER is not None:
            # A kept cluster is stopped and its files stay; a throwaway one is deleted.
            if keep is not None:
                _stop_kept(_CLUSTER)
            else:
                _CLUSTER.stop()


if __name__ == "__main__":
    main()
