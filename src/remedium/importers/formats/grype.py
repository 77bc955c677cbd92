"""Grype JSON reports (``grype -o json``). See ``docs/formats.md`` (Grype) for the fields mapped."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any, TypedDict

import ijson
import msgspec

from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    UNRATED,
    FactsFilter,
    as_dict,
    as_list,
    ecosystem_vendor,
    json_first,
    json_head_keys,
    json_items,
    looks_like_json,
    parse_time,
    purl_vendor,
    record_builder,
    seekable,
    severity,
    severity_from_score,
    text,
)
from remedium.importers.formats._fastjson import Int64, Text, fast_or_exact, json_fast_values
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
_SECOND = operator.itemgetter(1)
# FindingRecord(...) and VulnerabilityRecord(...), without the cost of a frozen __init__.
_new_finding = record_builder(FindingRecord)
_new_vulnerability = record_builder(VulnerabilityRecord)


# What of a match the loop in ``GrypeParser._records`` (and its helpers) reads: the fast
# reader decodes runs of matches into these and skips the rest (locations' layers, licences,
# CPE objects, match details, links) in C. A field of another shape than declared makes the
# run be read whole, match by match (``_fastjson``: "Runs of items").
class _Location(TypedDict, total=False):
    path: Text


class _Artifact(TypedDict, total=False):
    name: Text
    version: Text
    type: Text
    purl: Text
    cpes: list[Text]
    locations: list[_Location]


class _Metrics(TypedDict, total=False):
    baseScore: Text


class _Cvss(TypedDict, total=False):
    version: Text
    vector: Text
    metrics: _Metrics


class _CvssV3(TypedDict, total=False):
    vector: Text
    baseScore: Text


class _Fix(TypedDict, total=False):
    versions: list[Text]


class _Epss(TypedDict, total=False):
    cve: Text
    epss: Text
    percentile: Text


class _Cwe(TypedDict, total=False):
    cwe: Text


class _Vulnerability(TypedDict, total=False):
    id: Text
    severity: Text
    description: Text
    fix: _Fix
    fixedInVersion: Text
    cvss: list[_Cvss]
    cvssV3: _CvssV3
    epss: list[_Epss]
    cwes: list[_Cwe | str | Int64 | float | bool | list[Any] | None]


class _Related(TypedDict, total=False):
    id: Text


class _Match(TypedDict, total=False):
    artifact: _Artifact
    vulnerability: _Vulnerability
    relatedVulnerabilities: list[_Related]


_MATCH_RUNS: dict[str, msgspec.json.Decoder[Any]] = {
    "matches.item": msgspec.json.Decoder(list[_Match])
}

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


_NO_CVSS: tuple[str, float | None] = ("", None)
UNKNOWN = UNRATED  # Grype's word for a vulnerability it has no rating of (docs/formats.md)


def _cvss_v3(vuln: dict[str, Any]) -> tuple[str, float | None]:
    """The vector and base score of the first CVSS v3 entry of a ``vulnerability.cvss`` list,
    else of the older ``cvssV3`` object (Grype before 0.40: ``{"baseScore", "vector"}``)."""
    cvss = vuln.get("cvss")
    if type(cvss) is list:
        for entry in cvss:
            if type(entry) is not dict:
                continue
            version = entry.get("version")
            if not (version.strip() if type(version) is str else text(version)).startswith("3"):
                continue
            metrics = entry.get("metrics")
            score = metrics.get("baseScore") if type(metrics) is dict else None
            return _str(entry.get("vector")), _score(score)
        return _NO_CVSS
    old = vuln.get("cvssV3")
    if type(old) is dict:
        return _str(old.get("vector")), _score(old.get("baseScore"))
    return _NO_CVSS


def _score(value: object) -> float | None:
    if type(value) is float:
        return value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _extra_facts(vuln: dict[str, Any], vulnerability_id: str) -> tuple[Any, Any, tuple[str, ...]]:
    """EPSS (probability, percentile) of ``vulnerability_id`` and the CWE ids a match gives."""
    epss = percentile = None
    entries = [e for e in as_list(vuln.get("epss")) if isinstance(e, dict)]
    chosen = next((e for e in entries if text(e.get("cve")) == vulnerability_id), None)
    if chosen is None and len(entries) == 1:
        chosen = entries[0]
    if chosen is not None:
        epss, percentile = _score(chosen.get("epss")), _score(chosen.get("percentile"))
    cwes: list[str] = []
    for entry in as_list(vuln.get("cwes")):
        value = text(entry.get("cwe")) if isinstance(entry, dict) else text(entry)
        if value.upper().startswith("CWE-") and value.upper() not in cwes:
            cwes.append(value.upper())
    return epss, percentile, tuple(cwes)


def _vulnerability_id(own: str, match: dict[str, Any]) -> str:
    """The match's id (``own``), or the CVE it is related to when Grype matched a GHSA/distro
    advisory.

    remedium (like Microsoft Defender) keys weaknesses on CVE ids where one exists.
    """
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
            b'"matchDetails"' in head
            or "source" in keys
            or "descriptor" in keys
            or (b'"artifact"' in head and b'"vulnerability"' in head)
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
        if not source and not descriptor and not _has_matches(stream, filename):
            raise ReportError(
                "not a Grype report: no matches, source or descriptor", filename=filename
            )
        stream.seek(0)
        info = ReportInfo(
            format=self.name,
            source="grype",
            scanned_at=parse_time(descriptor.get("timestamp")),
        )
        fast = self._records(stream, filename, source, distro, fast=True)

        def exact() -> Iterator[ImportRecord]:
            stream.seek(0)
            return self._records(stream, filename, source, distro, fast=False)

        return info, fast_or_exact(fast, exact)

    def _records(
        self,
        stream: IO[bytes],
        filename: str,
        source: dict[str, Any],
        distro: dict[str, Any],
        *,
        fast: bool,
    ) -> Iterator[ImportRecord]:
        yield _device(source, distro, filename)
        seen_packages: set[tuple[str, str, str]] = set()
        ecosystems: dict[str, str] = {}
        facts = FactsFilter()
        facts_are_new, facts_given = facts.new, facts.last
        spellings = SEVERITY_SPELLINGS
        new_finding = _new_finding
        # Each match is built whole in C (the json module's decoder when ``fast``, else ijson);
        # the Python work per match is kept to plain dict lookups (this loop runs a million
        # times for a large image).
        matches = (
            map(_SECOND, json_fast_values(stream, ["matches.item"], runs=_MATCH_RUNS))
            if fast
            else json_items(stream, "matches.item", filename)
        )
        for index, value in enumerate(matches):
            match: dict[str, Any] = value if type(value) is dict else {}
            artifact = match.get("artifact")
            if type(artifact) is not dict:
                artifact = {}
            vuln = match.get("vulnerability")
            if type(vuln) is not dict:
                vuln = {}
            # Strings read inline (not through _str): this is the loop a large report runs in.
            own = vuln.get("id")
            own = own.strip() if type(own) is str else text(own)
            vulnerability_id = own if own.startswith("CVE-") else _vulnerability_id(own, match)
            if not vulnerability_id:
                yield SkippedRecord("match without a vulnerability id", f"matches[{index}]")
                continue
            purl = artifact.get("purl")
            purl = purl.strip() if type(purl) is str else text(purl)
            vendor = purl_vendor(purl) if purl else ""
            if not vendor:
                kind = _str(artifact.get("type"))
                vendor = ecosystems.get(kind) or ecosystems.setdefault(kind, ecosystem_vendor(kind))
            product = artifact.get("name")
            product = product.strip() if type(product) is str else text(product)
            version = artifact.get("version")
            version = version.strip() if type(version) is str else text(version)
            # Grype lists a package once per match; the installed package is recorded once.
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
                    fixed = candidate.strip() if type(candidate) is str else text(candidate)
                    if fixed:
                        break
            elif "fixedInVersion" in vuln:  # Grype before 0.40
                fixed = _str(vuln.get("fixedInVersion"))
            raw_severity = vuln.get("severity")
            rating = spellings.get(raw_severity) if type(raw_severity) is str else ""
            if rating is None:
                rating = severity(raw_severity)
            if not rating:
                # The report's own word when it has no rating ("Unknown"), never a default.
                rating = severity_from_score(score) or (
                    UNKNOWN if _str(raw_severity).lower() in ("unknown", "") else ""
                )
            locations = artifact.get("locations")
            path = ""
            if type(locations) is list and locations and type(locations[0]) is dict:
                path = _str(locations[0].get("path"))
            description = vuln.get("description")
            description = description.strip() if type(description) is str else text(description)
            # Positional, in FindingRecord's field order (test_parser_speedups pins it): a
            # call with keywords costs twice as much.
            yield new_finding(
                _DEVICE_REF,
                vulnerability_id,
                vendor,
                product,
                version,  # installed_version
                fixed,
                purl,
                rating,  # severity
                vector,
                score,
                "",  # title
                description,
                "",  # vex_state
                "",  # vex_justification
                path,
            )
            epss = percentile = None
            cwes: tuple[str, ...] = ()
            if "epss" in vuln or "cwes" in vuln:
                epss, percentile, cwes = _extra_facts(vuln, vulnerability_id)
            # The filter's own check first, inline: most findings repeat facts already given.
            raw = (description, vector, score, rating, epss, percentile, cwes)
            if facts_given.get(vulnerability_id) != raw and facts_are_new(vulnerability_id, raw):
                yield _new_vulnerability(
                    vulnerability_id=vulnerability_id,
                    description=description or None,
                    severity=rating or None,
                    cvss_v3_vector=vector or None,
                    cvss_v3_score=score if not vector else None,
                    epss=epss,
                    epss_percentile=percentile,
                    cwe_ids=cwes,
                )


def _has_matches(stream: IO[bytes], filename: str) -> bool:
    """True when the document has a top-level ``matches`` array (a Grype report whose ``source``
    and ``descriptor`` were left out, as some tools' exports do)."""
    stream.seek(0)
    try:
        for prefix, event, _value in ijson.parse(stream):
            if prefix == "matches" and event == "start_array":
                return True
            if prefix == "" and event == "end_map":
                return False
    except ijson.common.JSONError as exc:
        raise ReportError(f"malformed JSON ({exc})", filename=filename) from None
    return False


def _str(value: object) -> str:
    # The common case (a JSON string) without text()'s type checks: this runs per field.
    return value.strip() if type(value) is str else text(value)


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
