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
        parser = get_parser(name)
        if parser.sniff(head, path.name):
            return parser
    raise ReportError(
        "format not recognised; give it with --format (known: " + ", ".join(sorted(FORMATS)) + ")",
        filename=path.name,
    )
