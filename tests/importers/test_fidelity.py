"""Import fidelity: what a report says is what remedium stores, and nothing is lost or wrongly
fixed (issue 12). Small fixtures of shapes the corpus lacks, the CLI in a subprocess, and an
independent reading of corpus reports with plain ``json`` compared with the parsers' findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from remedium.db.registry import metadata
from remedium.db.session import session_factory
from remedium.importers.records import FindingRecord, ImportRecord, VulnerabilityRecord
from remedium.importers.registry import detect_parser, get_parser
from remedium.importers.service import import_report
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Weakness

FIXTURES = Path(__file__).parent / "fixtures" / "fidelity"
REMEDIUM = Path(sys.executable).with_name("remedium")


def parse(path: Path, fmt: str | None = None) -> list[ImportRecord]:
    parser = get_parser(fmt) if fmt else detect_parser(path)
    with path.open("rb") as stream:
        _info, records = parser.parse(stream, path.name)
        return list(records)


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def row_counts(engine: Engine) -> dict[str, int]:
    with session_factory(engine)() as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in metadata.sorted_tables
        }


# --- Grype: the report's severity, never a default -------------------------------------------


def test_grype_without_source_keeps_each_severity_score_fix_epss_and_cwe() -> None:
    records = parse(FIXTURES / "grype_no_source.json")
    findings = {r.vulnerability_id: r for r in records if isinstance(r, FindingRecord)}
    facts = {r.vulnerability_id: r for r in records if isinstance(r, VulnerabilityRecord)}
    old = findings["CVE-2019-3902"]  # the older cvssV3 object and fixedInVersion
    assert (old.severity, old.cvss_v3_score, old.fixed_version, old.path) == (
        "Critical",
        9.8,
        "4.9",
        "/var/lib/dpkg/status",
    )
    assert old.cvss_v3_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert facts["CVE-2011-3389"].severity == "High"  # CVSS v2 only: the report's rating
    assert findings["CVE-2020-0001"].severity == facts["CVE-2020-0001"].severity == "Unknown"
    epss = facts["CVE-2022-28391"]
    assert (epss.epss, epss.epss_percentile, epss.cwe_ids) == (0.0719, 0.91123, ("CWE-150",))


def test_grype_severities_are_stored_as_the_report_says(session: Session) -> None:
    import_report(session, FIXTURES / "grype_no_source.json", format="grype")
    stored = dict(session.execute(select(Vulnerability.id, Vulnerability.severity)).tuples().all())
    assert stored == {
        "CVE-2019-3902": "Critical",
        "CVE-2011-3389": "High",
        "CVE-2020-0001": "Unknown",
        "CVE-2022-28391": "High",
    }
    epss = session.get(Vulnerability, "CVE-2022-28391")
    assert epss is not None
    assert (epss.epss, epss.cwe_ids) == (0.0719, ["CWE-150"])
    paths = set(session.scalars(select(Weakness.path)))
    assert "/var/lib/dpkg/status" in paths


def test_grype_corpus_severities_match_a_plain_reading(corpus: Path) -> None:
    """Every match of the Grype corpus: the finding's severity, fix and score are the report's
    (independent of the parser: a plain json read)."""
    spelled = {"negligible": "Low", "unknown": "Unknown"}
    for path in sorted((corpus / "grype").glob("*.json")):
        raw = json.loads(path.read_text())
        findings = [r for r in parse(path) if isinstance(r, FindingRecord)]
        assert len(findings) == len(raw["matches"]), path.name
        for match, finding in zip(raw["matches"], findings, strict=True):
            vuln = match["vulnerability"]
            word = str(vuln.get("severity") or "unknown").lower()
            if word != "none":
                assert finding.severity == spelled.get(word, word.title()), (path.name, vuln["id"])
            fixes = (vuln.get("fix") or {}).get("versions") or [vuln.get("fixedInVersion") or ""]
            assert finding.fixed_version == (fixes[0] or ""), (path.name, vuln["id"])
            v3 = [c for c in vuln.get("cvss", []) if str(c.get("version", "")).startswith("3")]
            score = (
                v3[0]["metrics"]["baseScore"] if v3 else (vuln.get("cvssV3") or {}).get("baseScore")
            )
            assert finding.cvss_v3_score == score, (path.name, vuln["id"])


# --- Trivy, Trivy Operator, OSV-Scanner ------------------------------------------------------


@pytest.mark.parametrize("name", ["trivy_k8s_resources.json", "trivy_k8s_findings.json"])
def test_current_trivy_k8s_layouts_are_read(name: str) -> None:
    records = parse(FIXTURES / name)
    findings = [r for r in records if isinstance(r, FindingRecord)]
    assert [(f.device_ref, f.vulnerability_id, f.fixed_version) for f in findings] == [
        ("default/Deployment/web", "CVE-2023-5363", "3.1.4-r0")
    ]
    facts = [r for r in records if isinstance(r, VulnerabilityRecord)]
    assert facts[0].cwe_ids == ("CWE-325",)
    results = [r for r in records if type(r).__name__ == "ConfigurationResultRecord"]
    assert {(r.device_ref, r.configuration_id, r.is_compliant) for r in results} == {
        ("default/Deployment/web", "KSV001", False),
        ("kube-system/Pod/etcd", "KSV012", True),
    }


def test_trivy_operator_scores_without_vector_are_kept(corpus: Path) -> None:
    path = corpus / "trivy_operator" / "dd_trivy_operator_vulnerabilityreport_many.json"
    raw = json.loads(path.read_text())["report"]["vulnerabilities"]
    facts = [r for r in parse(path) if isinstance(r, VulnerabilityRecord)]
    assert [(f.vulnerability_id, f.cvss_v3_score) for f in facts] == [
        (v["vulnerabilityID"], v.get("score")) for v in raw if v.get("score") or v.get("severity")
    ]


def test_osv_fixed_version_comes_from_the_range_holding_the_installed_version(
    tmp_path: Path,
) -> None:
    report = {
        "results": [
            {
                "source": {"path": "/app/Cargo.lock", "type": "lockfile"},
                "packages": [
                    {
                        "package": {
                            "name": "smallvec",
                            "version": "1.6.0",
                            "ecosystem": "crates.io",
                        },
                        "vulnerabilities": [
                            {
                                "id": "GHSA-43w2-9j62-hq99",
                                "aliases": ["CVE-2021-25900"],
                                "affected": [
                                    {
                                        "package": {"name": "smallvec", "ecosystem": "crates.io"},
                                        "ranges": [
                                            {
                                                "type": "SEMVER",
                                                "events": [
                                                    {"introduced": "0.6.3"},
                                                    {"fixed": "0.6.14"},
                                                    {"introduced": "1.0.0"},
                                                    {"fixed": "1.6.1"},
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                        "groups": [{"ids": ["GHSA-43w2-9j62-hq99"]}],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "osv.json"
    path.write_text(json.dumps(report))
    (finding,) = [r for r in parse(path) if isinstance(r, FindingRecord)]
    assert (finding.installed_version, finding.fixed_version) == ("1.6.0", "1.6.1")


# --- CSV exports: complete only when the user says so; header-only refused -------------------


def test_a_csv_export_fixes_nothing_unless_complete(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    first = run(database_url, "import", str(FIXTURES / "nessus_cut.csv"), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["findings_added"] == 2
    # The same export cut after its first row (at a row boundary): reads like a whole file.
    lines = (FIXTURES / "nessus_cut.csv").read_text().splitlines(keepends=True)
    shorter = tmp_path / "nessus_cut.csv"
    shorter.write_text("".join(lines[:2]))
    partial = run(database_url, "import", str(shorter), "--json")
    assert partial.returncode == 0, partial.stderr
    assert json.loads(partial.stdout)["findings_fixed"] == 0
    complete = run(database_url, "import", str(shorter), "--complete", "--json")
    assert complete.returncode == 0, complete.stderr
    assert json.loads(complete.stdout)["findings_fixed"] == 1


def test_a_header_only_csv_is_refused_and_changes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text((FIXTURES / "nessus_cut.csv").read_text().splitlines()[0] + "\n")
    assert run(database_url, "import", str(FIXTURES / "nessus_cut.csv")).returncode == 0
    before = row_counts(engine)
    result = run(database_url, "import", str(path))
    assert result.returncode == 2
    assert "header_only.csv" in result.stdout + result.stderr
    assert "a header and no rows" in result.stdout + result.stderr
    assert row_counts(engine) == before  # no import_run row either


# --- dry run, and an explicit format that reads nothing -------------------------------------


def test_dry_run_prints_what_would_change_and_changes_nothing(
    database_url: str, engine: Engine
) -> None:
    assert run(database_url, "import", str(FIXTURES / "nessus_cut.csv")).returncode == 0
    before = row_counts(engine)
    result = run(
        database_url, "import", str(FIXTURES / "grype_no_source.json"), "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] is True
    assert (data["devices_added"], data["findings_added"]) == (1, 4)
    assert data["imports"][0]["import_id"] is None
    assert row_counts(engine) == before
    shown = run(database_url, "import", str(FIXTURES / "nessus_cut.csv"), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "dry run" in shown.stdout + shown.stderr
    assert "findings added" in shown.stdout + shown.stderr
    assert row_counts(engine) == before


def test_an_explicit_format_that_reads_nothing_is_an_error(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"results": []}))
    result = run(database_url, "import", str(path), "--format", "osv_scanner")
    assert result.returncode == 2
    assert "read nothing" in result.stdout + result.stderr
    assert row_counts(engine)["import_run"] == 0


# --- Files no longer refused: Qualys scan reports, OpenVEX, CycloneDX 1.0-1.3 XML -------------


def test_a_qualys_scan_report_is_read() -> None:
    records = parse(FIXTURES / "qualys_scan.xml")
    findings = [r for r in records if isinstance(r, FindingRecord)]
    assert [(f.device_ref, f.vulnerability_id, f.severity, f.title) for f in findings] == [
        ("198.51.100.7", "CVE-2021-41773", "Critical", "Apache HTTP Server Path Traversal"),
        ("198.51.100.7", "CVE-2021-42013", "Critical", "Apache HTTP Server Path Traversal"),
        ("198.51.100.7", "CVE-2018-15473", "Medium", "OpenSSH Username Enumeration"),
    ]
    devices = [r.device_ref for r in records if type(r).__name__ == "DeviceRecord"]
    assert devices == ["198.51.100.7", "198.51.100.8"]  # the clean host is a device too
    skipped = sorted(r.reason for r in records if type(r).__name__ == "SkippedRecord")
    assert skipped == ["informational (information gathered)", "no CVE"]


def test_openvex_statements_are_applied_like_cyclonedx_vex(corpus: Path) -> None:
    for name in ("dd_openvex_many_vuln.json", "trivy_oci.openvex.json"):
        path = corpus / "vex" / name
        raw = json.loads(path.read_text())["statements"]
        records = parse(path)
        findings = [r for r in records if isinstance(r, FindingRecord)]
        exposed = [s for s in raw if s["status"] in ("affected", "under_investigation")]
        assert sorted((f.vulnerability_id, f.vex_state) for f in findings) == sorted(
            (_vex_name(s), s["status"]) for s in exposed
        )
        not_exposed = {_vex_name(s) for s in raw if s not in exposed}
        skipped = {r.reason.split(":")[0] for r in records if type(r).__name__ == "SkippedRecord"}
        assert skipped == not_exposed


def _vex_name(statement: dict[str, object]) -> str:
    vulnerability = statement["vulnerability"]
    return str(vulnerability["name"] if isinstance(vulnerability, dict) else vulnerability)


def test_cyclonedx_xml_vulnerability_extension_keeps_its_component(corpus: Path) -> None:
    for name in ("dd_cdx_grype.xml", "dd_cdx_dd_1_15_0.xml", "edge/dd_cdx_spec1_lowfirst.xml"):
        path = corpus / "cyclonedx" / name
        tree = ElementTree.parse(path)
        ns = "{http://cyclonedx.org/schema/ext/vulnerability/1.0}"
        wanted = [v.findtext(f"{ns}id") for v in tree.iter(f"{ns}vulnerability")]
        findings = [r for r in parse(path) if isinstance(r, FindingRecord)]
        assert [f.vulnerability_id for f in findings] == wanted
        assert all(f.product for f in findings), name


def test_openvas_findings_match_a_plain_reading_and_none_is_lost(corpus: Path) -> None:
    """One finding per CVE of each result (plain ElementTree read), none skipped for lack of a
    product: the import keeps them (on the NVT's placeholder when no product is known)."""

    path = corpus / "openvas" / "dd_openvas_many_vuln.xml"
    wanted: list[tuple[str, str]] = []
    root = ElementTree.parse(path).getroot()
    for result in root.iter("result"):
        nvt = result.find("nvt")
        if nvt is None or result.find("host") is None:
            continue
        refs = [r.get("id", "") for r in nvt.iter("ref") if r.get("type") == "cve"]
        older = [c.strip() for c in (nvt.findtext("cve") or "").split(",")]
        for cve in dict.fromkeys(c for c in refs + older if c.startswith("CVE-")):
            wanted.append((cve, " ".join((nvt.findtext("name") or "").split())))
    findings = [r for r in parse(path) if isinstance(r, FindingRecord)]
    assert sorted((f.vulnerability_id, f.title) for f in findings) == sorted(wanted)
