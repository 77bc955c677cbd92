"""Grype JSON reports (``grype -o json``). See ``docs/formats.md`` (Grype) for the fields mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    FactsFilter,
    as_dict,
    as_list,
    ecosystem_vendor,
    json_first,
    json_head_keys,
    json_items,
    looks_like_json,
    parse_time,
    purl_vendor_product,
    seekable,
    severity,
    severity_from_score,
    text,
)
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

_DEVICE_REF = "source"


_TAIL_BYTES = 2 * 1024 * 1024
_TAIL_CHECKS = {"source": ("type",), "distro": ("name",), "descriptor": ("name", "timestamp")}


def _tail_objects(stream: IO[bytes]) -> dict[str, dict[str, Any]]:
    """``source``, ``distro`` and ``descriptor`` read from the end of the file.

    Grype writes them after the matches; decoding them from the last bytes saves a pass over
    a file that may hold millions of matches. A key missing here is read by a full pass.
    """
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(max(0, size - _TAIL_BYTES))
    tail = stream.read().decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    found: dict[str, dict[str, Any]] = {}
    for key, required in _TAIL_CHECKS.items():
        for match in reversed(list(re.finditer(rf'"{key}"\s*:\s*', tail))):
            try:
                value, _end = decoder.raw_decode(tail, match.end())
            except ValueError:
                continue
            if isinstance(value, dict) and any(k in value for k in required):
                found[key] = value
                break
    return found


def _cvss_v3(vuln: dict[str, Any]) -> tuple[str, float | None]:
    for entry in as_list(vuln.get("cvss")):
        if type(entry) is not dict:
            continue
        if text(entry.get("version")).startswith("3"):
            score = as_dict(entry.get("metrics")).get("baseScore")
            return text(entry.get("vector")), float(score) if isinstance(
                score, int | float
            ) else None
    return "", None


def _vulnerability_id(match: dict[str, Any]) -> str:
    """The match's id, or the CVE it is related to when Grype matched a GHSA/distro advisory.

    remedium (like Microsoft Defender) keys weaknesses on CVE ids where one exists.
    """
    own = text(as_dict(match.get("vulnerability")).get("id"))
    if own.upper().startswith("CVE-"):
        return own
    for related in as_list(match.get("relatedVulnerabilities")):
        related_id = text(as_dict(related).get("id"))
        if related_id.upper().startswith("CVE-"):
            return related_id
    return own


class GrypeParser:
    """Grype ``-o json``: one scanned source (image, directory, SBOM) and its ``matches``."""

    name = "grype"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        return "matches" in keys and (
            b'"matchDetails"' in head or "source" in keys or "descriptor" in keys
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        # Grype writes ``source`` and ``distro`` after the matches, but devices must come
        # before their findings: read those two small objects first (ijson skips the rest in C).
        stream = seekable(stream)
        tail = _tail_objects(stream)
        found: dict[str, dict[str, Any]] = {}
        for key in ("source", "distro", "descriptor"):
            if key in tail:
                found[key] = tail[key]
            else:
                # Not in the last bytes (an unusual key order): one more pass, skipped in C.
                stream.seek(0)
                found[key] = as_dict(json_first(stream, key, filename))
        stream.seek(0)
        source, distro, descriptor = found["source"], found["distro"], found["descriptor"]
        if not source and not descriptor:
            raise ReportError("not a Grype report: no source or descriptor", filename=filename)
        info = ReportInfo(
            format=self.name,
            source="grype",
            scanned_at=parse_time(descriptor.get("timestamp")),
        )
        return info, self._records(stream, filename, source, distro)

    def _records(
        self, stream: IO[bytes], filename: str, source: dict[str, Any], distro: dict[str, Any]
    ) -> Iterator[ImportRecord]:
        yield _device(source, distro, filename)
        seen_packages: set[tuple[str, str, str]] = set()
        facts = FactsFilter()
        # Each match is built as a dict by ijson's C code; the Python work per match is kept to
        # plain dict lookups (this loop runs a million times for a large image).
        for index, value in enumerate(json_items(stream, "matches.item", filename)):
            match = value if type(value) is dict else {}
            artifact = match.get("artifact")
            if type(artifact) is not dict:
                artifact = {}
            vuln = match.get("vulnerability")
            if type(vuln) is not dict:
                vuln = {}
            vulnerability_id = _vulnerability_id(match)
            if not vulnerability_id:
                yield SkippedRecord("match without a vulnerability id", f"matches[{index}]")
                continue
            purl = _str(artifact.get("purl"))
            vendor = (_purl_vendor(purl) if purl else "") or ecosystem_vendor(
                _str(artifact.get("type"))
            )
            product, version = _str(artifact.get("name")), _str(artifact.get("version"))
            # Grype lists each package once per match; the installed package is recorded once.
            key = (vendor, product, version)
            if product and key not in seen_packages:
                seen_packages.add(key)
                cpes = as_list(artifact.get("cpes"))
                yield SoftwareRecord(
                    device_ref=_DEVICE_REF,
                    vendor=vendor,
                    product=product,
                    version=version,
                    purl=purl,
                    cpe=text(cpes[0]) if cpes else "",
                )
            vector, score = _cvss_v3(vuln)
            fix = vuln.get("fix")
            fixed = ""
            if type(fix) is dict:
                for candidate in as_list(fix.get("versions")):
                    fixed = text(candidate)
                    if fixed:
                        break
            description = _str(vuln.get("description"))
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=vendor,
                product=product,
                installed_version=version,
                fixed_version=fixed,
                purl=purl,
                severity=severity(vuln.get("severity")) or severity_from_score(score),
                cvss_v3_vector=vector,
                cvss_v3_score=score,
                description=description,
            )
            if (vector or description) and facts.new(vulnerability_id, (description, vector)):
                yield VulnerabilityRecord(
                    vulnerability_id=vulnerability_id,
                    description=description or None,
                    cvss_v3_vector=vector or None,
                )


def _str(value: object) -> str:
    # The common case (a JSON string) without text()'s type checks: this runs per field.
    return value.strip() if type(value) is str else text(value)


@lru_cache(maxsize=65536)
def _purl_vendor(purl: str) -> str:
    # A package's purl repeats on every match of the package: parse it once.
    return purl_vendor_product(purl)[0]


def _device(source: dict[str, Any], distro: dict[str, Any], filename: str) -> DeviceRecord:
    """The scanned source as a device: an image by its name and digest, else the path scanned."""
    target = source.get("target")
    if isinstance(target, dict):
        name = text(target.get("userInput")) or text(as_list(target.get("tags"))[:1] or "")
        asset_id = text(target.get("manifestDigest")) or text(target.get("imageID")) or name
        arch = text(target.get("architecture"))
    else:
        name = text(target)
        asset_id, arch = name, ""
    name = name or PurePosixPath(filename).stem
    distro_name = text(distro.get("name"))
    is_image = text(source.get("type")) == "image"
    return DeviceRecord(
        device_ref=_DEVICE_REF,
        name=name,
        asset_id=asset_id or name,
        os_platform="Linux" if distro_name or is_image else "Other",
        os_version=" ".join(p for p in (distro_name, text(distro.get("version"))) if p),
        os_architecture=arch,
    )
