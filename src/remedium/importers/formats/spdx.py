"""SPDX 2.x JSON documents: an inventory (no vulnerabilities). See ``docs/formats.md`` (SPDX)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_values,
    looks_like_json,
    parse_time,
    peek_first_byte,
    purl_vendor_product,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

_DEVICE_REF = "subject"
_HEADER = (
    "spdxVersion",
    "name",
    "creationInfo",
    "documentDescribes",
    "@context",
    "documentNamespace",
)


def _refs(package: dict[str, Any]) -> tuple[str, str]:
    """(purl, cpe) from a package's external references."""
    purl = cpe = ""
    for raw_ref in as_list(package.get("externalRefs")):
        ref = as_dict(raw_ref)
        kind = text(ref.get("referenceType"))
        locator = text(ref.get("referenceLocator"))
        if kind == "purl" and not purl:
            purl = locator
        elif kind.startswith("cpe") and not cpe:
            cpe = locator
    return purl, cpe


class SpdxParser:
    """SPDX 2.2/2.3 JSON: the document's subject is the device, its other packages the software.

    SPDX 3 (JSON-LD) and tag-value files are recognised and refused with the reason.
    """

    name = "spdx"

    def sniff(self, head: bytes, filename: str) -> bool:
        if looks_like_json(head):
            return b'"spdxVersion"' in head or b"spdx.org/rdf/3" in head
        return head.lstrip().startswith(b"SPDXVersion:")

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        first, stream = peek_first_byte(stream)
        if first == b"S":
            raise ReportError(
                "SPDX tag-value documents are not supported; export the SBOM as SPDX 2.3 JSON",
                filename=filename,
            )
        if first != b"{":
            raise ReportError(
                "not an SPDX JSON document: expected a JSON object", filename=filename
            )
        values = json_values(stream, [*_HEADER, "packages.item"], filename)
        header: dict[str, Any] = {}
        pending: tuple[str, Any] | None = None
        for prefix, value in values:
            if prefix == "packages.item":
                pending = (prefix, value)
                break
            header[prefix] = value
        version = text(header.get("spdxVersion"))
        if version.startswith("SPDX-3") or "@context" in header:
            raise ReportError(
                f"{version or 'SPDX 3'} (JSON-LD) is not supported; "
                "export the SBOM as SPDX 2.3 JSON",
                where="spdxVersion",
                filename=filename,
            )
        if not version.startswith("SPDX-2"):
            raise ReportError("not an SPDX 2 document: spdxVersion missing", filename=filename)
        created = parse_time(as_dict(header.get("creationInfo")).get("created"))
        info = ReportInfo(format=self.name, source="spdx", scanned_at=created)
        return info, self._records(header, pending, values, filename)

    def _records(
        self,
        header: dict[str, Any],
        pending: tuple[str, Any] | None,
        values: Iterator[tuple[str, Any]],
        filename: str,
    ) -> Iterator[ImportRecord]:
        described = {text(d) for d in as_list(header.get("documentDescribes")) if text(d)}
        # The subject is named by documentDescribes; documents that say it only through a
        # DESCRIBES relationship (after the packages) get the document's name instead.
        name = text(header.get("name")) or PurePosixPath(filename).stem
        announced = False
        if not described:
            announced = True
            yield DeviceRecord(
                device_ref=_DEVICE_REF,
                name=name,
                asset_id=text(header.get("documentNamespace")) or name,
                os_platform="Other",
            )
        stream = values if pending is None else _chain(pending, values)
        for index, (_prefix, value) in enumerate(stream):
            package = as_dict(value)
            where = f"packages[{index}]"
            purl, cpe = _refs(package)
            if text(package.get("SPDXID")) in described:
                if not announced:
                    announced = True
                    yield DeviceRecord(
                        device_ref=_DEVICE_REF,
                        name=text(package.get("name")) or name,
                        asset_id=purl or text(header.get("documentNamespace")) or name,
                        os_platform="Other",
                    )
                continue
            product = text(package.get("name"))
            version = text(package.get("versionInfo")) or (
                purl_vendor_product(purl)[2] if purl else ""
            )
            if not product or not version:
                yield SkippedRecord(
                    f"package {product or '(unnamed)'} has no version; cannot be matched", where
                )
                continue
            vendor = purl_vendor_product(purl)[0] if purl else ""
            supplier = text(package.get("supplier"))
            if not vendor and supplier.startswith(("Organization:", "Person:")):
                vendor = supplier.split(":", 1)[1].strip().lower()
            if not announced:
                # documentDescribes named a package the document never lists.
                announced = True
                yield DeviceRecord(
                    device_ref=_DEVICE_REF, name=name, asset_id=name, os_platform="Other"
                )
            yield SoftwareRecord(
                device_ref=_DEVICE_REF,
                vendor=vendor,
                product=product,
                version=version,
                purl=purl,
                cpe=cpe,
            )
        if not announced:
            yield DeviceRecord(
                device_ref=_DEVICE_REF, name=name, asset_id=name, os_platform="Other"
            )


def _chain(first: tuple[str, Any], rest: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    yield first
    yield from rest
