"""CycloneDX BOMs in JSON and XML: inventory, vulnerabilities, and VEX analysis.

Both encodings are turned into the same stream of plain items (the metadata, each component,
each vulnerability), read one at a time, and mapped once. See ``docs/formats.md`` (CycloneDX).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    UNRATED,
    as_dict,
    as_list,
    json_head_keys,
    json_values,
    looks_like_json,
    parse_time,
    peek_first_byte,
    purl_vendor_product,
    severity,
    severity_from_score,
    text,
)
from remedium.importers.formats._cyclonedx_xml import Item, xml_items
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

_DEVICE_REF = "subject"
# VEX states that say the product is not exposed: such findings are skipped, with the reason.
_NOT_EXPOSED = {"not_affected", "false_positive", "resolved", "resolved_with_pedigree"}
_LIST_PREFIXES = ("components.item", "vulnerabilities.item")

# -- JSON --------------------------------------------------------------------------------------


def _json_items(stream: IO[bytes], filename: str) -> Iterator[Item]:
    targets = ["bomFormat", "specVersion", "serialNumber", "metadata", *_LIST_PREFIXES]
    header: dict[str, Any] = {}
    announced = False
    for prefix, value in json_values(stream, targets, filename):
        if prefix in _LIST_PREFIXES:
            if not announced:
                announced = True
                yield "metadata", header
            yield (
                ("component" if prefix.startswith("components") else "vulnerability"),
                as_dict(value),
            )
        else:
            header[prefix] = value
    if not announced:
        yield "metadata", header


# -- mapping -----------------------------------------------------------------------------------

_ORDER = {"": 0, "Low": 1, "Medium": 2, "High": 3, "Critical": 4}


def _str(value: object) -> str:
    """``text(value)``, with the common case (a string) first: once per field of every item."""
    return value.strip() if type(value) is str else text(value)


def _severity(value: object) -> str:
    """``severity(value)``, with the spellings scanners write looked up at once."""
    found = SEVERITY_SPELLINGS.get(value) if type(value) is str else None
    return found if found is not None else severity(value)


def _component_identity(component: dict[str, Any]) -> tuple[str, str, str, str]:
    """(vendor, product, version, purl) of a component: the purl's namespace or ecosystem first."""
    purl = _str(component.get("purl"))
    vendor, product, version = purl_vendor_product(purl) if purl else ("", "", "")
    name = _str(component.get("name"))
    return (
        vendor or _str(component.get("group")).lower(),
        name or product,
        _str(component.get("version")) or version,
        purl,
    )


def _flatten(component: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield component
    for nested in as_list(component.get("components")):
        yield from _flatten(as_dict(nested))


def _vulnerability_id(vuln: dict[str, Any]) -> str:
    """The vulnerability's id, or the CVE it references when the id is a vendor's own."""
    own = _str(vuln.get("id"))
    if own.upper().startswith("CVE-"):
        return own
    for ref in as_list(vuln.get("references")):
        ref_id = _str(as_dict(ref).get("id"))
        if ref_id.upper().startswith("CVE-"):
            return ref_id
    return own


def _cwes(vuln: dict[str, Any]) -> tuple[str, ...]:
    """CWE ids of a vulnerability (``cwes``: numbers in CycloneDX 1.4+ and the 1.0 extension)."""
    found: list[str] = []
    for raw in as_list(vuln.get("cwes")):
        value = _str(raw).upper().removeprefix("CWE-")
        if value.isdigit() and f"CWE-{value}" not in found:
            found.append(f"CWE-{value}")
    return tuple(found)


def _rating(vuln: dict[str, Any]) -> tuple[str, str, float | None]:
    """(severity, CVSS v3 vector, score): the v3 rating when present, else the worst rating."""
    best: tuple[str, str, float | None] = ("", "", None)
    unknown = False
    for raw_rating in as_list(vuln.get("ratings")):
        rating = as_dict(raw_rating)
        raw_score = rating.get("score")
        try:
            score = float(raw_score) if raw_score not in (None, "") else None
        except (TypeError, ValueError):
            score = None
        method = _str(rating.get("method")).upper()
        vector = _str(rating.get("vector"))
        raw_severity = rating.get("severity")
        sev = _severity(raw_severity) or (
            severity_from_score(score) if method.startswith("CVSSV3") else ""
        )
        if method.startswith("CVSSV3"):
            if vector and not vector.startswith("CVSS:"):
                vector = ("CVSS:3.1/" if method == "CVSSV31" else "CVSS:3.0/") + vector
            return sev, vector, score
        if _ORDER[sev] > _ORDER[best[0]]:
            best = (sev, "", None)
        elif not best[0] and _str(raw_severity).lower() == "unknown":
            unknown = True
    if not best[0] and unknown:
        return UNRATED, "", None  # CycloneDX's own "unknown", kept (docs/formats.md)
    return best


class _BomMapper:
    """Maps the item stream of one BOM to records."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        # bom-ref -> identity, kept so vulnerabilities can name the component they affect;
        # it grows with the number of components, not with the number of findings.
        self.refs: dict[str, tuple[str, str, str, str]] = {}

    def device(self, header: dict[str, Any]) -> DeviceRecord:
        metadata = as_dict(header.get("metadata"))
        subject = as_dict(metadata.get("component"))
        vendor, product, version, purl = (
            _component_identity(subject) if subject else ("", "", "", "")
        )
        if subject:
            self.refs[_str(subject.get("bom-ref"))] = (vendor, product, version, purl)
        name = product or PurePosixPath(self.filename).stem
        is_container = _str(subject.get("type")) in ("container", "operating-system")
        return DeviceRecord(
            device_ref=_DEVICE_REF,
            name=name,
            asset_id=purl
            or _str(subject.get("bom-ref"))
            or _str(header.get("serialNumber"))
            or name,
            os_platform="Linux" if is_container else "Other",
            os_version=version if _str(subject.get("type")) == "operating-system" else "",
        )

    def components(self, component: dict[str, Any], where: str) -> Iterator[ImportRecord]:
        entries = _flatten(component) if component.get("components") else (component,)
        for entry in entries:
            identity = _component_identity(entry)
            vendor, product, version, purl = identity
            if not product:
                yield SkippedRecord("component without a name", where)
                continue
            ref = _str(entry.get("bom-ref"))
            if ref:
                self.refs[ref] = identity
            if purl:
                self.refs.setdefault(purl, identity)
            yield SoftwareRecord(
                device_ref=_DEVICE_REF,
                vendor=vendor,
                product=product,
                version=version,
                purl=purl,
                cpe=_str(entry.get("cpe")),
                is_operating_system=_str(entry.get("type")) == "operating-system",
            )
            for vuln in as_list(entry.get("_vulnerabilities")):
                yield from self.vulnerability(as_dict(vuln), where, component=identity)

    def _affected(self, ref: str) -> tuple[str, str, str, str]:
        if ref in self.refs:
            return self.refs[ref]
        # A VEX document names components of another BOM: urn:cdx:<serial>/<version>#<bom-ref>.
        local = ref.split("#", 1)[1] if ref.startswith("urn:cdx:") and "#" in ref else ref
        if local in self.refs:
            return self.refs[local]
        if local.startswith("pkg:"):
            vendor, product, version = purl_vendor_product(local)
            return vendor, product, version, local
        return "", "", "", ""

    def vulnerability(
        self,
        vuln: dict[str, Any],
        where: str,
        component: tuple[str, str, str, str] | None = None,
    ) -> Iterator[ImportRecord]:
        vulnerability_id = _vulnerability_id(vuln)
        if not vulnerability_id:
            yield SkippedRecord("vulnerability without an id", where)
            return
        sev, vector, score = _rating(vuln)
        analysis = as_dict(vuln.get("analysis"))
        state = _str(analysis.get("state"))
        justification = _str(analysis.get("justification"))
        description = _str(vuln.get("description"))
        cwes = _cwes(vuln)
        if vector or description or sev or cwes or score is not None:
            yield VulnerabilityRecord(
                vulnerability_id=vulnerability_id,
                description=description or None,
                severity=sev or None,
                cvss_v3_vector=vector or None,
                cvss_v3_score=score if not vector else None,
                cwe_ids=cwes,
            )
        affects = (
            [""]  # inside its component (1.0-1.3 extension)
            if component is not None
            else [_str(as_dict(a).get("ref")) for a in as_list(vuln.get("affects"))] or [""]
        )
        for ref in affects:
            if state in _NOT_EXPOSED:
                reason = f"{vulnerability_id}: VEX analysis says {state}"
                yield SkippedRecord(reason + (f" ({justification})" if justification else ""), ref)
                continue
            vendor, product, version, purl = (
                component if component is not None else self._affected(ref)
            )
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=vendor,
                product=product,
                installed_version=version,
                purl=purl,
                severity=sev,
                cvss_v3_vector=vector,
                cvss_v3_score=score,
                description=description,
                vex_state=state,
                vex_justification=justification,
            )


class CycloneDxParser:
    """CycloneDX 1.x BOMs and VEX documents, JSON or XML, told apart by their first byte."""

    name = "cyclonedx"

    def sniff(self, head: bytes, filename: str) -> bool:
        if looks_like_json(head):
            return '"CycloneDX"' in head.decode("utf-8", "replace") or (
                "bomFormat" in json_head_keys(head)
            )
        return b"http://cyclonedx.org/schema/bom" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        head, items = peek_first_byte(stream)
        source = (
            _json_items(items, filename) if head in (b"{", b"[") else xml_items(items, filename)
        )
        if not head:
            raise ReportError("the file is empty", filename=filename)
        _kind, header = next(source)
        if header.get("bomFormat") not in (None, "CycloneDX") or (
            head == b"["
            or (head == b"{" and "specVersion" not in header and not header.get("metadata"))
        ):
            raise ReportError(
                "not a CycloneDX BOM: bomFormat/specVersion missing", filename=filename
            )
        # Peek at the first list item: a document that opens with vulnerabilities and lists no
        # components is a VEX statement about some products, not a complete scan of them.
        first = next(source, None)
        metadata = as_dict(header.get("metadata"))
        info = ReportInfo(
            format=self.name,
            source=_tool_name(metadata) or "cyclonedx",
            scanned_at=parse_time(metadata.get("timestamp")),
            complete_scan=first is None or first[0] == "component",
        )
        return info, self._records(header, first, source, filename)

    def _records(
        self, header: dict[str, Any], first: Item | None, rest: Iterator[Item], filename: str
    ) -> Iterator[ImportRecord]:
        mapper = _BomMapper(filename)
        yield mapper.device(header)
        if first is None:
            return
        counts = {"component": 0, "vulnerability": 0}
        for kind, item in _chain(first, rest):
            where = f"{kind}s[{counts.get(kind, 0)}]"
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "component":
                yield from mapper.components(item, where)
            elif kind == "vulnerability":
                yield from mapper.vulnerability(item, where)


def _tool_name(metadata: dict[str, Any]) -> str:
    tools = metadata.get("tools")
    entries = (
        as_list(as_dict(tools).get("components")) if isinstance(tools, dict) else as_list(tools)
    )
    for tool in entries:
        name = text(as_dict(tool).get("name"))
        if name:
            return name
    return ""


def _chain(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest
