"""How long ``remedium`` takes to start: the help texts and a small import, as whole commands.

    .venv/bin/python benchmarks/startup.py [--runs 7] [--json]

Times, as a user runs them (a new process each, the ``remedium`` command beside this Python),
the median of ``--runs`` runs of:

- ``remedium --help``, ``remedium import --help`` and ``remedium jobs run --help``;
- ``remedium import FILE`` of a small report per common format (Trivy JSON, Grype JSON,
  CycloneDX JSON, Nessus XML: the test fixtures, a few findings each), each run into its own
  copy of a freshly migrated SQLite database (the copy is made before the clock starts).

Each command runs once untimed first, with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE``
removed from the commands' environment), as on a user's machine: pip compiles an installed
package's modules, and a source checkout's are cached at their first run. (Where
``PYTHONDONTWRITEBYTECODE=1`` is set, a source checkout's modules are compiled at every start:
docs/imports.md has figures of both.)

Prints per command: the median wall and CPU seconds (the command's own, from the children's
resource usage) and the slowest wall of the runs; then the machine's speed and load average,
taken before and after (docs/imports.md, "Start-up"). The goal of issue 16: each ≤ 0.5 s wall
on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import REPO_ROOT, machine_line

FIXTURES = REPO_ROOT / "tests" / "importers" / "fixtures"
SMALL_REPORTS = {
    "trivy": FIXTURES / "trivy" / "image.json",
    "grype": FIXTURES / "grype" / "directory.json",
    "cyclonedx": FIXTURES / "cyclonedx" / "sbom_with_vex.json",
    "nessus": FIXTURES / "nessus" / "two_hosts.nessus",
}
HELPS = (("--help",), ("import", "--help"), ("jobs", "run", "--help"))


def remedium_command() -> list[str]:
    """The ``remedium`` console script of this Python's environment (else ``-m``)."""
    script = Path(sys.executable).with_name("remedium")
    return [str(script)] if script.exists() else [sys.executable, "-m", "remedium.cli.main"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` once: its wall and CPU (user + system) seconds. Exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def summary(name: str, runs: list[tuple[float, float]]) -> dict[str, Any]:
    """The median wall and CPU of ``runs``, and the slowest wall."""
    return {
        "command": name,
        "runs": len(runs),
        "wall_median_s": round(statistics.median(w for w, _ in runs), 3),
        "cpu_median_s": round(statistics.median(c for _, c in runs), 3),
        "wall_max_s": round(max(w for w, _ in runs), 3),
    }


def environment(database: Path) -> dict[str, str]:
    """This process's environment, the bytecode cache on, pointed at ``database``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "REMEDIUM_DATABASE_URL": f"sqlite:///{database}"}


def measure(runs: int, folder: Path) -> list[dict[str, Any]]:
    """Every command's figures: the helps, then one small import per format."""
    remedium = remedium_command()
    migrated = folder / "migrated.db"
    env = environment(migrated)
    timed([*remedium, "db", "upgrade"], env)  # the schema, once; each import gets a copy
    results = []
    for args in HELPS:
        timed([*remedium, *args], env)  # untimed: bytecode cached, files read once
        figures = [timed([*remedium, *args], env) for _ in range(runs)]
        results.append(summary(f"remedium {' '.join(args)}", figures))
    for name, report in SMALL_REPORTS.items():
        figures = []
        for run in range(-1, runs):  # run -1 is untimed, as above
            database = folder / f"{name}-{run}.db"
            shutil.copyfile(migrated, database)
            figure = timed([*remedium, "import", str(report)], environment(database))
            if run >= 0:
                figures.append(figure)
        results.append(summary(f"remedium import {report.relative_to(REPO_ROOT)}", figures))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    before = machine_line()
    with tempfile.TemporaryDirectory(prefix="remedium-startup-") as folder:
        results = measure(args.runs, Path(folder))
    after = machine_line()
    if args.json:
        print(json.dumps({"results": results, "before": before, "after": after}, indent=2))
        return
    print(f"before: {before}")
    print(f"{'command':72} {'wall':>7} {'CPU':>7} {'max':>7}")
    for row in results:
        print(
            f"{row['command']:72} {row['wall_median_s']:6.3f}s {row['cpu_median_s']:6.3f}s "
            f"{row['wall_max_s']:6.3f}s"
        )
    print(f"after:  {after}")


if __name__ == "__main__":
    main()
