"""Clair reports as clair-scanner writes them (``clair-scanner --report``); see
``docs/formats.md`` (Clair)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import cve_or_own, facts
from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    as_dict,
    json_first,
    json_head_keys,
    json_items,
    looks_like_json,
    seekable,
    severity,
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

_DEVICE_REF = "image"


class ClairParser:
    """clair-scanner JSON: ``{"image", "unapproved", "vulnerabilities": [{featurename,
    featureversion, vulnerability, namespace, severity, fixedby, description, link}]}``."""

    name = "clair"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        return "vulnerabilities" in keys and (
            "unapproved" in keys or ("image" in keys and b'"featurename"' in head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = seekable(stream)
        image = text(json_first(stream, "image", filename))
        stream.seek(0)
        if not image:
            raise ReportError("not a clair-scanner report: no image", filename=filename)
        info = ReportInfo(format=self.name, source="clair")
        return info, self._records(image, json_items(stream, "vulnerabilities.item", filename))

    def _records(self, image: str, vulnerabilities: Iterator[Any]) -> Iterator[ImportRecord]:
        device_done = False
        for index, raw in enumerate(vulnerabilities):
            vuln = as_dict(raw)
            namespace = text(vuln.get("namespace"))  # "ubuntu:18.04", "debian:9", "alpine:v3.9"
            distro, _, release = namespace.partition(":")
            if not device_done:
                yield DeviceRecord(
                    device_ref=_DEVICE_REF,
                    name=image,
                    asset_id=image,
                    os_platform="Linux",
                    os_version=" ".join(p for p in (distro, release) if p),
                )
                device_done = True
            own = text(vuln.get("vulnerability"))
            product = text(vuln.get("featurename"))
            where = f"vulnerabilities[{index}] {own} {product}".strip()
            if not own:
                yield SkippedRecord("vulnerability without an id", where)
                continue
            vulnerability_id = cve_or_own(own, ())
            raw_severity = vuln.get("severity")
            rating = SEVERITY_SPELLINGS.get(raw_severity) if isinstance(raw_severity, str) else ""
            description = text(vuln.get("description"))
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=distro.lower(),
                product=product,
                installed_version=text(vuln.get("featureversion")),
                fixed_version=text(vuln.get("fixedby")),
                severity=rating if rating is not None else severity(raw_severity),
                description=description,
            )
            record = facts(vulnerability_id, description=description)
            if record is not None:
                yield record
        if not device_done:
            yield DeviceRecord(
                device_ref=_DEVICE_REF, name=image, asset_id=image, os_platform="Linux"
            )
