"""govulncheck JSON streams (``govulncheck -json``, protocol v1); see ``docs/formats.md``
(govulncheck)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson

from remedium.importers.batches import UNNAMED
from remedium.importers.formats._advisory import cve_or_own, cwe_ids, facts, require
from remedium.importers.formats._common import as_dict, as_list, looks_like_json, text
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SoftwareRecord,
    VulnerabilityRecord,
)


@dataclass(slots=True)
class _Advisory:
    vulnerability_id: str
    summary: str
    facts: VulnerabilityRecord | None


_SCANNER = re.compile(rb'"scanner_name"\s*:\s*"govulncheck"')
_DEVICE_REF = "module"
_VENDOR = "golang"


class GovulncheckParser:
    """A stream of JSON objects, one message each: ``config``, ``SBOM``, ``progress``, ``osv``
    (an advisory) and ``finding`` (an advisory's ``osv`` id, ``fixed_version`` and ``trace``,
    whose first frame names the vulnerable module and version)."""

    name = "govulncheck"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        return bool(_SCANNER.search(head)) or (
            b'"finding"' in head and b'"trace"' in head and b'"osv"' in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a govulncheck JSON stream")
        info = ReportInfo(format=self.name, source="govulncheck")
        return info, self._records(stream, filename)

    def _records(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        # osv id -> (CVE or own id, summary, facts not yet given): an advisory's facts are
        # given with its first finding (govulncheck lists advisories it found nothing for).
        advisories: dict[str, _Advisory] = {}
        device = UNNAMED
        modules: dict[str, str] = {}
        seen: set[tuple[str, str, str]] = set()
        index = -1
        try:
            for index, raw in enumerate(ijson.items(stream, "", multiple_values=True)):  # noqa: B007
                message = as_dict(raw)
                if "SBOM" in message:
                    device, modules = _sbom(as_dict(message["SBOM"]))
                    if device != UNNAMED:
                        yield DeviceRecord(
                            device_ref=device, name=device, asset_id=device, os_platform="Other"
                        )
                    for path, version in modules.items():
                        yield SoftwareRecord(
                            device_ref=device, vendor=_VENDOR, product=path, version=version
                        )
                elif "osv" in message:
                    _advisory(as_dict(message["osv"]), advisories)
                elif "finding" in message:
                    finding = as_dict(message["finding"])
                    yield from _finding(finding, device, advisories, seen)
        except ijson.common.JSONError as exc:
            raise ReportError(
                f"malformed JSON ({exc})", where=f"after message {index + 1}", filename=filename
            ) from None


def _sbom(sbom: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The scanned main module (the SBOM's module listed without a version; its ``roots``
    are packages, not the module) and the versions of the other modules."""
    modules: dict[str, str] = {}
    main = ""
    for raw in as_list(sbom.get("modules")):
        module = as_dict(raw)
        path, version = text(module.get("path")), text(module.get("version"))
        if path and version:
            modules[path] = version
        elif path and not main:
            main = path
    go_version = text(sbom.get("go_version"))
    if go_version and "stdlib" not in modules:
        modules["stdlib"] = "v" + go_version.removeprefix("go")
    return main or UNNAMED, modules


def _advisory(osv: dict[str, Any], advisories: dict[str, _Advisory]) -> None:
    own = text(osv.get("id"))
    if not own:
        return
    vulnerability_id = cve_or_own(own, as_list(osv.get("aliases")))
    summary = text(osv.get("summary"))
    cwes = cwe_ids(as_list(as_dict(osv.get("database_specific")).get("cwe_ids")))
    record = facts(vulnerability_id, description=text(osv.get("details")) or summary, cwes=cwes)
    advisories[own] = _Advisory(vulnerability_id, summary, record)


def _finding(
    finding: dict[str, Any],
    device: str,
    advisories: dict[str, _Advisory],
    seen: set[tuple[str, str, str]],
) -> Iterator[ImportRecord]:
    own = text(finding.get("osv"))
    trace = [as_dict(frame) for frame in as_list(finding.get("trace"))]
    if not own or not trace:
        return
    module, version = text(trace[0].get("module")), text(trace[0].get("version"))
    # govulncheck reports an advisory at module, package and symbol level: one finding each
    # for the same module. remedium keeps one weakness per module.
    key = (own, module, version)
    if key in seen:
        return
    seen.add(key)
    advisory = advisories.get(own) or _Advisory(cve_or_own(own, ()), "", None)
    vulnerability_id, summary = advisory.vulnerability_id, advisory.summary
    if advisory.facts is not None:
        yield advisory.facts
        advisory.facts = None
    yield FindingRecord(
        device_ref=device,
        vulnerability_id=vulnerability_id,
        vendor=_VENDOR,
        product=module,
        installed_version=version,
        fixed_version=text(finding.get("fixed_version")),
        title=f"{own}: {summary}" if summary else own,
    )
