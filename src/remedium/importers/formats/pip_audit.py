"""pip-audit JSON reports (``pip-audit -f json``); see ``docs/formats.md`` (pip-audit).

pip-audit audits one Python environment or requirements file and does not name it, so its
records go to the device given with ``--device`` (:data:`~remedium.importers.batches.UNNAMED`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.batches import UNNAMED
from remedium.importers.formats._advisory import cve_or_own, facts, fix_for_installed, require
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_head_keys,
    json_items,
    looks_like_json,
    peek_first_byte,
    text,
)
from remedium.importers.records import (
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

_VENDOR = "pypi"


class PipAuditParser:
    """``pip-audit -f json``: ``{"dependencies": [{name, version, vulns: [...]}], "fixes"}``
    (pip-audit 2), or the bare list of dependencies of pip-audit 1."""

    name = "pip_audit"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head) or b'"vulns"' not in head:
            return False
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return stripped[:1] == b"[" or "dependencies" in json_head_keys(head)

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "a pip-audit report (no dependencies with vulns)")
        first, stream = peek_first_byte(stream)
        prefix = "item" if first == b"[" else "dependencies.item"
        info = ReportInfo(format=self.name, source="pip-audit")
        return info, self._records(json_items(stream, prefix, filename))

    def _records(self, dependencies: Iterator[Any]) -> Iterator[ImportRecord]:
        for index, raw in enumerate(dependencies):
            dependency = as_dict(raw)
            name, version = text(dependency.get("name")), text(dependency.get("version"))
            where = f"dependencies[{index}] {name}"
            skip_reason = text(dependency.get("skip_reason"))
            if skip_reason or not version:
                yield SkippedRecord("dependency pip-audit could not audit", where)
                continue
            yield SoftwareRecord(device_ref=UNNAMED, vendor=_VENDOR, product=name, version=version)
            for raw_vuln in as_list(dependency.get("vulns")):
                vuln = as_dict(raw_vuln)
                own = text(vuln.get("id"))
                if not own:
                    yield SkippedRecord("vulnerability without an id", where)
                    continue
                vulnerability_id = cve_or_own(own, as_list(vuln.get("aliases")))
                description = text(vuln.get("description"))
                yield FindingRecord(
                    device_ref=UNNAMED,
                    vulnerability_id=vulnerability_id,
                    vendor=_VENDOR,
                    product=name,
                    installed_version=version,
                    fixed_version=fix_for_installed(
                        version, [text(v) for v in as_list(vuln.get("fix_versions"))], "pypi"
                    ),
                    title=own if own != vulnerability_id else "",
                    description=description,
                )
                record = facts(vulnerability_id, description=description)
                if record is not None:
                    yield record
