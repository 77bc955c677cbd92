"""Clair reports: clair-scanner's (``clair-scanner --report``) and Clair v4's vulnerability
report (``GET /matcher/api/v1/vulnerability_report/{manifest}``, ``clairctl report -o json``);
see ``docs/formats.md`` (Clair)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import cve_or_own, cvss3_vector, facts, score
from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    as_dict,
    as_list,
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
        if "manifest_hash" in keys:  # Clair v4 (an index report is refused by parse)
            return True
        return "vulnerabilities" in keys and (
            "unapproved" in keys or ("image" in keys and b'"featurename"' in head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = seekable(stream)
        manifest = text(json_first(stream, "manifest_hash", filename))
        stream.seek(0)
        if manifest:
            return self._v4(stream, filename, manifest)
        image = text(json_first(stream, "image", filename))
        stream.seek(0)
        if not image:
            raise ReportError("not a clair-scanner report: no image", filename=filename)
        info = ReportInfo(format=self.name, source="clair")
        return info, self._records(image, json_items(stream, "vulnerabilities.item", filename))

    def _v4(
        self, stream: IO[bytes], filename: str, manifest: str
    ) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Clair v4: maps of ``packages``, ``distributions``, ``vulnerabilities`` (by id) and
        ``package_vulnerabilities`` (package id -> vulnerability ids), ``enrichments`` (CVSS).
        Each map is read in its own pass (the others skipped in C); findings join them."""
        parts: dict[str, dict[str, Any]] = {}
        for key in ("packages", "distributions", "vulnerabilities", "enrichments"):
            stream.seek(0)
            parts[key] = as_dict(json_first(stream, key, filename))
        stream.seek(0)
        raw_matches = json_first(stream, "package_vulnerabilities", filename)
        if raw_matches is None and not parts["vulnerabilities"]:
            raise ReportError(
                "a Clair index report (no vulnerabilities): import the vulnerability report",
                filename=filename,
            )
        matches = as_dict(raw_matches)
        info = ReportInfo(format=self.name, source="clair")
        return info, _v4_records(manifest, parts, matches)

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


_CVE_IN = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_V4_SEVERITY = {"Unknown": ""}


def _v4_cvss(enrichments: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    """CVSS v3 per vulnerability id from the ``clair.cvss`` enrichment."""
    found: dict[str, tuple[str, float | None]] = {}
    for kind, values in enrichments.items():
        if "clair.cvss" not in kind:
            continue
        for value in as_list(values):
            for vuln_id, entries in as_dict(value).items():
                for entry in as_list(entries) if isinstance(entries, list) else [entries]:
                    vector = cvss3_vector(as_dict(entry).get("vectorString"))
                    if vector:
                        found.setdefault(vuln_id, (vector, score(as_dict(entry).get("baseScore"))))
    return found


def _v4_records(
    manifest: str, parts: dict[str, dict[str, Any]], matches: dict[str, Any]
) -> Iterator[ImportRecord]:
    packages, vulnerabilities = parts["packages"], parts["vulnerabilities"]
    distributions = [as_dict(d) for d in parts["distributions"].values()]
    pretty = [text(d.get("pretty_name")) or text(d.get("name")) for d in distributions]
    yield DeviceRecord(
        device_ref=_DEVICE_REF,
        name=manifest,
        asset_id=manifest,
        os_platform="Linux",
        os_version=pretty[0] if len(pretty) == 1 else "",
    )
    cvss = _v4_cvss(parts["enrichments"])
    given: set[str] = set()
    for package_id, vuln_ids in matches.items():
        package = as_dict(packages.get(package_id))
        for vuln_id in as_list(vuln_ids):
            vuln = as_dict(vulnerabilities.get(text(vuln_id)))
            name = text(vuln.get("name"))
            where = f"package_vulnerabilities.{package_id} / {text(vuln_id)}"
            if not vuln or not name:
                yield SkippedRecord("vulnerability not in the report's vulnerabilities", where)
                continue
            found = _CVE_IN.match(name)
            vulnerability_id = found.group(0).upper() if found else name
            distribution = as_dict(vuln.get("distribution"))
            repository = as_dict(vuln.get("repository"))
            vendor = text(distribution.get("did")) or text(repository.get("name"))
            vector, base = cvss.get(text(vuln_id), ("", None))
            raw_severity = text(vuln.get("normalized_severity"))
            description = text(vuln.get("description"))
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=vendor.lower(),
                product=text(package.get("name")) or text(as_dict(vuln.get("package")).get("name")),
                installed_version=text(package.get("version")),
                fixed_version=text(vuln.get("fixed_in_version")),
                severity=_V4_SEVERITY.get(raw_severity, severity(raw_severity)),
                cvss_v3_vector=vector,
                cvss_v3_score=base,
                title=name if name != vulnerability_id else "",
                description=description,
            )
            if vulnerability_id not in given:
                given.add(vulnerability_id)
                record = facts(vulnerability_id, description=description, cvss_v3_vector=vector)
                if record is not None:
                    yield record
