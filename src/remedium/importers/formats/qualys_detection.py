"""Qualys VMDR host list detection output, read with the KnowledgeBase output that maps its QIDs.

The Host List Detection API (``/api/2.0/fo/asset/host/vm/detection/?action=list``, document
``HOST_LIST_VM_DETECTION_OUTPUT``) names each detection by its QID only: the QID's CVEs, title,
CVSS and affected products live in the KnowledgeBase API's output
(``/api/2.0/fo/knowledge_base/vuln/?action=list``, document ``KNOWLEDGE_BASE_VULN_LIST_OUTPUT``).
A detection file alone cannot give a single CVE, so it is refused; remedium reads a zip holding
one or more detection pages and the KnowledgeBase output for their QIDs. The KnowledgeBase members
are read first, keeping one small entry per QID; the detection pages are then streamed host by
host, so memory does not grow with the number of hosts or detections. See ``docs/formats.md``.
"""

from __future__ import annotations

import re
import struct
import weakref
import zipfile
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from remedium.importers.formats._xmlstream import (
    CVE_RE,
    HEAD_BYTES,
    Element,
    child,
    child_text,
    children,
    local,
    os_platform,
    parse_datetime,
    text,
    walk,
)
from remedium.importers.limits import DecompressionBudget, archive_budget, open_member
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

DETECTION_ROOT = b"<HOST_LIST_VM_DETECTION_OUTPUT"
KNOWLEDGE_BASE_ROOT = b"<KNOWLEDGE_BASE_VULN_LIST_OUTPUT"
# Qualys's newer CVE-based detection API; its element names could not be checked against
# Qualys's documentation, so it is recognised only to be refused with a clear message.
CVE_DETECTION_ROOT = b"<HOST_LIST_CVE_VM_DETECTION_OUTPUT"
ZIP_MAGIC = b"PK\x03\x04"

# Qualys severity levels 1-5 in remedium's words (shared with the asset data report layout).
SEVERITY = {"1": "Low", "2": "Low", "3": "Medium", "4": "High", "5": "Critical"}

NEEDS_KNOWLEDGE_BASE = (
    "a Qualys host detection output names QIDs, not CVEs: the Qualys KnowledgeBase output "
    "(KNOWLEDGE_BASE_VULN_LIST_OUTPUT, /api/2.0/fo/knowledge_base/vuln/?action=list&details=All) "
    "for its QIDs must be supplied with it: zip both and import the zip"
)
_REFUSED_ALONE = {
    "detection": NEEDS_KNOWLEDGE_BASE,
    "knowledge_base": (
        "a Qualys KnowledgeBase output describes QIDs, not hosts: zip it with the host detection "
        "output (HOST_LIST_VM_DETECTION_OUTPUT) and import the zip"
    ),
    "cve_detection": (
        "the Qualys CVE-based host detection output (HOST_LIST_CVE_VM_DETECTION_OUTPUT) is not "
        "read: export the QID-based host detection output (HOST_LIST_VM_DETECTION_OUTPUT) and zip "
        "it with the KnowledgeBase output"
    ),
}
TRUNCATED = (
    "truncated listing: every detection page says more hosts follow (RESPONSE/WARNING), "
    "the last page is not in the zip"
)

_RESPONSE_DATETIME = re.compile(rb"<RESPONSE>\s*<DATETIME>\s*([^<\s]+)\s*</DATETIME>")
# A zip member's local header: signature, version, flags, method, time, date, crc, sizes, lengths.
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_ENCRYPTED, _SIZES_AFTER_DATA = 0x1, 0x8
# A HOST's own fields; the same names deeper in the host (tags, cloud metadata) are not its own.
_HOST_FIELDS = frozenset(
    {
        "ID",
        "IP",
        "IPV6",
        "OS",
        "DNS",
        "NETBIOS",
        "QG_HOSTID",
        "LAST_SCAN_DATETIME",
        "LAST_VM_SCANNED_DATE",
    }
)
_WANTED = _HOST_FIELDS | {"DNS_DATA", "TAGS", "DETECTION", "WARNING"}
_CONTAINERS = frozenset({"HOST", "DETECTION_LIST"})


def qualys_asset_id(host_id: str, agent_host_id: str = "") -> str:
    """The asset id of a Qualys host: ``qualys:<host id>``, else ``qualys:<agent host id>``.

    Both Qualys layouts use it, so a host is one device whichever layout reports it; the prefix
    keeps Qualys's numeric host ids apart from other sources' ids (Wazuh agent ids are numbers too).
    """
    value = host_id.strip() or agent_host_id.strip()
    return f"qualys:{value}" if value else ""


@dataclass(frozen=True, slots=True)
class QidFacts:
    """What the KnowledgeBase says about one QID (all remedium keeps of it)."""

    title: str
    severity: str
    cves: tuple[str, ...]
    cvss_v3_vector: str
    cvss_v3_score: float | None
    products: tuple[tuple[str, str], ...]  # (vendor, product) of SOFTWARE_LIST

    def product_on(self, os_name: str) -> tuple[str, str]:
        """The affected (vendor, product) on a host running ``os_name``, ("", "") when unsure.

        Qualys does not say which of a QID's listed products a host has: one listed product is
        taken; of several, the one the host's OS names (``windows_10`` on "Windows 10 ..."), else
        none rather than a guess that would put software on the device it does not have.
        """
        if len(self.products) == 1:
            return self.products[0]
        words = os_name.lower()
        named = [p for p in self.products if words and p[1].replace("_", " ").lower() in words]
        return max(named, key=lambda p: len(p[1])) if named else ("", "")


def _kind(head: bytes) -> str:
    if DETECTION_ROOT in head:
        return "detection"
    if KNOWLEDGE_BASE_ROOT in head:
        return "knowledge_base"
    if CVE_DETECTION_ROOT in head:
        return "cve_detection"
    return ""


def _zipped_heads(head: bytes) -> Iterator[bytes]:
    """The first bytes of each zip member that starts within ``head`` (the zip's first bytes)."""
    offset = 0
    while offset + _LOCAL_HEADER.size <= len(head):
        magic, _v, flags, method, _t, _d, _crc, size, _u, name_len, extra_len = (
            _LOCAL_HEADER.unpack_from(head, offset)
        )
        if magic != ZIP_MAGIC:
            return
        start = offset + _LOCAL_HEADER.size + name_len + extra_len
        data = head[start : start + size] if size else head[start:]
        if not flags & _ENCRYPTED:
            if method == zipfile.ZIP_STORED:
                yield data
            elif method == zipfile.ZIP_DEFLATED:
                try:
                    part = zlib.decompressobj(-15).decompress(data, HEAD_BYTES)
                except zlib.error:
                    part = b""  # not deflate data after all: nothing to recognise
                yield part
        if not size or flags & _SIZES_AFTER_DATA:
            return  # the size follows the data: the next member's header cannot be found
        offset = start + size


def sniff(head: bytes) -> bool:
    """True for a detection or KnowledgeBase output, or a zip whose first members are one."""
    if head.startswith(ZIP_MAGIC):
        return any(_kind(part) in ("detection", "knowledge_base") for part in _zipped_heads(head))
    return bool(_kind(head))


def parse(
    stream: IO[bytes], head: bytes, filename: str
) -> tuple[ReportInfo, Iterator[ImportRecord]]:
    """Read a zip of detection pages and KnowledgeBase output; refuse either document alone.

    ``stream`` must be seekable and at the start of the file; ``head`` is its first bytes.
    """
    if not head.startswith(ZIP_MAGIC):
        kind = _kind(head)
        if not kind:
            raise ReportError(
                "not a Qualys host detection or KnowledgeBase output", filename=filename
            )
        raise ReportError(_REFUSED_ALONE[kind], filename=filename)
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise ReportError(f"not a readable zip ({exc})", filename=filename) from None
    try:
        # Zip bombs: the declared sizes first, then every byte read (importers/limits.py).
        _BUDGETS[archive] = archive_budget(
            stream, [member.file_size for member in archive.infolist()], filename
        )
        detections, knowledge, others = _members(archive, filename)
        if not detections:
            raise ReportError(
                "the zip holds no Qualys host detection output (HOST_LIST_VM_DETECTION_OUTPUT)",
                filename=filename,
            )
        if not knowledge:
            raise ReportError(NEEDS_KNOWLEDGE_BASE, filename=filename)
        qids: dict[str, QidFacts] = {}
        for member in knowledge:
            with _open(archive, member, filename) as member_stream:
                _read_knowledge_base(member_stream, f"{filename}!{member.filename}", qids)
        times = [moment for _member, moment in detections if moment is not None]
    except BaseException:
        archive.close()
        raise
    info = ReportInfo(format="qualys", source="qualys", scanned_at=min(times, default=None))
    pages = [member for member, _moment in detections]
    return info, _records(archive, filename, pages, others, qids)


# The decompression budget of each open archive.
_BUDGETS: weakref.WeakKeyDictionary[zipfile.ZipFile, DecompressionBudget] = (
    weakref.WeakKeyDictionary()
)


def _open(archive: zipfile.ZipFile, member: zipfile.ZipInfo, filename: str) -> IO[bytes]:
    try:
        return open_member(
            archive.open(member), _BUDGETS[archive], "xml", f"{filename}!{member.filename}"
        )
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
        # Encrypted members, unsupported compression, a broken local header.
        raise ReportError(
            f"cannot read this zip member ({exc})", where=member.filename, filename=filename
        ) from None


def _members(
    archive: zipfile.ZipFile, filename: str
) -> tuple[
    list[tuple[zipfile.ZipInfo, datetime | None]], list[zipfile.ZipInfo], list[zipfile.ZipInfo]
]:
    """The detection pages (with their response time), KnowledgeBase outputs and other files."""
    detections: list[tuple[zipfile.ZipInfo, datetime | None]] = []
    knowledge: list[zipfile.ZipInfo] = []
    others: list[zipfile.ZipInfo] = []
    for member in sorted(archive.infolist(), key=lambda m: m.filename):
        if member.is_dir():
            continue
        with _open(archive, member, filename) as member_stream:
            try:
                head = member_stream.read(HEAD_BYTES)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ReportError(
                    f"damaged zip member ({exc})", where=member.filename, filename=filename
                ) from None
        kind = _kind(head)
        if kind == "detection":
            match = _RESPONSE_DATETIME.search(head)
            moment = parse_datetime(match.group(1).decode("ascii", "replace")) if match else None
            detections.append((member, moment))
        elif kind == "knowledge_base":
            knowledge.append(member)
        else:
            others.append(member)
    return detections, knowledge, others


def _read_knowledge_base(stream: IO[bytes], name: str, into: dict[str, QidFacts]) -> None:
    for _event, vuln in walk(stream, name, end_tags=frozenset({"VULN"})):
        qid = child_text(vuln, "QID")
        if not qid:
            continue
        cve_list = child(vuln, "CVE_LIST")
        cves = (
            [child_text(cve, "ID") for cve in children(cve_list, "CVE")]
            if cve_list is not None
            else []
        )
        software = child(vuln, "SOFTWARE_LIST")
        products = (
            [
                (child_text(item, "VENDOR").lower(), child_text(item, "PRODUCT").lower())
                for item in children(software, "SOFTWARE")
            ]
            if software is not None
            else []
        )
        vector, score = _cvss_v3(child(vuln, "CVSS_V3"))
        into[qid] = QidFacts(
            title=child_text(vuln, "TITLE"),
            severity=SEVERITY.get(child_text(vuln, "SEVERITY_LEVEL"), ""),
            cves=tuple(dict.fromkeys(c for c in cves if CVE_RE.match(c))),
            cvss_v3_vector=vector,
            cvss_v3_score=score,
            products=tuple(dict.fromkeys(p for p in products if p[1])),
        )


def _cvss_v3(cvss: Element | None) -> tuple[str, float | None]:
    if cvss is None:
        return "", None
    vector = child_text(cvss, "VECTOR_STRING")
    if vector and not vector.startswith("CVSS:"):
        # Qualys may give the vector without its "CVSS:3.x/" prefix; CVSS3_VERSION says which.
        version = child_text(cvss, "CVSS3_VERSION")
        vector = f"CVSS:{version if version in ('3.0', '3.1') else '3.1'}/{vector}"
    try:
        return vector, float(child_text(cvss, "BASE"))
    except ValueError:
        return vector, None


def _records(
    archive: zipfile.ZipFile,
    filename: str,
    pages: list[zipfile.ZipInfo],
    others: list[zipfile.ZipInfo],
    qids: dict[str, QidFacts],
) -> Iterator[ImportRecord]:
    with archive:
        seen: set[str] = set()
        continued = 0
        for page in pages:
            with _open(archive, page, filename) as member_stream:
                try:
                    more = yield from _detections(
                        member_stream, filename, page.filename, qids, seen
                    )
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise ReportError(
                        f"damaged zip member ({exc})", where=page.filename, filename=filename
                    ) from None
            continued += more
        if continued == len(pages):
            # Only the last page of a listing has no WARNING: the zip lacks it.
            yield SkippedRecord(TRUNCATED, pages[-1].filename)
        for other in others:
            yield SkippedRecord(
                "not a Qualys host detection or KnowledgeBase output", other.filename
            )


def _detections(
    stream: IO[bytes],
    filename: str,
    member: str,
    qids: dict[str, QidFacts],
    seen: set[str],
) -> Generator[ImportRecord, None, bool]:
    """Stream one detection page; return whether it says more hosts follow (a WARNING)."""
    name = f"{filename}!{member}"
    host: dict[str, str] = {}
    tags: list[str] = []
    device: DeviceRecord | None = None
    in_host = in_list = False
    number = 0
    more = False
    yielded: set[tuple[str, str, str]] = set()  # (CVE, vendor, product) found on this host
    for event, element in walk(
        stream, name, end_tags=_WANTED, start_tags=_CONTAINERS, close_tags=_CONTAINERS
    ):
        tag = local(element.tag)
        if event == "start":
            if tag == "HOST":
                host, tags, device, yielded = {}, [], None, set()
                in_host = True
                number += 1
            else:
                in_list = True
            continue
        if event == "close":
            if tag == "DETECTION_LIST":
                in_list = False
                continue
            in_host = False
            if device is None:
                # A host without detections is still a device the listing describes.
                device = _device(host, tags, number, name)
                if device.device_ref not in seen:
                    seen.add(device.device_ref)
                    yield device
            continue
        if tag == "DETECTION":
            if device is None:
                device = _device(host, tags, number, name)
                if device.device_ref not in seen:
                    seen.add(device.device_ref)
                    yield device
            yield from _findings(device, element, qids, member, yielded)
        elif tag == "WARNING":
            more = True
        elif in_list or not in_host:
            continue
        elif tag == "DNS_DATA":
            for part in ("HOSTNAME", "FQDN"):
                host.setdefault(f"DNS_DATA/{part}", child_text(element, part))
        elif tag == "TAGS":
            tags = [child_text(t, "NAME") for t in children(element, "TAG")]
        else:
            host.setdefault(tag, text(element))
    return more


def _device(host: dict[str, str], tags: list[str], number: int, filename: str) -> DeviceRecord:
    asset_id = qualys_asset_id(host.get("ID", ""), host.get("QG_HOSTID", ""))
    ip = host.get("IP") or host.get("IPV6", "")
    name = (
        host.get("DNS_DATA/FQDN")
        or host.get("DNS")
        or host.get("DNS_DATA/HOSTNAME")
        or host.get("NETBIOS")
        or ip
    )
    ref = asset_id or ip or name
    if not ref:
        raise ReportError(
            "HOST with neither ID, IP nor DNS name", where=f"HOST #{number}", filename=filename
        )
    os_name = host.get("OS", "")
    return DeviceRecord(
        device_ref=ref,
        name=name,
        ip_address=ip,
        asset_id=asset_id,
        os_platform=os_platform(os_name) if os_name else "",
        os_version=os_name,
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        last_seen=parse_datetime(
            host.get("LAST_VM_SCANNED_DATE") or host.get("LAST_SCAN_DATETIME", "")
        ),
    )


def _findings(
    device: DeviceRecord,
    detection: Element,
    qids: dict[str, QidFacts],
    member: str,
    yielded: set[tuple[str, str, str]],
) -> Iterator[ImportRecord]:
    qid = child_text(detection, "QID")
    port = child_text(detection, "PORT")
    place = f" ({port}/{child_text(detection, 'PROTOCOL').lower()})" if port else ""
    where = f"{member}: HOST {device.device_ref} / QID {qid}{place}"
    if child_text(detection, "TYPE").lower() == "info":
        yield SkippedRecord("informational (information gathered)", where)
        return
    if child_text(detection, "STATUS").lower() == "fixed":
        yield SkippedRecord("fixed", where)
        return
    if child_text(detection, "IS_DISABLED") == "1":
        yield SkippedRecord("disabled in Qualys", where)
        return
    if child_text(detection, "IS_IGNORED") == "1":
        yield SkippedRecord("ignored in Qualys", where)
        return
    facts = qids.get(qid)
    if facts is None:
        yield SkippedRecord("QID not in the KnowledgeBase output", where)
        return
    if not facts.cves:
        yield SkippedRecord("no CVE", where)
        return
    vendor, product = facts.product_on(device.os_version)
    # The detection's level is the subscription's current one (a Manager may have edited it).
    severity = SEVERITY.get(child_text(detection, "SEVERITY")) or facts.severity
    for cve in facts.cves:
        # Two QIDs (or two ports of one QID) may name the same CVE on a host: one finding.
        if (cve, vendor, product) in yielded:
            continue
        yielded.add((cve, vendor, product))
        yield FindingRecord(
            device_ref=device.device_ref,
            vulnerability_id=cve,
            vendor=vendor,
            product=product,
            severity=severity,
            cvss_v3_vector=facts.cvss_v3_vector,
            cvss_v3_score=facts.cvss_v3_score,
            title=facts.title,
        )
