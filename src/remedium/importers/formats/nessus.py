"""Tenable Nessus ``.nessus`` (NessusClientData_v2) XML reports.

Each ``ReportHost`` is a device (host properties: ``host-ip``, ``host-fqdn``, ``netbios-name``,
``operating-system``); each ``ReportItem`` with ``<cve>`` elements becomes one finding per CVE.
Informational items (severity 0) and items naming no CVE are skipped with the reason.

The affected product is the first CPE of the item's ``<cpe>`` (one CPE a line). Its installed
version is the plugin output's ``Installed version :``, else the one version at which the host's
detected CPEs (host properties ``cpe``, ``cpe-0``, ``cpe-1``…) name that product, else the one
version at which the item's own CPEs name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO

from remedium.importers.formats._xmlstream import (
    CVE_RE,
    Element,
    child_text,
    children,
    cpe_vendor_product,
    cpe_version,
    detected_cpe,
    os_platform,
    parse_datetime,
    peek,
    text,
    walk,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_SEVERITY = {"1": "Low", "2": "Medium", "3": "High", "4": "Critical"}
_INSTALLED = re.compile(r"Installed version\s*:\s*(\S+)", re.IGNORECASE)
_FIXED = re.compile(r"Fixed version\s*:\s*([^\r\n]+)", re.IGNORECASE)
_HOST_CPE_TAG = re.compile(r"^cpe(?:-\d+)?$")


class NessusParser:
    """Nessus v2 XML (``.nessus``) reports."""

    name = "nessus"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for a NessusClientData_v2 document."""
        return b"<NessusClientData_v2" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Stream devices and findings from a Nessus v2 report."""
        head, stream = peek(stream)
        if b"<NessusClientData_v2" not in head:
            raise ReportError(
                "not a Nessus v2 report: no <NessusClientData_v2> root", filename=filename
            )
        info = ReportInfo(format=self.name, source="nessus")
        return info, self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        host = ""
        host_cpes: list[str] = []
        device_done = False
        wanted = frozenset({"HostProperties", "ReportItem"})
        for event, element in walk(
            stream, filename, end_tags=wanted, start_tags=frozenset({"ReportHost"})
        ):
            if event == "start":
                host = element.get("name", "").strip()
                if not host:
                    raise ReportError(
                        "ReportHost without a name", where="ReportHost", filename=filename
                    )
                host_cpes = []
                device_done = False
                continue
            if element.tag.endswith("HostProperties"):
                tags = _tags(element)
                yield _device(host, tags)
                host_cpes = _host_cpes(tags)
                device_done = True
                continue
            if not device_done:
                # A host without properties: still a device, known by its report name.
                yield DeviceRecord(device_ref=host, name=host)
                device_done = True
            yield from _findings(host, element, host_cpes)


def _tags(properties: Element) -> dict[str, str]:
    return {tag.get("name", ""): text(tag) for tag in children(properties, "tag")}


def _host_cpes(tags: dict[str, str]) -> list[str]:
    """The CPEs Nessus detected on the host (``cpe``, ``cpe-0``, ``cpe-1``…; a tag reads
    ``cpe:/a:php:php:5.6.40 -> PHP PHP``)."""
    return [
        value.split()[0]
        for name, value in tags.items()
        if _HOST_CPE_TAG.match(name) and value.split()
    ]


def _device(host: str, tags: dict[str, str]) -> DeviceRecord:
    name = tags.get("host-fqdn") or tags.get("netbios-name") or host
    os_name = (
        tags.get("operating-system", "").splitlines()[0] if tags.get("operating-system") else ""
    )
    return DeviceRecord(
        device_ref=host,
        name=name,
        ip_address=tags.get("host-ip", ""),
        asset_id=tags.get("tenable-uuid") or tags.get("host-uuid", ""),
        os_platform=os_platform(os_name) if os_name else "",
        os_version=os_name,
        last_seen=_host_end(tags),
    )


def _host_end(tags: dict[str, str]) -> datetime | None:
    stamp = tags.get("HOST_END_TIMESTAMP", "")
    if stamp.isdigit():
        return datetime.fromtimestamp(int(stamp), tz=UTC)
    end = tags.get("HOST_END", "")
    parsed = parse_datetime(end)
    if parsed is None and end:
        try:
            # Nessus writes ctime-style dates ("Tue Jun 25 10:39:42 2013"), in the scanner's zone.
            parsed = datetime.strptime(" ".join(end.split()), "%a %b %d %H:%M:%S %Y").replace(
                tzinfo=UTC
            )
        except ValueError:
            return None
    return parsed


def _findings(host: str, item: Element, host_cpes: list[str]) -> Iterator[ImportRecord]:
    plugin, port = item.get("pluginID", "?"), item.get("port", "?")
    where = f"ReportHost {host} / ReportItem pluginID={plugin} port={port}"
    severity = _SEVERITY.get(item.get("severity", "").strip(), "")
    if not severity:
        yield SkippedRecord("informational (severity 0)", where)
        return
    cves = list(dict.fromkeys(text(cve) for cve in children(item, "cve")))
    if not cves:
        yield SkippedRecord("no CVE", where)
        return
    output = child_text(item, "plugin_output")
    fixed = _first(_FIXED, output)
    # <cpe> holds the plugin's CPEs, one a line (several <cpe> elements are read alike).
    item_cpes = [name for cpe in children(item, "cpe") for name in text(cpe).split()]
    vendor, product, _ = cpe_vendor_product(detected_cpe(item_cpes))
    installed = (
        _first(_INSTALLED, output)
        or cpe_version(vendor, product, host_cpes)
        or cpe_version(vendor, product, item_cpes)
    )
    score_text = child_text(item, "cvss3_base_score")
    title = child_text(item, "plugin_name") or item.get("pluginName", "")
    for cve in cves:
        if not CVE_RE.match(cve):
            yield SkippedRecord(f"not a CVE id: {cve!r}", where)
            continue
        yield FindingRecord(
            device_ref=host,
            vulnerability_id=cve,
            vendor=vendor,
            product=product,
            installed_version=installed,
            fixed_version=fixed,
            severity=severity,
            cvss_v3_vector=child_text(item, "cvss3_vector"),
            cvss_v3_score=_float(score_text),
            title=title,
            description=child_text(item, "synopsis"),
        )


def _first(pattern: re.Pattern[str], output: str) -> str:
    match = pattern.search(output)
    return match.group(1).strip() if match else ""


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
