"""The explicit list of report formats, and format detection.

A format is registered by adding one line to ``FORMATS``: its name and the ``module:Class`` of its
parser. Modules are imported when first used, so a broken parser fails loudly, by name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from remedium.importers.records import ReportError, ReportParser

# Order matters for detection: specific formats before generic ones.
FORMATS: dict[str, str] = {
    "remedium": "remedium.importers.formats.native:NativeParser",
    "nessus": "remedium.importers.formats.nessus:NessusParser",
    "openvas": "remedium.importers.formats.openvas:OpenVASParser",
    "qualys": "remedium.importers.formats.qualys:QualysParser",
    "openscap": "remedium.importers.formats.openscap:OpenSCAPParser",
    "wazuh": "remedium.importers.formats.wazuh:WazuhParser",
    "trivy_operator": "remedium.importers.formats.trivy_operator:TrivyOperatorParser",
    "trivy": "remedium.importers.formats.trivy:TrivyParser",
    "grype": "remedium.importers.formats.grype:GrypeParser",
    "osv_scanner": "remedium.importers.formats.osv_scanner:OsvScannerParser",
    "cyclonedx": "remedium.importers.formats.cyclonedx:CycloneDxParser",
    "spdx": "remedium.importers.formats.spdx:SpdxParser",
    "openvex": "remedium.importers.formats.openvex:OpenVexParser",
    "mde": "remedium.importers.formats.mde:MdeParser",
    "nessus_csv": "remedium.importers.formats.nessus_csv:NessusCsvParser",
    "openvas_csv": "remedium.importers.formats.openvas_csv:OpenVASCsvParser",
    "qualys_csv": "remedium.importers.formats.qualys_csv:QualysCsvParser",
    "csv": "remedium.importers.formats.csv_report:CsvReportParser",
    "dependency_check": "remedium.importers.formats.dependency_check:DependencyCheckParser",
    "dependency_track": "remedium.importers.formats.dependency_track:DependencyTrackParser",
    "aws_inspector2": "remedium.importers.formats.aws_inspector2:AwsInspector2Parser",
    "clair": "remedium.importers.formats.clair:ClairParser",
    "twistlock": "remedium.importers.formats.twistlock:TwistlockParser",
    "nexpose": "remedium.importers.formats.nexpose:NexposeParser",
    "pip_audit": "remedium.importers.formats.pip_audit:PipAuditParser",
    "govulncheck": "remedium.importers.formats.govulncheck:GovulncheckParser",
    "npm_audit": "remedium.importers.formats.npm_audit:NpmAuditParser",
    "snyk": "remedium.importers.formats.snyk:SnykParser",
    "dependabot": "remedium.importers.formats.dependabot:DependabotParser",
    "tenable_io": "remedium.importers.formats.tenable_io:TenableIoParser",
    "twistlock_csv": "remedium.importers.formats.twistlock_csv:TwistlockCsvParser",
}

SNIFF_BYTES = 64 * 1024

# Bytes the start of a file must hold (any one of them) for that format's ``sniff`` to recognise
# it: each is what that ``sniff`` looks for. Detection passes over a format none of whose needles
# is there without importing its parser, so recognising a JSON report loads no XML parser
# (docs/imports.md, "Start-up"). A format not listed here is always asked. tests/cli checks, on
# every test fixture and corpus file, that a parser recognises no file lacking its needles.
SNIFF_NEEDS: dict[str, tuple[bytes, ...]] = {
    "remedium": (b"remedium-inventory/1",),
    "nessus": (b"<NessusClientData_v2",),
    "openvas": (b"<report",),
    "qualys": (
        b"<ASSET_DATA_REPORT",
        b"SCAN",
        b"<HOST_LIST_VM_DETECTION_OUTPUT",
        b"<KNOWLEDGE_BASE_VULN_LIST_OUTPUT",
        b"<HOST_LIST_CVE_VM_DETECTION_OUTPUT",
        b"PK\x03\x04",  # a zip of detection pages
    ),
    "openscap": (
        b"http://checklists.nist.gov/xccdf/",
        b"asset-report-collection",
        b"<oval_results",
    ),
    "trivy_operator": (b"aquasecurity.github.io",),
}


def get_parser(name: str) -> ReportParser:
    """The parser registered as ``name``."""
    try:
        target = FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ReportError(f"unknown format {name!r}; known formats: {known}") from None
    module_name, _, class_name = target.partition(":")
    parser_class = getattr(importlib.import_module(module_name), class_name)
    parser: ReportParser = parser_class()
    return parser


def detect_parser(path: Path) -> ReportParser:
    """The parser whose ``sniff`` recognises the start of ``path``."""
    with path.open("rb") as stream:
        head = stream.read(SNIFF_BYTES)
    for name in FORMATS:
        needles = SNIFF_NEEDS.get(name)
        if needles is not None and not any(needle in head for needle in needles):
            continue  # its sniff would say no: not even imported
        parser = get_parser(name)
        if parser.sniff(head, path.name):
            return parser
    raise ReportError(
        "format not recognised; give it with --format (known: " + ", ".join(sorted(FORMATS)) + ")",
        filename=path.name,
    )
