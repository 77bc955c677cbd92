"""How fast the import pipeline takes in large reports, and whether its memory stays flat.

    .venv/bin/python benchmarks/imports.py [--sizes 100000,1000000]
                                           [--formats trivy,grype,nessus,native]
                                           [--databases sqlite,postgresql]
                                           [--stages full,write,parse]

Builds, in a temporary folder, a Trivy Kubernetes cluster report (100 findings per workload, so
1,000,000 findings cover 10,000 devices), a Grype report (Grype scans one source per file: one
device, 100 findings per package), a Nessus ``.nessus`` file and a remedium native file of each
size, then imports each into a fresh database through the real pipeline
(``importers.service.import_report`` in one transaction). Stages:

- ``full``: parse + write + recompute (recommendations, scores, exceptions, progress);
- ``write``: parse + write only (``import_report(..., derive=False)``): the recompute's share;
- ``parse``: the parser alone, records counted and thrown away (no database).

``--inputs real`` builds the inputs instead by replicating real corpus files
(``benchmarks/realshaped.py``: Grype, Trivy, Nessus, CycloneDX), and the ``command`` stage times
the whole ``remedium import FILE --json`` command as a user runs it (start-up included) on a
fresh database. With ``--reimport`` each ``command`` run is followed by an unchanged re-import of
the same file into the same database (the daily case).

Each run is its own subprocess, so the peak memory (``ru_maxrss``) of one run is not polluted by
another. Files of 16 MB and more are parsed in the import's own parser process
(``importers/worker.py``); its CPU time and peak RSS are printed apart. Per run: findings per
second, the importing process's CPU seconds, the parser process's, peak RSS (which includes the
SQLite database pages mapped into memory) and peak anonymous memory (heap and SQLite's page cache,
sampled), then the growth from the smallest to the largest file of each format (flat memory: a
ratio near 1). PostgreSQL runs on a throwaway loopback cluster.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The throwaway PostgreSQL cluster is test support (tests/support/pgcluster.py), not part of the
# installed package; benchmarks are run from the repo root as scripts, so put the root on the path
# for the lazy imports of it below.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

PER_DEVICE = 100  # findings per device
PACKAGES = 50  # distinct packages per device
CVES = 5000  # distinct vulnerabilities in the pool
CVSS = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def _cve(device: int, index: int) -> str:
    return f"CVE-2024-{10000 + (device * 7 + index) % CVES}"


def _findings(device: int) -> Iterator[tuple[str, str, str, str]]:
    """(cve, package, installed, fixed) of one device: unique per (package, cve)."""
    for index in range(PER_DEVICE):
        package = f"pkg{index % PACKAGES}"
        yield _cve(device, index), package, f"1.{index % PACKAGES}.0", f"1.{index % PACKAGES}.9"


def write_trivy(path: Path, findings: int) -> None:
    """A Trivy Kubernetes cluster report: one workload (device) per 100 findings."""
    with path.open("w") as out:
        out.write('{"ClusterName": "bench", "Vulnerabilities": [')
        for device in range(findings // PER_DEVICE):
            vulns = [
                {
                    "VulnerabilityID": cve,
                    "PkgName": package,
                    "InstalledVersion": installed,
                    "FixedVersion": fixed,
                    "Severity": "HIGH",
                    "CVSS": {"nvd": {"V3Vector": CVSS, "V3Score": 9.8}},
                    "Title": f"{package} flaw",
                }
                for cve, package, installed, fixed in _findings(device)
            ]
            resource_ = {
                "Namespace": "default",
                "Kind": "Deployment",
                "Name": f"app-{device:06d}",
                "Results": [
                    {
                        "Target": "bench/app (debian 12.5)",
                        "Class": "os-pkgs",
                        "Type": "debian",
                        "Vulnerabilities": vulns,
                    }
                ],
            }
            out.write(("," if device else "") + json.dumps(resource_))
        out.write('], "Misconfigurations": []}')


def write_nessus(path: Path, findings: int) -> None:
    """A Nessus v2 file: one host per 100 findings, one CVE per plugin item."""
    with path.open("w") as out:
        out.write('<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="bench">\n')
        for device in range(findings // PER_DEVICE):
            address = f"10.{device // 65536 % 256}.{device // 256 % 256}.{device % 256}"
            out.write(
                f'<ReportHost name="{address}"><HostProperties>'
                '<tag name="HOST_END_TIMESTAMP">1700000000</tag>'
                '<tag name="operating-system">Linux Kernel 6.1 on Debian 12</tag>'
                f'<tag name="host-ip">{address}</tag>'
                f'<tag name="host-fqdn">host-{device:06d}.bench.test</tag>'
                "</HostProperties>\n"
            )
            for index, (cve, package, installed, fixed) in enumerate(_findings(device)):
                out.write(
                    f'<ReportItem port="0" svc_name="general" protocol="tcp" severity="3" '
                    f'pluginID="{900000 + index}" pluginName="{package} &lt; {fixed}" '
                    f'pluginFamily="Misc."><cpe>cpe:/a:bench:{package}</cpe><cve>{cve}</cve>'
                    f"<cvss3_vector>{CVSS}</cvss3_vector><plugin_output>"
                    f"Installed version : {installed}\nFixed version : {fixed}\n"
                    "</plugin_output></ReportItem>\n"
                )
            out.write("</ReportHost>\n")
        out.write("</Report></NessusClientData_v2>\n")


def write_native(path: Path, findings: int) -> None:
    """A remedium native inventory: devices with software and findings."""
    with path.open("w") as out:
        out.write(
            '{"schema": "remedium-inventory/1", "source": "bench", '
            '"scanned_at": "2026-11-01T00:00:00Z", "devices": ['
        )
        for device in range(findings // PER_DEVICE):
            rows = list(_findings(device))
            entry = {
                "name": f"native-{device:06d}",
                "os_platform": "Linux",
                "software": [
                    {"vendor": "bench", "product": p, "version": v}
                    for p, v in {p: v for _, p, v, _ in rows}.items()
                ],
                "findings": [
                    {
                        "cve": cve,
                        "vendor": "bench",
                        "product": package,
                        "installed_version": installed,
                        "fixed_version": fixed,
                    }
                    for cve, package, installed, fixed in rows
                ],
            }
            out.write(("," if device else "") + json.dumps(entry))
        out.write("]}")


def write_grype(path: Path, findings: int) -> None:
    """A Grype ``-o json`` report of one image: 100 matches per package, source and distro last."""
    with path.open("w") as out:
        out.write('{"matches": [')
        for index in range(findings):
            package = f"pkg{index // PER_DEVICE}"
            version = f"1.{index % 7}.0"
            cve = f"CVE-2024-{10000 + index % PER_DEVICE + (index // PER_DEVICE) % 50}"
            match = {
                "vulnerability": {
                    "id": cve,
                    "dataSource": "https://nvd.nist.gov",
                    "namespace": "debian:distro:debian:12",
                    "severity": "High",
                    "urls": [],
                    "description": f"{cve} flaw",
                    "cvss": [
                        {
                            "version": "3.1",
                            "vector": CVSS,
                            "metrics": {"baseScore": 9.8},
                        }
                    ],
                    "fix": {"versions": [f"1.{index % 7}.9"], "state": "fixed"},
                },
                "relatedVulnerabilities": [],
                "matchDetails": [{"type": "exact-direct-match", "matcher": "dpkg-matcher"}],
                "artifact": {
                    "id": f"a{index // PER_DEVICE}",
                    "name": package,
                    "version": version,
                    "type": "deb",
                    "purl": f"pkg:deb/debian/{package}@{version}?distro=debian-12",
                    "cpes": [f"cpe:2.3:a:debian:{package}:{version}:*:*:*:*:*:*:*"],
                },
            }
            out.write(("," if index else "") + json.dumps(match))
        out.write(
            '], "source": {"type": "image", "target": {"userInput": "bench/app:1", '
            '"manifestDigest": "sha256:bench", "architecture": "amd64"}}, '
            '"distro": {"name": "debian", "version": "12"}, '
            '"descriptor": {"name": "grype", "version": "0.80.0", '
            '"timestamp": "2026-11-01T00:00:00Z"}}'
        )


WRITERS = {
    "trivy": write_trivy,
    "grype": write_grype,
    "nessus": write_nessus,
    "native": write_native,
}
SUFFIX = {"trivy": ".json", "grype": ".json", "nessus": ".nessus", "native": ".json"}


PARSER = {
    "trivy": "trivy",
    "grype": "grype",
    "nessus": "nessus",
    "native": "remedium",
    "cyclonedx": "cyclonedx",
}


class AnonPeak:
    """The peak anonymous memory (``RssAnon``: the heap, SQLite's page cache) of this process,
    sampled every 50 ms. Peak RSS also counts the database file's pages SQLite maps into memory
    (``mmap_size``), which the kernel can drop at any time and which grow with the database, not
    with the report."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> float:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, self._read())

    def __enter__(self) -> AnonPeak:
        self.peak_mb = self._read()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._read())


def _children() -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of this process's finished children (the parser process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def parse_one(path: Path, fmt: str) -> dict[str, Any]:
    """Run the parser alone over ``path`` (records counted, nothing written) and measure it."""
    from remedium.importers.limits import open_report
    from remedium.importers.records import DeviceRecord, FindingRecord
    from remedium.importers.registry import get_parser

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    findings = devices = 0
    with open_report(path) as stream:
        _info, records = get_parser(PARSER[fmt]).parse(stream, path.name)
        for record in records:
            if type(record) is FindingRecord:
                findings += 1
            elif type(record) is DeviceRecord:
                devices += 1
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "findings": findings,
        "devices": devices,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mb": baseline,
    }


def run_one(path: Path, url: str, fmt: str, stage: str = "full") -> dict[str, Any]:
    """Import ``path`` into a fresh database at ``url`` (in this process) and measure it."""
    if stage == "parse":
        return parse_one(path, fmt)
    from remedium.db.migrate import upgrade_database
    from remedium.db.session import make_engine, transaction
    from remedium.importers.service import import_report

    engine = make_engine(url)
    upgrade_database(engine)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_cpu_before, _ = _children()
    started, cpu = time.perf_counter(), time.process_time()
    with AnonPeak() as anon, transaction(engine) as session:
        summary = import_report(session, path, format=PARSER[fmt], derive=stage == "full")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    engine.dispose()
    child_cpu, child_rss = _children()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "child_cpu_seconds": child_cpu - child_cpu_before,
        "child_peak_rss_mb": child_rss,
        "findings": summary.findings_added,
        "devices": summary.devices_added,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anon_mb": anon.peak_mb,
        "baseline_rss_mb": baseline,
    }


def run_command(path: Path, url: str, fmt: str, reimport: bool) -> dict[str, Any]:
    """``remedium import FILE --json`` as a user runs it, timed as a whole (this process runs
    only that command, so its children's usage is the command's); with ``reimport``, the same
    command again into the same database."""
    import os

    remedium = str(Path(sys.executable).with_name("remedium"))
    environment = {**os.environ, "REMEDIUM_DATABASE_URL": url}
    # The schema first, so that the timed command measures the import, as on a running system.
    subprocess.run([remedium, "db", "upgrade"], env=environment, check=True, capture_output=True)
    measured: dict[str, Any] = {}
    for label in ("", "reimport_") if reimport else ("",):
        cpu_before, _ = _children()
        started = time.perf_counter()
        result = subprocess.run(
            [remedium, "import", str(path), "--format", fmt, "--json"],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        measured[f"{label}seconds"] = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"remedium import failed for {path.name}:\n{result.stderr[-3000:]}")
        summary = json.loads(result.stdout)
        measured[f"{label}cpu_seconds"] = _children()[0] - cpu_before
        measured[f"{label}findings"] = summary["findings_added"]
        measured[f"{label}findings_updated"] = summary["findings_updated"]
        measured[f"{label}devices"] = summary["devices_added"]
    measured["peak_rss_mb"] = _children()[1]
    return measured


def _spawn(path: Path, url: str, fmt: str, stage: str, reimport: bool = False) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--run",
            str(path),
            "--url",
            url,
            "--format",
            fmt,
            "--stage",
            stage,
            *(["--reimport"] if reimport else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"run failed for {path.name}:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _databases(names: list[str], folder: Path) -> Iterator[tuple[str, Any]]:
    for name in names:
        if name == "sqlite":
            yield name, None
        else:
            from tests.support.pgcluster import start_cluster

            cluster = start_cluster()
            try:
                yield name, cluster
            finally:
                cluster.stop()


def _figure(measured: dict[str, Any], name: str, spec: str) -> str:
    """A figure of ``measured``, or "-" where the stage does not measure it (the command stage
    times the command as a whole: no parser process's own CPU or memory, no sampled memory)."""
    value = measured.get(name)
    return "-" if value is None else format(value, spec)


def main() -> None:
    """Build the files, run every (database, format, size), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--formats", default="trivy,grype,nessus,native")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--stages", default="full,write")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--stage", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--keep", help="build the files in (and reuse them from) this folder")
    parser.add_argument(
        "--inputs",
        choices=("synthetic", "real"),
        default="synthetic",
        help="minimal synthetic records, or real corpus files replicated (realshaped.py)",
    )
    parser.add_argument(
        "--reimport", action="store_true", help="command stage: import each file a second time"
    )
    args = parser.parse_args()
    from harness import machine_line  # beside this script, as realshaped

    if args.run:
        if args.stage == "command":
            measured = run_command(Path(args.run), args.url, PARSER[args.format], args.reimport)
        else:
            measured = run_one(Path(args.run), args.url, args.format, args.stage)
        print(json.dumps(measured))
        return
    if args.inputs == "real":
        import realshaped

        writers: dict[str, Any] = {
            fmt: lambda path, size, fmt=fmt: realshaped.build(fmt, size, path)
            for fmt in realshaped.WRITERS
        }
        suffixes, prefix = realshaped.SUFFIX, "real-"
    else:
        writers, suffixes, prefix = dict(WRITERS), SUFFIX, ""
    if args.formats == parser.get_default("formats") and args.inputs == "real":
        args.formats = ",".join(realshaped.WRITERS)
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    stages = args.stages.split(",")
    with tempfile.TemporaryDirectory(prefix="remedium-bench-") as temp:
        folder = Path(temp)
        built = Path(args.keep) if args.keep else folder
        built.mkdir(parents=True, exist_ok=True)
        files: dict[tuple[str, int], Path] = {}
        for fmt in formats:
            for size in sizes:
                path = built / f"{prefix}{fmt}-{size}{suffixes[fmt]}"
                if args.keep and path.exists():
                    files[(fmt, size)] = path
                    continue
                started = time.perf_counter()
                writers[fmt](path, size)
                files[(fmt, size)] = path
                mb = path.stat().st_size / 1e6
                took = time.perf_counter() - started
                print(f"built {path.name}: {mb:.0f} MB in {took:.0f} s", flush=True)
        header = (
            f"\n{'database':<11}{'stage':<9}{'format':<10}{'findings':>10}{'devices':>9}"
            f"{'seconds':>9}{'findings/s':>12}{'cpu s':>8}{'parser cpu s':>14}"
            f"{'peak RSS MB':>13}{'peak anon MB':>14}{'parser RSS MB':>15}"
        )
        # The machine's speed and load beside the figures (a shared 2-core machine moves them).
        print(f"\n{machine_line()}{header}", flush=True)
        peaks: dict[tuple[str, str, str], list[tuple[float, float]]] = {}

        def report(name: str, stage: str, fmt: str, measured: dict[str, Any]) -> None:
            peaks.setdefault((name, stage, fmt), []).append(
                (measured["peak_rss_mb"], measured.get("peak_anon_mb", measured["peak_rss_mb"]))
            )
            rate = measured["findings"] / measured["seconds"]
            # The Python process's own CPU time: on a shared machine, wall time also counts
            # the waits for a core (and, on PostgreSQL, the server's work, which CPU time omits).
            cpu = measured["cpu_seconds"]
            print(
                f"{name:<11}{stage:<9}{fmt:<10}{measured['findings']:>10}"
                f"{measured['devices']:>9}{measured['seconds']:>9.1f}{rate:>12,.0f}"
                f"{cpu:>8.1f}{_figure(measured, 'child_cpu_seconds', '.1f'):>14}"
                f"{measured['peak_rss_mb']:>13.0f}{_figure(measured, 'peak_anon_mb', '.0f'):>14}"
                f"{_figure(measured, 'child_peak_rss_mb', '.0f'):>15}",
                flush=True,
            )

        if "parse" in stages:
            for fmt in formats:
                for size in sizes:
                    report("-", "parse", fmt, _spawn(files[(fmt, size)], "", fmt, "parse"))
        db_stages = [s for s in stages if s != "parse"]
        for name, cluster in _databases(args.databases.split(",") if db_stages else [], folder):
            for stage in db_stages:
                for fmt in formats:
                    for index, size in enumerate(sizes):
                        if cluster is None:
                            url = f"sqlite:///{folder}/bench-{fmt}-{size}.db"
                        else:
                            from tests.support.pgcluster import create_database

                            url = create_database(cluster, f"bench_{stage}_{fmt}_{index}")
                        measured = _spawn(files[(fmt, size)], url, fmt, stage, args.reimport)
                        report(name, stage, fmt, measured)
                        if "reimport_seconds" in measured:
                            again = {k.removeprefix("reimport_"): v for k, v in measured.items()}
                            again["findings"] = measured["findings"]  # the rate of the same file
                            report(name, "again", fmt, again)
                        if cluster is None:
                            Path(f"{folder}/bench-{fmt}-{size}.db").unlink(missing_ok=True)
                            for suffix in ("-wal", "-shm"):
                                Path(f"{folder}/bench-{fmt}-{size}.db{suffix}").unlink(
                                    missing_ok=True
                                )
        for (name, stage, fmt), values in peaks.items():
            if len(values) > 1:
                print(
                    f"{name} {stage} {fmt}: peak RSS x{values[-1][0] / values[0][0]:.2f}, "
                    f"peak anon x{values[-1][1] / max(values[0][1], 1):.2f} for "
                    f"x{sizes[-1] / sizes[0]:.0f} the findings",
                    flush=True,
                )
        print(machine_line(), flush=True)


if __name__ == "__main__":
    main()
