"""Wazuh vulnerability findings and syscollector inventory (JSON).

Vulnerability findings, two shapes:

- the server API (``GET /vulnerability/{agent}``, Wazuh 4.7 and older): ``data.affected_items[]``
  with ``cve``, ``name``/``version`` (the package), ``severity``, ``cvss3_score``, ``condition``
  and, when exported per agent, ``agent_id``/``agent_name``/``agent_ip``;
- the indexer (``wazuh-states-vulnerabilities-*``, Wazuh 4.8+): ``hits.hits[]._source`` with
  ``agent``, ``host.os``, ``package`` and ``vulnerability``.

Inventory, four shapes: the vulnerability scanner's syscollector input (``Start`` +
``data_values``), per-agent package lists (``{"001": [package, ...]}``), per-agent hotfix lists
(``{"1001": [{"hotfix": "KB..."}]}``) and syscollector ``items`` dumps (``metadata`` + ``items``).

A report of one agent may not name it: the API's ``GET /vulnerability/{agent_id}`` puts the agent
in the request URL, not in the items, and the syscollector dumps' ``metadata`` may name none.
Those records get the device reference :data:`~remedium.importers.batches.UNNAMED`: the import
gives them to the device the user names (``--device NAME``), or skips them with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.batches import UNNAMED
from remedium.importers.formats._jsonstream import objects
from remedium.importers.formats._xmlstream import os_platform, peek, severity_from_score
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)

_SEVERITIES = {
    "low": "Low",
    "medium": "Medium",
    "moderate": "Medium",
    "high": "High",
    "critical": "Critical",
}
_LESS_THAN = re.compile(r"less than\s+(\S+)", re.IGNORECASE)
_AGENT_LISTS = re.compile(rb'^\s*\{\s*"\d+"\s*:\s*\[\s*(\{\s*"(hotfix|scan_id|format|name)"|\])')
_SYNC_DUMP = re.compile(rb'"module"\s*:\s*"syscollector"')
_VENDOR_SUFFIXES = re.compile(
    r"[,.]?\s+(corporation|corp\.?|inc\.?|incorporated|ltd\.?|llc|gmbh|co\.)$", re.I
)
_LANGUAGE_TYPES = ("npm", "pypi", "gem", "golang", "cargo", "nuget", "composer")
# A CVE-looking id that is not a CVE (exports with made-up ids exist): refused; other ids
# (GHSA, distribution advisories) are kept as the report's own vulnerability id.
_BAD_CVE = re.compile(r"^CVE-(?!\d{4}-\d{4,}$)")
# purl namespaces for the OS platforms Wazuh names.
_DISTROS = {
    "ubuntu": "ubuntu",
    "debian": "debian",
    "centos": "centos",
    "rhel": "redhat",
    "redhat": "redhat",
    "fedora": "fedora",
    "amzn": "amazon",
    "ol": "oracle",
    "sles": "suse",
    "opensuse": "opensuse",
    "alpine": "alpine",
    "rocky": "rocky",
    "almalinux": "almalinux",
}


def _shape(head: bytes) -> str:
    if b'"affected_items"' in head and (b'"cve"' in head or b"vulnerabilit" in head):
        return "api"
    if b'"_source"' in head and b'"vulnerability"' in head and b"wazuh" in head.lower():
        return "indexer"
    if b'"data_values"' in head and b'"Start"' in head:
        return "vd_input"
    if _SYNC_DUMP.search(head) and b'"items"' in head:
        return "sync_dump"
    if _AGENT_LISTS.match(head):
        return "agent_lists"
    return ""


class WazuhParser:
    """Wazuh vulnerability detector findings and syscollector inventory."""

    name = "wazuh"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for one of the Wazuh JSON shapes described in the module docstring."""
        return bool(_shape(head))

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Stream devices, software and findings from a Wazuh export."""
        head, stream = peek(stream)
        shape = _shape(head)
        if not shape:
            raise ReportError(
                "not a Wazuh vulnerability or syscollector export (expected data.affected_items, "
                "hits.hits[]._source.vulnerability, Start/data_values or per-agent package lists)",
                filename=filename,
            )
        if shape in ("api", "indexer"):
            info = ReportInfo(format=self.name, source="wazuh")
            reader = _api(stream, filename) if shape == "api" else _indexer(stream, filename)
            return info, reader
        # Inventory only: findings are not in these files, so absent findings mean nothing.
        info = ReportInfo(format=self.name, source="wazuh-syscollector", complete_scan=False)
        if shape == "vd_input":
            return info, _vd_input(stream, filename)
        if shape == "sync_dump":
            return info, _sync_dump(stream, filename)
        return info, _agent_lists(stream, filename)


def _api(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    devices: set[str] = set()
    for index, (_path, item) in enumerate(
        objects(stream, filename, lambda p: p == "data.affected_items.item")
    ):
        where = f"data.affected_items[{index}]"
        if not isinstance(item, dict):
            raise ReportError("an affected item is not an object", where=where, filename=filename)
        agent_id, agent_name, agent_ip = (
            str(item.get(k) or "").strip() for k in ("agent_id", "agent_name", "agent_ip")
        )
        # An export of one agent's findings names it only in the request: UNNAMED.
        ref = agent_id or agent_name or agent_ip or UNNAMED
        if ref != UNNAMED and ref not in devices:
            devices.add(ref)
            yield DeviceRecord(
                device_ref=ref,
                name=agent_name or agent_ip or agent_id,
                ip_address=agent_ip,
                asset_id=agent_id,
            )
        cve = str(item.get("cve") or "").strip()
        if not cve or _BAD_CVE.match(cve):
            yield SkippedRecord(f"not a vulnerability id: {cve!r}", where)
            continue
        score = _number(item.get("cvss3_score"))
        fixed = _LESS_THAN.search(str(item.get("condition") or ""))
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=cve,
            product=str(item.get("name") or ""),
            installed_version=str(item.get("version") or ""),
            fixed_version=fixed.group(1) if fixed else "",
            severity=_severity(item.get("severity"), score),
            cvss_v3_score=score or None,
            title=str(item.get("title") or ""),
        )
        yield from _facts(cve, _severity(item.get("severity"), score), score or None)


def _indexer(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    devices: set[str] = set()
    for index, (_path, hit) in enumerate(
        objects(stream, filename, lambda p: p == "hits.hits.item")
    ):
        where = f"hits.hits[{index}]"
        source = hit.get("_source") if isinstance(hit, dict) else None
        if not isinstance(source, dict):
            raise ReportError("a hit has no _source object", where=where, filename=filename)
        agent = _dict(source.get("agent"))
        os_info = _dict(_dict(source.get("host")).get("os"))
        ref = str(agent.get("id") or agent.get("name") or "").strip() or UNNAMED
        if ref != UNNAMED and ref not in devices:
            devices.add(ref)
            yield DeviceRecord(
                device_ref=ref,
                name=str(agent.get("name") or ref),
                ip_address=str(agent.get("ip") or ""),
                asset_id=str(agent.get("id") or ""),
                os_platform=os_platform(str(os_info.get("full") or os_info.get("name") or ""))
                if os_info
                else "",
                os_version=str(os_info.get("version") or ""),
            )
        vulnerability = _dict(source.get("vulnerability"))
        cve = str(vulnerability.get("id") or "").strip()
        if not cve or _BAD_CVE.match(cve):
            yield SkippedRecord(f"not a vulnerability id: {cve!r}", where)
            continue
        package = _dict(source.get("package"))
        vendor, purl = _purl(package, os_info)
        score_info = _dict(vulnerability.get("score"))
        score = _number(score_info.get("base"))
        is_v3 = str(score_info.get("version") or "").startswith("3")
        fixed = _LESS_THAN.search(str(_dict(vulnerability.get("scanner")).get("condition") or ""))
        yield FindingRecord(
            device_ref=ref,
            vulnerability_id=cve,
            vendor=vendor,
            product=str(package.get("name") or ""),
            installed_version=str(package.get("version") or ""),
            fixed_version=fixed.group(1) if fixed else "",
            purl=purl,
            severity=_severity(vulnerability.get("severity"), score),
            cvss_v3_score=score if is_v3 and score else None,
            description=str(vulnerability.get("description") or ""),
            path=str(package.get("path") or ""),
        )
        yield from _facts(
            cve, _severity(vulnerability.get("severity"), score), score if is_v3 and score else None
        )


def _vd_input(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    ref = ""
    os_info: dict[str, Any] = {}
    index = -1
    for path, value in objects(stream, filename, lambda p: p in ("Start", "data_values.item")):
        if path == "Start":
            start = _dict(value)
            ref = str(start.get("agentid") or start.get("hostname") or "").strip()
            if not ref:
                raise ReportError("Start names no agent", where="Start", filename=filename)
            name = str(start.get("hostname") or start.get("agentname") or ref)
            os_name = str(start.get("osname") or "")
            os_info = {"platform": start.get("osplatform"), "name": os_name}
            yield DeviceRecord(
                device_ref=ref,
                name=name,
                asset_id=str(start.get("agentid") or ""),
                os_platform=os_platform(os_name) if os_name else "",
                os_version=str(start.get("osversion") or ""),
                os_architecture=str(start.get("architecture") or ""),
            )
            if os_name:
                yield SoftwareRecord(
                    device_ref=ref,
                    vendor=_vendor(os_name.split(maxsplit=1)[0]),
                    product=_product(os_name),
                    version=str(start.get("osversion") or ""),
                    display_name=os_name,
                    is_operating_system=True,
                )
            continue
        index += 1
        where = f"data_values[{index}]"
        if not ref:
            raise ReportError(
                "package before the Start block that names the agent",
                where=where,
                filename=filename,
            )
        entry = _dict(value)
        if str(entry.get("operation") or "").lower() in ("delete", "deleted"):
            yield SkippedRecord("removed from the inventory (delete operation)", where)
            continue
        yield from _software(ref, _dict(_dict(entry.get("payload")).get("package")), os_info, where)


def _sync_dump(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    ref: str | None = None  # None until the metadata is read
    index = -1
    for path, value in objects(stream, filename, lambda p: p in ("metadata", "items.item")):
        if path == "metadata":
            agent = _dict(_dict(value).get("agent"))
            # A dump whose metadata names no agent describes the device given on import.
            ref = str(agent.get("id") or agent.get("name") or "").strip() or UNNAMED
            if ref != UNNAMED:
                yield DeviceRecord(
                    device_ref=ref,
                    name=str(agent.get("name") or ref),
                    asset_id=str(agent.get("id") or ""),
                )
            continue
        index += 1
        where = f"items[{index}]"
        if ref is None:
            raise ReportError(
                "items before the metadata that says which agent they describe",
                where=where,
                filename=filename,
            )
        item = _dict(value)
        kind = str(item.get("index") or "")
        if not kind.endswith("-packages"):
            yield SkippedRecord(
                f"inventory not used by remedium ({kind or 'unknown index'})", where
            )
            continue
        yield from _software(ref, _dict(_dict(item.get("data")).get("package")), {}, where)


def _agent_lists(stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
    for agent, entries in objects(stream, filename, lambda p: p != "" and "." not in p):
        if isinstance(entries, dict) and "status" in entries:
            # The test tool marks agents whose inventory never arrived ({"status": "NOT_SYNCED"}).
            yield SkippedRecord(
                f"agent inventory not available (status {entries['status']})", agent
            )
            continue
        if not isinstance(entries, list):
            raise ReportError("expected a list per agent", where=agent, filename=filename)
        hotfixes = [
            str(e.get("hotfix")) for e in entries if isinstance(e, dict) and e.get("hotfix")
        ]
        yield DeviceRecord(
            device_ref=agent, name=f"agent {agent}", asset_id=agent, hotfixes=tuple(hotfixes)
        )
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and not entry.get("hotfix"):
                yield from _software(agent, entry, {}, f"{agent}[{index}]")


def _software(
    ref: str, package: dict[str, Any], os_info: dict[str, Any], where: str
) -> Iterator[ImportRecord]:
    name = str(package.get("name") or "").strip()
    version = str(package.get("version") or "").strip()
    if not name or not version:
        yield SkippedRecord("package without a name or version", where)
        return
    vendor, purl = _purl(package, os_info)
    yield SoftwareRecord(
        device_ref=ref,
        vendor=vendor or _vendor(str(package.get("vendor") or "")),
        product=_product(name),
        version=version,
        display_name=name,
        display_vendor=str(package.get("vendor") or "").strip(),
        purl=purl,
        cpe=str(package.get("cpe") or ""),
    )


def _purl(package: dict[str, Any], os_info: dict[str, Any]) -> tuple[str, str]:
    """(vendor, purl) for deb/rpm packages of a known distribution and for language packages;
    ("", "") otherwise (Windows and macOS programs have no purl)."""
    kind = str(package.get("type") or package.get("format") or "").lower()
    distro = _DISTROS.get(str(os_info.get("platform") or "").lower(), "")
    name, version = str(package.get("name") or ""), str(package.get("version") or "")
    if kind in _LANGUAGE_TYPES and name:
        return kind, f"pkg:{kind}/{name}@{version}"
    if kind not in ("deb", "rpm") or not distro or not name:
        return "", ""
    arch = str(package.get("architecture") or "")
    purl = f"pkg:{kind}/{distro}/{name}@{version}" + (f"?arch={arch}" if arch else "")
    return distro, purl


def _facts(cve: str, rating: str, score: float | None) -> Iterator[VulnerabilityRecord]:
    """What the finding says of its vulnerability: the severity, and the CVSS v3 base score
    Wazuh gives without its vector (kept as given)."""
    if rating or score is not None:
        yield VulnerabilityRecord(
            vulnerability_id=cve, severity=rating or None, cvss_v3_score=score
        )


def _severity(value: object, score: float | None) -> str:
    return _SEVERITIES.get(str(value or "").strip().lower(), "") or severity_from_score(
        score or 0.0
    )


def _vendor(value: str) -> str:
    value = value.split("<", 1)[0].strip()
    while True:
        shorter = _VENDOR_SUFFIXES.sub("", value).strip()
        if shorter == value:
            break
        value = shorter
    return re.sub(r"\s+", "_", value.lower())


def _product(value: str) -> str:
    return re.sub(r"\s+", "_", value.strip().lower())


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
