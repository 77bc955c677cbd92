"""npm audit JSON reports (``npm audit --json``): the report of npm 7 and later
(``auditReportVersion`` 2, ``vulnerabilities`` by package) and the legacy one of npm 6
(``advisories``); see ``docs/formats.md`` (npm audit).

npm audit does not name the project it audited, so its records go to the device given with
``--device`` (:data:`~remedium.importers.batches.UNNAMED`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

import ijson

from remedium.importers.batches import UNNAMED
from remedium.importers.formats._advisory import cvss3_vector, cwe_ids, facts, require, score
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_head_keys,
    looks_like_json,
    seekable,
    severity,
    text,
)
from remedium.importers.records import (
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

_VENDOR = "npm"
SNIFF_BYTES = 64 * 1024
_GHSA_URL = re.compile(r"/(GHSA(?:-[0-9a-z]{4}){3})\b", re.IGNORECASE)
_AT_LEAST = re.compile(r"^>=\s*(\S+)$")


def _advisory_id(url: str, number: object) -> str:
    """The advisory's GHSA id (from its URL), else ``NPM-<number>`` of npm's old advisories."""
    match = _GHSA_URL.search(url)
    if match:
        return match.group(1)
    return f"NPM-{text(number)}" if text(number) else ""


class NpmAuditParser:
    """``npm audit --json``, version 2 (npm 7+) or the legacy version 1 (npm 6)."""

    name = "npm_audit"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        return "auditReportVersion" in keys or (
            "advisories" in keys and ("actions" in keys or "muted" in keys)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = seekable(require(self, stream, filename, "an npm audit report"))
        keys = json_head_keys(stream.read(SNIFF_BYTES))
        stream.seek(0)
        legacy = "advisories" in keys and "auditReportVersion" not in keys
        info = ReportInfo(format=self.name, source="npm-audit")
        # One package (v2) or advisory (v1) at a time.
        entries = _kvitems(stream, "advisories" if legacy else "vulnerabilities", filename)
        return info, (_version1 if legacy else _version2)(entries)


def _kvitems(stream: IO[bytes], prefix: str, filename: str) -> Iterator[tuple[str, Any]]:
    try:
        yield from ijson.kvitems(stream, prefix, use_float=True)
    except ijson.common.JSONError as exc:
        raise ReportError(f"malformed JSON ({exc})", where=prefix, filename=filename) from None


def _version2(vulnerabilities: Iterator[tuple[str, Any]]) -> Iterator[ImportRecord]:
    """npm 7+: per vulnerable package, ``via`` lists its own advisories (objects) and the
    vulnerable dependencies it is affected through (names). The report gives no installed
    version, only the vulnerable ``range`` and the ``nodes`` (paths) where it is installed."""
    for name, raw in vulnerabilities:
        entry = as_dict(raw)
        package = text(entry.get("name")) or name
        fix = entry.get("fixAvailable")
        fixed = ""
        if isinstance(fix, dict) and text(fix.get("name")) == package:
            fixed = text(fix.get("version"))
        own = [as_dict(v) for v in as_list(entry.get("via")) if isinstance(v, dict)]
        own = [v for v in own if text(v.get("name")) in ("", package)]
        if not own:
            yield SkippedRecord(
                "package vulnerable only through its dependencies (their advisories are kept)",
                f"vulnerabilities.{package}",
            )
            continue
        for via in own:
            vulnerability_id = _advisory_id(text(via.get("url")), via.get("source"))
            where = f"vulnerabilities.{package} / {vulnerability_id}"
            if not vulnerability_id:
                yield SkippedRecord("advisory without an id", where)
                continue
            cvss = as_dict(via.get("cvss"))
            vector = cvss3_vector(cvss.get("vectorString"))
            base = score(cvss.get("score"))
            yield FindingRecord(
                device_ref=UNNAMED,
                vulnerability_id=vulnerability_id,
                vendor=_VENDOR,
                product=package,
                fixed_version=fixed,
                severity=severity(via.get("severity")),
                cvss_v3_vector=vector,
                cvss_v3_score=base if base else None,
                title=text(via.get("title")),
            )
            record = facts(
                vulnerability_id, cvss_v3_vector=vector, cwes=cwe_ids(as_list(via.get("cwe")))
            )
            if record is not None:
                yield record


def _version1(advisories: Iterator[tuple[str, Any]]) -> Iterator[ImportRecord]:
    """npm 6: per advisory, ``findings`` lists the installed versions of ``module_name``."""
    installed: set[tuple[str, str]] = set()
    for key, raw in advisories:
        advisory = as_dict(raw)
        package = text(advisory.get("module_name"))
        ids = [text(c) for c in as_list(advisory.get("cves")) if text(c)]
        if not ids:
            github = text(advisory.get("github_advisory_id"))
            ids = [github or _advisory_id(text(advisory.get("url")), advisory.get("id") or key)]
        patched = _AT_LEAST.match(text(advisory.get("patched_versions")))
        description = text(advisory.get("overview"))
        cwe = advisory.get("cwe")
        cwes = cwe_ids(as_list(cwe) if isinstance(cwe, list) else [cwe])
        cvss = as_dict(advisory.get("cvss"))
        vector = cvss3_vector(cvss.get("vectorString"))
        base = score(cvss.get("score"))
        for finding in as_list(advisory.get("findings")):
            version = text(as_dict(finding).get("version"))
            if (package, version) not in installed:
                installed.add((package, version))
                yield SoftwareRecord(
                    device_ref=UNNAMED, vendor=_VENDOR, product=package, version=version
                )
            for vulnerability_id in ids:
                yield FindingRecord(
                    device_ref=UNNAMED,
                    vulnerability_id=vulnerability_id,
                    vendor=_VENDOR,
                    product=package,
                    installed_version=version,
                    fixed_version=patched.group(1) if patched else "",
                    severity=severity(advisory.get("severity")),
                    cvss_v3_vector=vector,
                    cvss_v3_score=base if base else None,
                    title=text(advisory.get("title")),
                    description=description,
                )
        for vulnerability_id in ids:
            record = facts(
                vulnerability_id, description=description, cvss_v3_vector=vector, cwes=cwes
            )
            if record is not None:
                yield record
