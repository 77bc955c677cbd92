"""CycloneDX BOMs in JSON and XML: inventory, vulnerabilities, and VEX analysis.

Both encodings are turned into the same stream of plain items (the metadata, each component,
each vulnerability: ``_cyclonedx_items``), read one at a time, and mapped once. See
``docs/formats.md`` (CycloneDX).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_head_keys,
    json_values,
    looks_like_json,
    parse_time,
    peek_first_byte,
    purl_vendor_product,
    record_builder,
    text,
)
from remedium.importers.formats._cyclonedx_items import (
    SUBJECT,
    Component,
    Item,
    Vulnerability,
    cwe_ids,
    rating,
    str_of,
    vulnerability_id,
)
from remedium.importers.formats._cyclonedx_xml import xml_items
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
# The records a large BOM gives by the hundred thousand, built without the frozen dataclass's
# per-field cost (_common.record_builder; the same records).
_new_software = record_builder(SoftwareRecord)
_new_finding = record_builder(FindingRecord)
_new_vulnerability = record_builder(VulnerabilityRecord)
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
                yield "metadata", _json_header(header)
            if prefix.startswith("components"):
                yield "component", _json_component(as_dict(value))
            else:
                yield "vulnerability", _json_vulnerability(as_dict(value))
        else:
            header[prefix] = value
    if not announced:
        yield "metadata", _json_header(header)


def _json_header(header: dict[str, Any]) -> dict[str, Any]:
    """The header with its subject (the metadata's component) read as an item."""
    subject = as_dict(as_dict(header.get("metadata")).get("component"))
    header[SUBJECT] = _json_component(subject) if subject else None
    return header


def _json_component(component: dict[str, Any]) -> Component:
    nested = component.get("components")
    get = component.get
    return (
        str_of(get("type")),
        str_of(get("bom-ref")),
        str_of(get("group")),
        str_of(get("name")),
        str_of(get("version")),
        str_of(get("purl")),
        str_of(get("cpe")),
        tuple(_json_component(as_dict(entry)) for entry in as_list(nested)) if nested else (),
        tuple(_json_vulnerability(as_dict(vuln)) for vuln in as_list(get("_vulnerabilities"))),
    )


def _json_vulnerability(vuln: dict[str, Any]) -> Vulnerability:
    get = vuln.get
    analysis = as_dict(get("analysis"))
    return (
        vulnerability_id(
            str_of(get("id")),
            (str_of(as_dict(ref).get("id")) for ref in as_list(get("references"))),
        ),
        *rating(
            (r.get("score"), r.get("severity"), r.get("method"), r.get("vector"))
            for r in map(as_dict, as_list(get("ratings")))
        ),
        str_of(get("description")),
        str_of(analysis.get("state")),
        str_of(analysis.get("justification")),
        tuple(str_of(as_dict(target).get("ref")) for target in as_list(get("affects"))),
        cwe_ids(as_list(get("cwes"))),
    )


# -- mapping -----------------------------------------------------------------------------------


def _component_identity(component: Component) -> tuple[str, str, str, str]:
    """(vendor, product, version, purl) of a component: the purl's namespace or ecosystem first."""
    _type, _ref, group, name, version, purl = component[:6]
    vendor, product, purl_version = purl_vendor_product(purl) if purl else ("", "", "")
    return (vendor or group.lower(), name or product, version or purl_version, purl)


def _flatten(component: Component) -> Iterator[Component]:
    yield component
    for nested in component[7]:
        yield from _flatten(nested)


class _BomMapper:
    """Maps the item stream of one BOM to records."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        # bom-ref -> identity, kept so vulnerabilities can name the component they affect;
        # it grows with the number of components, not with the number of findings.
        self.refs: dict[str, tuple[str, str, str, str]] = {}

    def device(self, header: dict[str, Any]) -> DeviceRecord:
        subject: Component | None = header.get(SUBJECT)
        vendor, product, version, purl = (
            _component_identity(subject) if subject is not None else ("", "", "", "")
        )
        kind, ref = (subject[0], subject[1]) if subject is not None else ("", "")
        if subject is not None:
            self.refs[ref] = (vendor, product, version, purl)
        name = product or PurePosixPath(self.filename).stem
        return DeviceRecord(
            device_ref=_DEVICE_REF,
            name=name,
            asset_id=purl or ref or str_of(header.get("serialNumber")) or name,
            os_platform="Linux" if kind in ("container", "operating-system") else "Other",
            os_version=version if kind == "operating-system" else "",
        )

    def components(self, component: Component, where: str) -> Iterator[ImportRecord]:
        entries = _flatten(component) if component[7] else (component,)
        for entry in entries:
            identity = _component_identity(entry)
            vendor, product, version, purl = identity
            if not product:
                yield SkippedRecord("component without a name", where)
                continue
            ref = entry[1]
            if ref:
                self.refs[ref] = identity
            if purl:
                self.refs.setdefault(purl, identity)
            # Positional, in the records' field order (tested): keywords cost a third more on
            # each of the hundreds of thousands of records a large BOM gives.
            yield _new_software(
                _DEVICE_REF,  # device_ref
                vendor,
                product,
                version,
                "",  # display_name
                "",  # display_vendor
                purl,
                entry[6],  # cpe
                entry[0] == "operating-system",  # is_operating_system
            )
            for vuln in entry[8]:
                yield from self.vulnerability(vuln, where, component=identity)

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
        vuln: Vulnerability,
        where: str,
        component: tuple[str, str, str, str] | None = None,
    ) -> Iterator[ImportRecord]:
        vulnerability_id, sev, vector, score, description, state, justification, affects, cwes = (
            vuln
        )
        if not vulnerability_id:
            yield SkippedRecord("vulnerability without an id", where)
            return
        if vector or description or sev or cwes or score is not None:
            yield _new_vulnerability(
                vulnerability_id,
                description or None,
                sev or None,  # severity
                vector or None,  # cvss_v3_vector
                score if not vector else None,  # cvss_v3_score
                cwe_ids=cwes,
            )
        # Inside its component (1.0-1.3 extension), a vulnerability affects that component.
        refs = _INSIDE if component is not None else affects or _INSIDE
        for ref in refs:
            if state in _NOT_EXPOSED:
                reason = f"{vulnerability_id}: VEX analysis says {state}"
                yield SkippedRecord(reason + (f" ({justification})" if justification else ""), ref)
                continue
            vendor, product, version, purl = (
                component if component is not None else self._affected(ref)
            )
            yield _new_finding(
                _DEVICE_REF,  # device_ref
                vulnerability_id,
                vendor,
                product,
                version,  # installed_version
                "",  # fixed_version
                purl,
                sev,  # severity
                vector,  # cvss_v3_vector
                score,  # cvss_v3_score
                "",  # title
                description,
                state,  # vex_state
                justification,  # vex_justification
            )


_INSIDE = ("",)


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
