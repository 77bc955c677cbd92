"""First import, unchanged re-import and re-import after fixes, into a populated database.

    .venv/bin/python benchmarks/reimport.py [--populated 100000] [--findings 150000]
                                            [--format trivy] [--fixed 0.05] [--db FILE] [--json]
                                            [--organisation synthetic|demo]

The daily case is a scan of devices already known, in a database that already holds a large
organisation. This builds the synthetic organisation of ``benchmarks/scale.py`` (``--populated``
devices, fully recomputed) in a SQLite file (``--db FILE`` keeps it, or reuses it when FILE
already holds one: ``pages.py --db FILE`` builds the same), or with ``--organisation demo`` the
demo organisation (``remedium demo --no-serve``: about 2,000 devices in 6 groups, the shape of
issue 16's 183 s re-import), builds a real-shaped report from the
corpus (``realshaped.py``: Trivy k8s or Grype, ``--findings`` findings) and the same report with
a share ``--fixed`` of its findings left out (spread evenly: those were fixed), then, on a copy
of the organisation, times ``remedium import FILE --json`` as a user runs it (start-up included):

1. ``first``: the report's first import. Its devices are new: the synthetic organisation's
   devices are hosts, the report's are Kubernetes workloads (Trivy) or one image (Grype), which
   no scanner of the synthetic organisation named;
2. ``unchanged``: the same file again (every device and finding known);
3. ``fixed``: the report less ``--fixed`` of its findings (the rest known, those marked fixed).

Prints per stage: wall and CPU seconds (the command's, parser process included), findings in
the file and per second, and the import's own counts; then the machine's speed and load.
SQLite only (PostgreSQL: ``imports.py --databases postgresql --stages command --reimport`` on
an empty database).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import realshaped
from harness import machine_line, run_cli
from scale import populate
from sqlalchemy import text

from remedium.db.session import make_engine

COUNTS = ("findings_added", "findings_updated", "findings_fixed", "devices_added")


def organisation(path: Path, devices: int, kind: str = "synthetic") -> dict[str, Any]:
    """The populated SQLite file at ``path`` (built unless it holds devices already): the
    synthetic organisation of ``devices`` devices, or the demo organisation."""
    engine = make_engine(f"sqlite:///{path.resolve()}")
    try:
        with engine.connect() as connection:
            try:
                held = connection.execute(text("SELECT count(*) FROM device")).scalar_one()
            except Exception:  # no schema yet
                held = 0
        if held:
            print(f"reusing the organisation of {held:,} devices in {path}", flush=True)
            return {"devices": held, "reused": True}
        started = time.perf_counter()
        if kind == "demo":
            run_cli(f"sqlite:///{path.resolve()}", "demo", "--no-serve")
            with engine.connect() as connection:
                held = connection.execute(text("SELECT count(*) FROM device")).scalar_one()
            print(
                f"built the demo organisation ({held:,} devices) in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
            return {"devices": held, "reused": False, "kind": "demo"}
        built = populate(engine, devices)
        print(
            f"built {devices:,} devices in {time.perf_counter() - started:.0f} s "
            f"(load {built['load s']:.0f} s, full recompute {built['full recompute s']:.0f} s)",
            flush=True,
        )
        return {"devices": devices, "reused": False, **built}
    finally:
        engine.dispose()


def copy_database(source: Path, target: Path) -> None:
    """A copy of a SQLite database file (its write-ahead log folded in first)."""
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.copyfile(source, target)


def timed_import(report: Path, url: str, fmt: str) -> dict[str, Any]:
    """``remedium import REPORT --json``: wall and CPU seconds (children) and its summary."""
    remedium = str(Path(sys.executable).with_name("remedium"))
    environment = {**os.environ, "REMEDIUM_DATABASE_URL": url}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [remedium, "import", str(report), "--format", fmt, "--json"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"remedium import {report.name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"seconds": seconds, "cpu_seconds": cpu, **{k: summary.get(k, 0) for k in COUNTS}}


def count_findings(report: Path, fmt: str) -> int:
    """The findings the parser reads from ``report`` (for the rate)."""
    from remedium.importers.limits import open_report
    from remedium.importers.records import FindingRecord
    from remedium.importers.registry import get_parser

    with open_report(report) as stream:
        _info, records = get_parser(realshaped.PARSER[fmt]).parse(stream, report.name)
        return sum(1 for record in records if type(record) is FindingRecord)


def main() -> None:
    """Build, import three times into a copy of the organisation, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populated", type=int, default=100_000, help="devices already held")
    parser.add_argument("--findings", type=int, default=150_000)
    parser.add_argument("--format", choices=sorted(realshaped.FIXABLE), default="trivy")
    parser.add_argument("--fixed", type=float, default=0.05, help="share fixed before rescan")
    parser.add_argument("--db", type=Path, default=None, help="keep or reuse the organisation")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument(
        "--organisation",
        choices=("synthetic", "demo"),
        default="synthetic",
        help="what the database holds first: scale.py's organisation or the demo's",
    )
    args = parser.parse_args()
    if not 0 < args.fixed < 1 or args.populated < 1 or args.findings < 1:
        raise SystemExit("--fixed between 0 and 1, --populated and --findings ≥ 1")
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="remedium-reimport-") as temp:
        folder = Path(temp)
        source = args.db or folder / "populated.db"
        results["organisation"] = organisation(source, args.populated, args.organisation)
        suffix = realshaped.SUFFIX[args.format]
        report = realshaped.build(args.format, args.findings, folder / f"report{suffix}")
        rescan = realshaped.build(
            args.format, args.findings, folder / f"rescan{suffix}", fixed=args.fixed
        )
        findings = {"first": count_findings(report, args.format)}
        findings["unchanged"] = findings["first"]
        findings["fixed"] = count_findings(rescan, args.format)
        print(
            f"{args.format} report: {findings['first']:,} findings, "
            f"{report.stat().st_size / 1e6:.0f} MB; rescan with {args.fixed:.0%} fixed: "
            f"{findings['fixed']:,} findings. The first import's devices are new to the "
            f"organisation of {results['organisation']['devices']:,} devices.",
            flush=True,
        )
        work = folder / "work.db"
        copy_database(source, work)
        url = f"sqlite:///{work}"
        print(
            f"\n{'stage':<11}{'wall s':>8}{'cpu s':>8}{'findings':>10}{'findings/s':>12}"
            f"{'added':>9}{'updated':>9}{'fixed':>8}{'devices+':>10}",
            flush=True,
        )
        stages = []
        for stage, path in (("first", report), ("unchanged", report), ("fixed", rescan)):
            measured = {"stage": stage, "findings": findings[stage]}
            measured.update(timed_import(path, url, args.format))
            stages.append(measured)
            print(
                f"{stage:<11}{measured['seconds']:>8.1f}{measured['cpu_seconds']:>8.1f}"
                f"{measured['findings']:>10,}{measured['findings'] / measured['seconds']:>12,.0f}"
                f"{measured['findings_added']:>9,}{measured['findings_updated']:>9,}"
                f"{measured['findings_fixed']:>8,}{measured['devices_added']:>10,}",
                flush=True,
            )
        results["stages"] = stages
        results["format"] = args.format
    results["machine"] = machine_line()
    print(results["machine"])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
