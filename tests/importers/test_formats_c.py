"""The formats of issue 12 ("formats users expect and we refuse"): Dependency-Check,
Dependency-Track, AWS Inspector2, Clair, Twistlock, Nexpose, pip-audit, govulncheck, npm audit,
Snyk, Dependabot and Tenable.io.

Each corpus file is read a second, independent way (plain ``json`` / ElementTree over the raw
report) and compared with what the parser makes of it: ids, products, versions, fixed versions,
severities, scores, EPSS and CWE. The goldens (``test_golden.py``) pin every field; these tests
say why the goldens are right. The hand-written fixtures (modelled on each tool's documented
output) are checked field by field, and a few formats go through the real pipeline: the CLI in
a subprocess, and ``import_report`` on both databases.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remedium.db.session import session_factory
from remedium.importers.batches import UNNAMED
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)
from remedium.importers.registry import detect_parser, get_parser
from remedium.importers.service import import_report
from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, Software, Weakness
from tests.importers.golden import comparable, dump, first_difference, observe, update_requested

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
REMEDIUM = Path(sys.executable).with_name("remedium")
_SEVERITY = {
    "negligible": "Low",
    "low": "Low",
    "moderate": "Medium",
    "medium": "Medium",
    "high": "High",
    "critical": "Critical",
}


def parse(path: Path, fmt: str | None = None) -> list[ImportRecord]:
    parser = get_parser(fmt) if fmt else detect_parser(path)
    with path.open("rb") as stream:
        _info, records = parser.parse(stream, path.name)
        return list(records)


def findings(records: list[ImportRecord]) -> list[FindingRecord]:
    return [r for r in records if isinstance(r, FindingRecord)]


def facts(records: list[ImportRecord]) -> dict[str, VulnerabilityRecord]:
    return {r.vulnerability_id: r for r in records if isinstance(r, VulnerabilityRecord)}


def skipped(records: list[ImportRecord]) -> Counter[str]:
    return Counter(r.reason for r in records if isinstance(r, SkippedRecord))


# --- corpus files, read independently -------------------------------------------------------


def test_clair_corpus(corpus: Path) -> None:
    path = corpus / "clair/dd_clair_many_vul.json"
    raw = json.loads(path.read_text())
    records = parse(path)
    assert detect_parser(path).name == "clair"
    expected = sorted(
        (
            v["vulnerability"],
            v["featurename"],
            v["featureversion"],
            v["fixedby"],
            _SEVERITY[v["severity"].lower()],
        )
        for v in raw["vulnerabilities"]
    )
    got = sorted(
        (f.vulnerability_id, f.product, f.installed_version, f.fixed_version, f.severity)
        for f in findings(records)
    )
    assert got == expected
    assert {f.vendor for f in findings(records)} == {"ubuntu"}  # namespace ubuntu:18.04
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert (device.name, device.os_version) == (raw["image"], "ubuntu 18.04")


def test_twistlock_corpus(corpus: Path) -> None:
    path = corpus / "twistlock/dd_twistlock_many_vulns.json"
    raw = json.loads(path.read_text())["results"][0]
    records = parse(path)
    expected = sorted(
        (
            v["id"],
            v["packageName"].split(" (used in")[0],
            v["packageVersion"],
            _SEVERITY[v["severity"]],
            v.get("cvss"),
            v.get("vector", ""),
        )
        for v in raw["vulnerabilities"]
    )
    got = sorted(
        (
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.severity,
            f.cvss_v3_score,
            f.cvss_v3_vector,
        )
        for f in findings(records)
    )
    assert got == expected
    # The report rates CVE-2018-9234 Low although its CVSS score is 7.5: kept as rated.
    low = [f for f in findings(records) if f.vulnerability_id == "CVE-2018-9234"]
    assert [(f.severity, f.cvss_v3_score) for f in low] == [("Low", 7.5)]
    assert skipped(records) == {"compliance check (not a vulnerability)": len(raw["compliances"])}
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert (device.asset_id, device.os_version) == (raw["id"], raw["distro"])


def test_pip_audit_corpus(corpus: Path) -> None:
    path = corpus / "pip_audit/dd_pip_audit_many_vulns_new.json"
    raw = json.loads(path.read_text())["dependencies"]
    records = parse(path)
    audited = [d for d in raw if "skip_reason" not in d]
    expected_ids = sorted(
        (v["id"], d["name"], d["version"]) for d in audited for v in d.get("vulns", [])
    )
    got = findings(records)
    assert sorted((f.vulnerability_id, f.product, f.installed_version) for f in got) == expected_ids
    assert {f.device_ref for f in got} == {UNNAMED}  # pip-audit names no project
    fixes = {(f.product, f.vulnerability_id): f.fixed_version for f in got}
    for dependency in audited:
        for vuln in dependency.get("vulns", []):
            listed = vuln["fix_versions"]
            fixed = fixes[(dependency["name"], vuln["id"])]
            if len(listed) == 1:
                assert fixed == listed[0]
            elif not listed:
                assert fixed == ""
    # Django 3.2.9: fixes 2.2.25, 3.1.14, 3.2.10 are listed; 3.2.10 is the one for 3.2.x.
    assert fixes[("django", "PYSEC-2021-439")] == "3.2.10"
    assert skipped(records) == {"dependency pip-audit could not audit": len(raw) - len(audited)}
    software = {(s.product, s.version) for s in records if isinstance(s, SoftwareRecord)}
    assert software == {(d["name"], d["version"]) for d in audited}


def test_aws_inspector2_corpus(corpus: Path) -> None:
    path = corpus / "aws_inspector2/dd_aws_inspector2_package_vuln_metadata.json"
    raw = json.loads(path.read_text())["findings"]
    records = parse(path)
    expected = set()
    for finding in raw:
        if finding["type"] != "PACKAGE_VULNERABILITY":
            continue
        details = finding["packageVulnerabilityDetails"]
        adjusted = finding.get("inspectorScoreDetails", {}).get("adjustedCvss", {})
        for resource in finding["resources"]:
            for package in details["vulnerablePackages"]:
                expected.add(
                    (
                        resource["id"],
                        details["vulnerabilityId"],
                        package["name"],
                        package["version"],
                        package.get("fixedInVersion", ""),
                        finding["severity"].title(),
                        adjusted.get("score"),
                        adjusted.get("scoringVector", ""),
                    )
                )
    got = {
        (
            f.device_ref,
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
            f.cvss_v3_vector,
        )
        for f in findings(records)
    }
    assert got == expected
    epss = {
        f["packageVulnerabilityDetails"]["vulnerabilityId"]: f["epss"]["score"]
        for f in raw
        if "epss" in f
    }
    assert {k: v.epss for k, v in facts(records).items() if v.epss is not None} == epss
    assert skipped(records) == {"code vulnerability (static analysis finding, not a package)": 1}
    devices = {r.device_ref: r for r in records if isinstance(r, DeviceRecord)}
    assert set(devices) == {r["id"] for f in raw for r in f["resources"]}
    assert {d.name for d in devices.values()} == {
        "web-user-manager-api-stage-healthCheck-EXAMPLE1ABCD"
    }


def test_dependency_track_corpus(corpus: Path) -> None:
    path = corpus / "dependency_track/dd_deptrack_npm_4.14.1.json"
    raw = json.loads(path.read_text())
    records = parse(path)

    def cve(vuln: dict[str, Any]) -> str:
        if vuln["vulnId"].startswith("CVE-"):
            return str(vuln["vulnId"])
        for alias in vuln.get("aliases", []):
            if alias.get("cveId"):
                return str(alias["cveId"])
        return str(vuln["vulnId"])

    expected = sorted(
        (
            cve(f["vulnerability"]),
            f["component"]["name"],
            f["component"]["version"],
            f["component"]["purl"],
            _SEVERITY[f["vulnerability"]["severity"].lower()],
            f["vulnerability"].get("cvssV3BaseScore"),
            f["vulnerability"].get("cvssV3Vector", ""),
        )
        for f in raw["findings"]
    )
    got = sorted(
        (
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.purl,
            f.severity,
            f.cvss_v3_score,
            f.cvss_v3_vector,
        )
        for f in findings(records)
    )
    assert got == expected
    # Facts per vulnerability, in file order. An export may list one CVE twice (a GitHub
    # advisory aliased to it, and the CVE from NVD, with different EPSS): the later stands.
    given = [r for r in records if isinstance(r, VulnerabilityRecord)]
    assert len(given) == len(raw["findings"])
    for finding, record in zip(raw["findings"], given, strict=True):
        vuln = finding["vulnerability"]
        assert record.vulnerability_id == cve(vuln)
        assert record.epss == vuln.get("epssScore")
        assert record.epss_percentile == vuln.get("epssPercentile")
        assert record.cwe_ids == tuple(f"CWE-{c['cweId']}" for c in vuln["cwes"])
        assert record.cvss_v4_vector == vuln.get("cvssV4Vector")
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert device.asset_id == raw["project"]["uuid"]
    assert device.name == f"{raw['project']['name']} {raw['project']['version']}"


def test_dependency_check_xml_corpus(corpus: Path) -> None:
    path = corpus / "dependency_check/dd_depcheck_PR6439.xml"
    records = parse(path)
    root = ET.parse(path).getroot()
    ns = {"d": root.tag[1:].split("}")[0]}
    expected = set()
    suppressed = 0
    for dependency in root.iterfind("d:dependencies/d:dependency", ns):
        purl = dependency.findtext("d:identifiers/d:package/d:id", "", ns).strip()
        suppressed += len(dependency.findall("d:vulnerabilities/d:suppressedVulnerability", ns))
        for vuln in dependency.findall("d:vulnerabilities/d:vulnerability", ns):
            fixed = ""
            for software in vuln.iterfind("d:vulnerableSoftware/d:software", ns):
                if software.get("vulnerabilityIdMatched") == "true":
                    fixed = software.get("versionEndExcluding", "")
                    break
            score = vuln.findtext("d:cvssV3/d:baseScore", None, ns)
            expected.add(
                (
                    vuln.findtext("d:name", "", ns),
                    purl,
                    _SEVERITY[vuln.findtext("d:severity", "", ns).lower()],
                    float(score) if score else None,
                    fixed,
                )
            )
    got = findings(records)
    by_main = {
        (f.vulnerability_id, f.purl, f.severity, f.cvss_v3_score, f.fixed_version) for f in got
    }
    assert expected <= by_main  # every dependency's own vulnerabilities...
    assert {e[0] for e in expected} == {f.vulnerability_id for f in got}  # ...and no other
    assert skipped(records) == {"suppressed in Dependency-Check": suppressed}
    # CWE ids and v3 vectors rebuilt from the spelled-out metrics, where the version is given.
    bouncy = facts(records)["CVE-2020-15522"]
    assert bouncy.cwe_ids == ("CWE-362",)
    assert bouncy.cvss_v3_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert device.asset_id == "de.virtimo.bpc:karaf"


def test_govulncheck_corpus(corpus: Path) -> None:
    path = corpus / "govulncheck/dd_govulncheck_issue_15033.json"
    decoder = json.JSONDecoder()
    text, at, messages = path.read_text(), 0, []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
    advisories = {m["osv"]["id"]: m["osv"] for m in messages if "osv" in m}

    def cve(osv_id: str) -> str:
        aliases = [a for a in advisories[osv_id].get("aliases", []) if a.startswith("CVE-")]
        return aliases[0] if aliases else osv_id

    expected = {
        (
            cve(m["finding"]["osv"]),
            m["finding"]["trace"][0]["module"],
            m["finding"]["trace"][0]["version"],
            m["finding"].get("fixed_version", ""),
        )
        for m in messages
        if "finding" in m
    }
    records = parse(path)
    got = findings(records)
    assert {(f.vulnerability_id, f.product, f.installed_version, f.fixed_version) for f in got} == (
        expected
    )
    assert len(got) == len(expected)  # one finding per advisory and module, not per trace
    assert all(f.severity == "" for f in got)  # the Go database rates nothing
    found = {m["finding"]["osv"] for m in messages if "finding" in m}
    assert set(facts(records)) == {cve(o) for o in found}  # facts only of what was found
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert device.name == "github.com/alielmi98/golang-expense-tracker-api"


@pytest.mark.parametrize("name", ["dd_nexpose_many_vulns.xml", "dd_nexpose_report_auth.xml"])
def test_nexpose_corpus(corpus: Path, name: str) -> None:
    path = corpus / "nexpose" / name
    root = ET.parse(path).getroot()
    definitions = {
        v.get("id", "").lower(): (
            [
                r.text.strip()
                for r in v.iterfind("references/reference")
                if r.get("source") == "CVE"
            ],
            int(v.get("severity", "0")),
        )
        for v in root.iterfind("VulnerabilityDefinitions/vulnerability")
    }
    vulnerable = re.compile(r"^vulnerable-")
    expected = set()
    no_cve = 0
    for node in root.iterfind("nodes/node"):
        for test in node.iter("test"):
            if not vulnerable.match(test.get("status", "")):
                continue
            cves, severity = definitions[test.get("id", "").lower()]
            no_cve += not cves
            rank = "Critical" if severity >= 8 else "High" if severity >= 4 else "Medium"
            expected |= {(node.get("device-id"), cve, rank) for cve in cves}
    records = parse(path)
    got = {(f.device_ref, f.vulnerability_id, f.severity) for f in findings(records)}
    assert got == expected
    assert skipped(records) == ({"no CVE": no_cve} if no_cve else {})
    devices = {r.device_ref: r for r in records if isinstance(r, DeviceRecord)}
    assert {(d.device_ref, d.ip_address) for d in devices.values()} == {
        (n.get("device-id"), n.get("address")) for n in root.iterfind("nodes/node")
    }


# --- the hand-written fixtures ----------------------------------------------------------------


def test_npm_audit_v2_fixture() -> None:
    records = parse(FIXTURES / "npm_audit/npm-audit-v2.json")
    assert detect_parser(FIXTURES / "npm_audit/npm-audit-v2.json").name == "npm_audit"
    got = {
        (f.vulnerability_id, f.product, f.fixed_version, f.severity, f.cvss_v3_score)
        for f in findings(records)
    }
    assert got == {
        # minimist's fix comes through mkdirp 0.5.6: no fixed version of minimist itself.
        ("GHSA-xvch-5gv4-984h", "minimist", "", "Critical", 9.8),
        ("GHSA-c2qf-rxjj-qqgw", "semver", "7.5.4", "High", 7.5),
        ("GHSA-72xf-g2v4-qvf3", "tough-cookie", "", "Medium", 6.5),
    }
    assert {f.device_ref for f in findings(records)} == {UNNAMED}
    assert facts(records)["GHSA-c2qf-rxjj-qqgw"].cwe_ids == ("CWE-1333",)
    assert skipped(records) == {
        "package vulnerable only through its dependencies (their advisories are kept)": 1
    }


def test_npm_audit_v1_fixture() -> None:
    records = parse(FIXTURES / "npm_audit/npm-audit-v1.json")
    got = {
        (f.vulnerability_id, f.product, f.installed_version, f.fixed_version, f.severity)
        for f in findings(records)
    }
    assert got == {
        ("CVE-2020-8203", "lodash", "4.17.15", "4.17.19", "Low"),
        ("CVE-2021-23337", "lodash", "4.17.15", "4.17.21", "High"),
    }
    assert facts(records)["CVE-2021-23337"].cwe_ids == ("CWE-77",)


def test_snyk_fixture() -> None:
    records = parse(FIXTURES / "snyk/snyk-test.json")
    got = sorted(
        (
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
        )
        for f in findings(records)
    )
    assert got == [
        ("CVE-2020-8203", "lodash", "4.17.15", "4.17.16", "High", 7.0),  # two paths, one finding
        ("SNYK-JS-EXPRESSFILEUPLOAD-473997", "express-fileupload", "0.0.5", "1.1.6-alpha.6",
         "High", 7.5),
        # fixedIn 0.3.18 and 0.6.1: 0.5.0 is in the range fixed by 0.6.1.
        ("SNYK-JS-MARKED-174116", "marked", "0.5.0", "0.6.1", "Medium", 5.3),
    ]  # fmt: skip
    lodash = facts(records)["CVE-2020-8203"]
    assert (lodash.epss, lodash.epss_percentile, lodash.cwe_ids) == (0.01905, 0.91252, ("CWE-400",))
    assert skipped(records) == {"license issue (not a vulnerability)": 1}
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert (device.name, device.asset_id) == (
        "goof (package-lock.json)",
        "snyk:goof/package-lock.json",
    )


def test_snyk_all_projects_list(tmp_path: Path) -> None:
    one = json.loads((FIXTURES / "snyk/snyk-test.json").read_text())
    other = {**one, "projectName": "goof-api", "displayTargetFile": "api/requirements.txt"}
    other["packageManager"] = "pip"
    other["vulnerabilities"] = [one["vulnerabilities"][3] | {"packageManager": "pip"}]
    path = tmp_path / "snyk-all.json"
    path.write_text(json.dumps([one, other]))
    records = parse(path)
    assert detect_parser(path).name == "snyk"
    names = {r.name for r in records if isinstance(r, DeviceRecord)}
    assert names == {"goof (package-lock.json)", "goof-api (api/requirements.txt)"}
    assert len(findings(records)) == 4


def test_dependabot_fixture() -> None:
    records = parse(FIXTURES / "dependabot/dependabot-alerts.json")
    got = {
        (f.device_ref, f.vulnerability_id, f.vendor, f.product, f.fixed_version, f.severity)
        for f in findings(records)
    }
    assert got == {
        ("octo-org/shop", "CVE-2021-45115", "pypi", "django", "3.2.11", "High"),
        ("octo-org/shop", "CVE-2021-3807", "npm", "ansi-regex", "5.0.1", "High"),
    }
    django = facts(records)["CVE-2021-45115"]
    assert (django.epss, django.epss_percentile, django.cwe_ids) == (
        0.00587,
        0.77712,
        ("CWE-400",),
    )
    assert skipped(records) == {"alert dismissed in GitHub (tolerable_risk)": 1}


def test_dependabot_repository_list_names_no_device(tmp_path: Path) -> None:
    alerts = json.loads((FIXTURES / "dependabot/dependabot-alerts.json").read_text())
    for alert in alerts:
        del alert["repository"]  # the repository endpoint's alerts do not name it
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(alerts))
    records = parse(path)
    assert not [r for r in records if isinstance(r, DeviceRecord)]
    assert {f.device_ref for f in findings(records)} == {UNNAMED}


def test_tenable_io_fixture() -> None:
    records = parse(FIXTURES / "tenable_io/vulns-export-chunk-1.json")
    got = {
        (
            f.device_ref[:8],
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
        )
        for f in findings(records)
    }
    assert got == {
        ("0f1c3a8e", "CVE-2023-0286", "openssl", "1.1.1f-1ubuntu2.19", "1.1.1f-1ubuntu2.20",
         "High", 7.4),
        ("0f1c3a8e", "CVE-2023-0215", "openssl", "1.1.1f-1ubuntu2.19", "1.1.1f-1ubuntu2.20",
         "High", 7.4),
        # Recast to Critical in Tenable (default High): kept as the export rates it.
        ("5b9e2d47", "CVE-2017-0143", "", "", "", "Critical", 8.1),
    }  # fmt: skip
    assert skipped(records) == {"informational (severity info)": 1, "fixed in Tenable": 1}
    vectors = {f.cvss_v3_vector for f in findings(records)}
    assert "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H" in vectors
    devices = {r.name: r for r in records if isinstance(r, DeviceRecord)}
    assert devices["FILESRV"].os_platform == "WindowsServer2019"
    assert devices["web-01.corp.example"].ip_address == "10.20.0.11"


def test_dependency_check_json_fixture() -> None:
    records = parse(FIXTURES / "dependency_check/dependency-check-report.json")
    got = {
        (
            f.vulnerability_id,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
            f.cvss_v3_vector,
        )
        for f in findings(records)
    }
    assert got == {
        # The range that matched (2.13.0 to 2.15.0) gives the fix, not the 2.0.1-2.3.1 one.
        ("CVE-2021-44228", "log4j-core", "2.14.1", "2.15.0", "Critical", 10.0,
         "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
        ("CVE-2021-44832", "log4j-core", "2.14.1", "", "Medium", 6.6,
         "CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:H/A:H"),
        # No CVSS version given: the score is kept, no vector is guessed.
        ("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "1.2.6", "Critical", 9.8, ""),
    }  # fmt: skip
    assert facts(records)["CVE-2021-44228"].cwe_ids == ("CWE-20", "CWE-400", "CWE-502", "CWE-917")
    assert skipped(records) == {"suppressed in Dependency-Check": 1}
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert (device.name, device.asset_id) == (
        "inventory-service 1.4.0",
        "com.example:inventory-service",
    )


@pytest.mark.parametrize(
    ("fmt", "fixture"),
    [
        ("npm_audit", "npm_audit/npm-audit-v2.json"),
        ("snyk", "snyk/snyk-test.json"),
        ("dependabot", "dependabot/dependabot-alerts.json"),
        ("tenable_io", "tenable_io/vulns-export-chunk-1.json"),
        ("dependency_check", "dependency_check/dependency-check-report.json"),
    ],
)
def test_a_cut_file_is_refused(tmp_path: Path, fmt: str, fixture: str) -> None:
    data = (FIXTURES / fixture).read_bytes()
    path = tmp_path / Path(fixture).name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReportError) as refused:
        parse(path, fmt)
    assert "malformed JSON" in str(refused.value)
    assert path.name in str(refused.value)


def test_new_parsers_do_not_take_each_others_fixtures() -> None:
    for fixture, fmt in [
        ("npm_audit/npm-audit-v1.json", "npm_audit"),
        ("npm_audit/npm-audit-v2.json", "npm_audit"),
        ("snyk/snyk-test.json", "snyk"),
        ("dependabot/dependabot-alerts.json", "dependabot"),
        ("tenable_io/vulns-export-chunk-1.json", "tenable_io"),
        ("dependency_check/dependency-check-report.json", "dependency_check"),
    ]:
        assert detect_parser(FIXTURES / fixture).name == fmt, fixture


def test_clair_v4_fixture(tmp_path: Path) -> None:
    path = FIXTURES / "clair/clair-v4-vulnerability-report.json"
    raw = json.loads(path.read_text())
    records = parse(path)
    assert detect_parser(path).name == "clair"
    got = {
        (
            f.vulnerability_id,
            f.vendor,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
        )
        for f in findings(records)
    }
    assert got == {
        ("CVE-2023-0286", "ubuntu", "openssl", "1.1.1f-1ubuntu2.16", "1.1.1f-1ubuntu2.17", "High",
         7.4),
        # Clair rates Medium although the CVSS enrichment says 9.8: kept as rated.
        ("CVE-2022-37434", "ubuntu", "zlib1g", "1:1.2.11.dfsg-2ubuntu1.3",
         "1:1.2.11.dfsg-2ubuntu1.5", "Medium", 9.8),
        # normalized_severity Unknown: no severity, never a default.
        ("CVE-2019-18276", "ubuntu", "bash", "5.0-6ubuntu1.2", "", "", None),
    }  # fmt: skip
    (device,) = [r for r in records if isinstance(r, DeviceRecord)]
    assert (device.name, device.os_version) == (raw["manifest_hash"], "Ubuntu 20.04.5 LTS")

    index_report = {k: raw[k] for k in ("manifest_hash", "packages", "distributions")}
    index_path = tmp_path / "index-report.json"
    index_path.write_text(json.dumps(index_report))
    with pytest.raises(ReportError, match="index report"):
        parse(index_path)


def test_twistlock_csv_fixture(tmp_path: Path) -> None:
    path = FIXTURES / "twistlock/prisma-images.csv"
    parser = detect_parser(path)
    assert parser.name == "twistlock_csv"
    with path.open("rb") as stream:
        info, iterator = parser.parse(stream, path.name)
        records = list(iterator)
    assert info.complete_scan is False  # a CSV export cannot show that it is whole
    got = {
        (
            f.vulnerability_id,
            f.vendor,
            f.product,
            f.installed_version,
            f.fixed_version,
            f.severity,
            f.cvss_v3_score,
        )
        for f in findings(records)
    }
    assert got == {
        ("CVE-2022-37434", "alpine", "zlib", "1.2.12-r1", "1.2.12-r2", "Critical", 9.8),
        # The source package stands for its binaries.
        ("CVE-2022-2097", "alpine", "openssl", "1.1.1q-r0", "1.1.1q-r1", "Medium", 5.3),
        # No source package: each binary package listed; rated Low although CVSS says 8.8.
        ("CVE-2022-42898", "debian", "libkrb5-3", "1.18.3-6+deb11u2", "", "Low", 8.8),
        ("CVE-2022-42898", "debian", "libgssapi-krb5-2", "1.18.3-6+deb11u2", "", "Low", 8.8),
        ("CVE-2022-40897", "pypi", "setuptools", "58.1.0", "65.5.1", "Medium", 5.9),
    }
    assert skipped(records) == {"compliance check (not a vulnerability)": 1}
    names = {r.name for r in records if isinstance(r, DeviceRecord)}
    assert names == {"registry.example.com/shop/web:1.8.2", "registry.example.com/shop/api:2.0.0"}

    semicolons = tmp_path / "prisma-semicolon.csv"
    with path.open(newline="") as source, semicolons.open("w", newline="") as target:
        csv.writer(target, delimiter=";").writerows(csv.reader(source))
    assert detect_parser(semicolons).name == "twistlock_csv"
    assert {f.vulnerability_id for f in findings(parse(semicolons))} == {g[0] for g in got}

    header_only = tmp_path / "prisma-header.csv"
    header_only.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(ReportError, match="a header and no rows"):
        parse(header_only)
    cut = tmp_path / "prisma-cut.csv"
    cut.write_text(path.read_text()[: path.read_text().index("CVE-2022-2097") + 40])
    with pytest.raises(ReportError, match="values for 27 columns"):
        parse(cut)


# --- through the pipeline ---------------------------------------------------------------------


def weaknesses(session: Session) -> set[tuple[str, str, str, str, str | None]]:
    rows = session.execute(
        select(
            Device.name,
            Software.product,
            Weakness.vulnerability_id,
            Weakness.installed_version,
            Weakness.fixed_version,
        )
        .join(Weakness, Weakness.device_id == Device.id)
        .join(Software, Software.id == Weakness.software_id)
    ).all()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def test_pipeline_imports_dependency_track_with_epss_and_cwe(
    corpus: Path, session: Session
) -> None:
    path = corpus / "dependency_track/dd_deptrack_npm_4.14.1.json"
    summary = import_report(session, path)
    session.flush()
    # One weakness per (device, product, vulnerability): two versions of a package, or one CVE
    # listed twice, are one weakness.
    distinct = {(f.product, f.vulnerability_id) for f in findings(parse(path))}
    assert (summary.devices_added, summary.findings_added) == (1, len(distinct))
    assert {(row[1], row[2]) for row in weaknesses(session)} == distinct
    brace = session.get(Vulnerability, "CVE-2026-25547")
    assert brace is not None
    assert (brace.epss, brace.epss_percentile, brace.cwe_ids) == (0.0002, 0.05566, ["CWE-1333"])
    again = import_report(session, path)
    assert (again.devices_added, again.findings_added, again.installed_added) == (0, 0, 0)


def test_pipeline_imports_pip_audit_on_the_given_device(corpus: Path, session: Session) -> None:
    path = corpus / "pip_audit/dd_pip_audit_many_vulns_new.json"
    summary = import_report(session, path, device_name="build-agent-7")
    session.flush()
    assert summary.findings_added == 7
    placed = weaknesses(session)
    assert ("build-agent-7", "django", "PYSEC-2021-439", "3.2.9", "3.2.10") in placed
    assert {row[0] for row in placed} == {"build-agent-7"}


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_imports_the_new_formats(corpus: Path, database_url: str, engine: Engine) -> None:
    files = [
        corpus / "clair/dd_clair_many_vul.json",
        corpus / "twistlock/dd_twistlock_many_vulns.json",
        corpus / "dependency_check/dd_depcheck_PR6439.xml",
        corpus / "govulncheck/dd_govulncheck_issue_15033.json",
        FIXTURES / "snyk/snyk-test.json",
        FIXTURES / "tenable_io/vulns-export-chunk-1.json",
    ]
    result = run(database_url, "import", *map(str, files), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [i["format"] for i in summary["imports"]] == [
        "clair",
        "twistlock",
        "dependency_check",
        "govulncheck",
        "snyk",
        "tenable_io",
    ]
    reasons = {s["reason"]: s["count"] for s in summary["skipped"]}
    assert reasons["suppressed in Dependency-Check"] == 8
    assert reasons["license issue (not a vulnerability)"] == 1
    with session_factory(engine)() as session:
        placed = weaknesses(session)
        names = {row[0] for row in placed}
        assert "default-docker-3rdparty.bahnhub.tech.rz.db.de:443/ubuntu:bionic-20190912.1" in names
        assert (
            "goof (package-lock.json)",
            "marked",
            "SNYK-JS-MARKED-174116",
            "0.5.0",
            "0.6.1",
        ) in (placed)
        assert ("web-01.corp.example", "openssl", "CVE-2023-0286", "1.1.1f-1ubuntu2.19",
                "1.1.1f-1ubuntu2.20") in placed  # fmt: skip
        log4j = session.get(Vulnerability, "CVE-2020-15522")
        assert log4j is not None
        assert log4j.cvss_v3_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"

    forced = run(database_url, "import", str(FIXTURES / "snyk/snyk-test.json"), "--format",
                 "clair")  # fmt: skip
    assert forced.returncode != 0
    assert "snyk-test.json" in forced.stderr + forced.stdout


NEW_FORMATS = [
    "aws_inspector2",
    "clair",
    "dependabot",
    "dependency_check",
    "dependency_track",
    "govulncheck",
    "nexpose",
    "npm_audit",
    "pip_audit",
    "snyk",
    "tenable_io",
    "twistlock",
    "twistlock_csv",
]


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_a_file_of_another_format_given_with_format_is_an_error(tmp_path: Path, fmt: str) -> None:
    """``--format X`` on a file that is not X: refused, never "nothing imported"."""
    others = [
        FIXTURES / "snyk/snyk-test.json",
        FIXTURES / "tenable_io/vulns-export-chunk-1.json",
    ]
    path = others[1] if fmt == "snyk" else others[0]
    with pytest.raises(ReportError) as refused:
        parse(path, fmt)
    assert path.name in str(refused.value)


# --- goldens of the hand-written fixtures (the corpus files have theirs in golden/) ----------

FIXTURE_GOLDEN = HERE / "golden_fixtures"
GOLDEN_FIXTURES = [
    "clair/clair-v4-vulnerability-report.json",
    "dependabot/dependabot-alerts.json",
    "dependency_check/dependency-check-report.json",
    "npm_audit/npm-audit-v1.json",
    "npm_audit/npm-audit-v2.json",
    "snyk/snyk-test.json",
    "tenable_io/vulns-export-chunk-1.json",
    "twistlock/prisma-images.csv",
]


@pytest.mark.parametrize("relative", GOLDEN_FIXTURES)
def test_fixture_matches_its_golden(relative: str) -> None:
    """Refresh on purpose, as the corpus goldens: ``REMEDIUM_GOLDEN_UPDATE=snyk,...``."""
    header, *lines = observe(FIXTURES / relative)
    actual = [{"file": relative, **header}, *lines]
    target = FIXTURE_GOLDEN / f"{relative}.jsonl"
    if update_requested(relative):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump(actual), encoding="utf-8")
    assert target.is_file(), f"no golden for {relative}"
    expected = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert comparable(expected) == comparable(actual), first_difference(expected, actual)
