"""Nessus and Tenable vulnerability CSV exports (Nessus, Tenable.sc, Tenable.io / Vulnerability
Management). See ``docs/formats.md`` (Nessus / Tenable CSV).

Each row is one plugin result on one host. A host becomes a device the first time a row names
it; a row becomes one finding per CVE of its CVE cell. Products, installed and fixed versions,
severities and skip reasons follow the XML parser (:mod:`remedium.importers.formats.nessus`),
whose helpers are reused, so a CSV and an XML export of the same scan give the same findings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import IO

from remedium.importers.formats._common import severity as severity_word
from remedium.importers.formats._csvstream import CsvExport, Layout, Row, find_layout, split_list
from remedium.importers.formats._xmlstream import (
    CVE_RE,
    cpe_vendor_product,
    cpe_version,
    detected_cpe,
    os_platform,
    parse_datetime,
)
from remedium.importers.formats.nessus import _FIXED, _INSTALLED, _SEVERITY, _first, _float
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
)

# "Plugin ID,CVE,CVSS,Risk,Host,Protocol,Port,Name,Synopsis,...", with Tenable.io's extra
# columns (IP Address, FQDN, NetBios, OS, Host End, Vulnerability State, ...) in newer exports.
NESSUS = Layout(
    "Nessus",
    markers=("Plugin ID", "Host", "Risk"),
    required=(("Plugin ID",), ("Host",), ("Risk",), ("CVE",)),
)
# "Plugin,Plugin Name,Family,Severity,IP Address,...,DNS Name,NetBIOS Name,...,CPE,CVE,..."
TENABLE_SC = Layout(
    "Tenable.sc",
    markers=("Plugin", "Plugin Name", "IP Address"),
    required=(("Plugin",), ("IP Address",), ("Severity",), ("CVE",)),
)
# The vulnerability export of Tenable.io: "asset.*" and "definition.*" columns, ';'-separated.
TENABLE_IO = Layout(
    "Tenable.io",
    markers=("definition.id", "definition.name"),
    required=(
        ("definition.id",),
        ("asset.id", "asset.display_fqdn", "asset.host_name", "asset.display_ipv4_address"),
        ("severity", "definition.severity"),
        ("definition.cve",),
    ),
)
LAYOUTS = (NESSUS, TENABLE_SC, TENABLE_IO)

# Column names per field, across the three layouts (compared case-insensitively).
_SEVERITY_COLUMNS = {
    "Nessus": ("Risk",),
    "Tenable.sc": ("Severity",),
    "Tenable.io": ("severity", "definition.severity"),
}
_INFORMATIONAL = frozenset({"0", "none", "info", "informational"})
_ASSET_ID = ("Host ID", "asset.id")
_FQDN = ("FQDN", "DNS Name", "asset.display_fqdn", "asset.host_name", "asset.name")
_NETBIOS = ("NetBios", "NetBIOS Name", "asset.netbios_name")
_IP = ("IP Address", "asset.display_ipv4_address", "asset.display_ipv6_address")
_OS = ("OS", "asset.operating_system")
_PLUGIN = ("Plugin ID", "Plugin", "definition.id")
_CVE = ("CVE", "definition.cve")
_TITLE = ("Name", "Plugin Name", "definition.name")
_SYNOPSIS = ("Synopsis", "definition.synopsis")
_OUTPUT = ("Plugin Output", "Plugin Text", "output")
_CPE = ("CPE", "definition.cpe")
_CVSS3_VECTOR = ("CVSS3 Vector", "CVSS V3 Vector", "definition.cvss3.base_vector")
_CVSS3_SCORE = (
    "CVSS3 Base Score",
    "CVSS V3 Base Score",
    "CVSS v3.0 Base Score",
    "definition.cvss3.base_score",
)
_STATE = ("Vulnerability State", "state")


class NessusCsvParser:
    """Nessus / Tenable.sc / Tenable.io vulnerability CSV exports."""

    name = "nessus_csv"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when the first row is the header of one of the Nessus/Tenable layouts."""
        return find_layout(head, LAYOUTS) is not None

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Read the header row, then stream devices and findings row by row."""
        export = CsvExport(stream, filename, LAYOUTS, what="Nessus/Tenable CSV export")
        info = ReportInfo(
            format=self.name, source="nessus", complete_scan=False, may_be_complete=True
        )
        return info, _records(export)


def _records(export: CsvExport) -> Iterator[ImportRecord]:
    severity_columns = _SEVERITY_COLUMNS[export.layout.name]
    seen: set[str] = set()
    for row in export.rows():
        device = _device(row)
        plugin, port = row.get(*_PLUGIN) or "?", row.get("Port", "port") or "?"
        if device is None:
            yield SkippedRecord("row names no host", f"line {row.line} (plugin {plugin})")
            continue
        if device.device_ref not in seen:
            seen.add(device.device_ref)
            yield device
        where = f"line {row.line} (host {device.device_ref}, plugin {plugin}, port {port})"
        yield from _findings(row, device.device_ref, severity_columns, where)


def _device(row: Row) -> DeviceRecord | None:
    """The row's host: known by the Nessus "Host" (a name, else its IP), else its asset id,
    DNS name, NetBIOS name or IP; ``None`` when the row names none."""
    host = row.get("Host")
    asset_id = row.get(*_ASSET_ID)
    fqdn = row.get(*_FQDN)
    netbios = row.get(*_NETBIOS)
    ips = split_list(row.get(*_IP))
    ip = ips[0] if ips else (host if _is_ip(host) else "")
    ref = host or asset_id or fqdn or netbios or ip
    if not ref:
        return None
    os_lines = row.get(*_OS).splitlines()
    os_name = os_lines[0].strip() if os_lines else ""
    return DeviceRecord(
        device_ref=ref,
        name=fqdn or netbios or host or ip,
        ip_address=ip,
        asset_id=asset_id,
        os_platform=os_platform(os_name) if os_name else "",
        os_version=os_name,
        last_seen=parse_datetime(row.get("Host End")),
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _findings(
    row: Row, ref: str, severity_columns: tuple[str, ...], where: str
) -> Iterator[ImportRecord]:
    if row.get(*_STATE).lower() == "fixed":
        yield SkippedRecord("fixed", where)
        return
    raw = row.get(*severity_columns)
    if raw.lower() in _INFORMATIONAL:
        yield SkippedRecord("informational (severity 0)", where)
        return
    severity = _SEVERITY.get(raw) or severity_word(raw)
    if not severity:
        yield SkippedRecord(
            f"severity {raw!r} is not Info, Low, Medium, High or Critical"
            if raw
            else "no severity",
            where,
        )
        return
    cves = split_list(row.get(*_CVE))
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    output = row.get(*_OUTPUT)
    # A cell lists the plugin's CPEs, as the XML's <cpe> does: the first names the product, and
    # gives its version when the output states none (and no other CPE names another version).
    cpes = split_list(row.get(*_CPE))
    vendor, product, _ = cpe_vendor_product(detected_cpe(cpes))
    installed = _first(_INSTALLED, output) or cpe_version(vendor, product, cpes)
    fixed = _first(_FIXED, output)
    vector = row.get(*_CVSS3_VECTOR)
    if vector and not vector.startswith("CVSS:"):
        vector = f"CVSS:3.0/{vector}"  # Tenable.sc and Nessus CSV drop the prefix; Nessus uses 3.0
    score = _float(row.get(*_CVSS3_SCORE))
    if score is not None and not 0.0 <= score <= 10.0:
        score = None  # unreadable: one export template drops the decimal point ("75")
    for cve in cves:
        if not CVE_RE.match(cve):
            yield SkippedRecord(f"not a CVE id: {cve!r}", where)
            continue
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=cve,
            vendor=vendor,
            product=product,
            installed_version=installed,
            fixed_version=fixed,
            severity=severity,
            cvss_v3_vector=vector,
            cvss_v3_score=score,
            title=row.get(*_TITLE),
            description=row.get(*_SYNOPSIS),
        )
