"""OpenVEX documents (``https://openvex.dev/ns``): VEX statements about products, applied like a
CycloneDX VEX document's analysis (``cyclonedx.py``). See ``docs/formats.md`` (OpenVEX).

A statement says of one vulnerability and some products (each optionally with the packages
inside it, ``subcomponents``) that they are ``not_affected``, ``affected``, ``fixed`` or
``under_investigation``. ``not_affected`` and ``fixed`` are skipped with the reason (the product is
not exposed); ``affected`` and ``under_investigation`` become findings carrying the status. A
document is never a complete scan: it fixes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import parse_qs, unquote

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_values,
    looks_like_json,
    parse_time,
    purl_vendor_product,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_NOT_EXPOSED = {"not_affected", "fixed"}
_HEADER = ("@context", "@id", "author", "timestamp", "version")
_DOCUMENT = "document"  # the device of statements whose products have no subcomponents


class OpenVexParser:
    """OpenVEX JSON documents (v0.0.1 and v0.2.0)."""

    name = "openvex"

    def sniff(self, head: bytes, filename: str) -> bool:
        return looks_like_json(head) and b"openvex.dev/ns" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        values = json_values(stream, [*_HEADER, "statements.item"], filename)
        header: dict[str, Any] = {}
        first: Any = None
        for prefix, value in values:
            if prefix == "statements.item":
                first = value
                break
            header[prefix] = value
        if "openvex" not in text(header.get("@context")):
            raise ReportError(
                "not an OpenVEX document: no @context of https://openvex.dev/ns",
                filename=filename,
            )
        info = ReportInfo(
            format=self.name,
            source=text(header.get("author")) or "openvex",
            scanned_at=parse_time(header.get("timestamp")),
            complete_scan=False,  # statements about some products, not a scan of them
        )
        return info, self._records(header, first, values, filename)

    def _records(
        self, header: dict[str, Any], first: Any, values: Iterator[tuple[str, Any]], filename: str
    ) -> Iterator[ImportRecord]:
        if first is None:
            return
        devices: set[str] = set()
        statements = _chain([("statements.item", first)], values)
        for index, (_prefix, statement) in enumerate(statements):
            yield from _statement(
                as_dict(statement), f"statements[{index}]", header, filename, devices
            )


def _chain(
    first: list[tuple[str, Any]], rest: Iterator[tuple[str, Any]]
) -> Iterator[tuple[str, Any]]:
    yield from first
    yield from rest


def _id(value: object) -> str:
    return text(as_dict(value).get("@id")) if isinstance(value, dict) else text(value)


def _statement(
    statement: dict[str, Any],
    where: str,
    header: dict[str, Any],
    filename: str,
    devices: set[str],
) -> Iterator[ImportRecord]:
    vulnerability = statement.get("vulnerability")
    vulnerability_id = (
        text(as_dict(vulnerability).get("name")) or text(as_dict(vulnerability).get("@id"))
        if isinstance(vulnerability, dict)
        else text(vulnerability)
    )
    if not vulnerability_id:
        yield SkippedRecord("statement without a vulnerability", where)
        return
    status = text(statement.get("status")).lower()
    justification = text(statement.get("justification"))
    # v0.0.1 put subcomponents on the statement; v0.2.0 puts them on each product.
    shared = [_id(s) for s in as_list(statement.get("subcomponents"))]
    for product in as_list(statement.get("products")):
        product_id = _id(product)
        packages = [_id(s) for s in as_list(as_dict(product).get("subcomponents"))] or shared
        if status in _NOT_EXPOSED:
            reason = f"{vulnerability_id}: VEX statement says {status}"
            for _ in packages or [product_id]:
                yield SkippedRecord(
                    reason + (f" ({justification})" if justification else ""), product_id
                )
            continue
        if packages:
            device_ref = product_id
            if device_ref not in devices:
                devices.add(device_ref)
                yield _product_device(product_id)
        else:
            device_ref, packages = _DOCUMENT, [product_id]
            if device_ref not in devices:
                devices.add(device_ref)
                name = PurePosixPath(filename).stem
                yield DeviceRecord(
                    device_ref=_DOCUMENT, name=name, asset_id=text(header.get("@id")) or name
                )
        for package in packages:
            if not package.startswith("pkg:"):
                yield SkippedRecord("product that is not a package URL", where)
                continue
            vendor, name, version = purl_vendor_product(package)
            yield FindingRecord(
                device_ref=device_ref,
                vulnerability_id=vulnerability_id,
                vendor=vendor,
                product=name,
                installed_version=version,
                purl=package,
                vex_state=status,
                vex_justification=justification,
            )


def _product_device(product_id: str) -> DeviceRecord:
    """A product holding packages (an image, ``pkg:oci/...``) as a device: named by its
    ``repository_url`` when the purl gives one, else by the purl's name."""
    body, _, query = product_id.partition("?")
    repository = parse_qs(query).get("repository_url", [""])[0]
    _vendor, name, version = purl_vendor_product(body) if body.startswith("pkg:") else ("", "", "")
    shown = unquote(repository) or name or product_id
    return DeviceRecord(
        device_ref=product_id,
        name=shown + (f"@{version}" if version and repository else ""),
        asset_id=product_id,
        os_platform="Linux" if body.startswith("pkg:oci/") else "",
    )
