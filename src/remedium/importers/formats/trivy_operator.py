"""Trivy Operator ``VulnerabilityReport`` resources (``kubectl get vulnerabilityreports -o
json``): one resource, or a ``List`` of them. See ``docs/formats.md`` (Trivy)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_values,
    looks_like_json,
    parse_time,
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


class TrivyOperatorParser:
    """Trivy Operator ``VulnerabilityReport`` resources (``kubectl get ... -o json``)."""

    name = "trivy_operator"

    def sniff(self, head: bytes, filename: str) -> bool:
        return looks_like_json(head) and b"aquasecurity.github.io" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        targets = [
            "kind",
            "metadata",
            "report.artifact",
            "report.registry",
            "report.updateTimestamp",
            "items.item",
            "report.vulnerabilities.item",
        ]
        values = json_values(stream, targets, filename)
        header: dict[str, Any] = {}
        pending: tuple[str, Any] | None = None
        for prefix, value in values:
            if prefix in ("report.vulnerabilities.item", "items.item"):
                pending = (prefix, value)
                break
            header[prefix] = value
        kind = text(header.get("kind"))
        if kind not in ("VulnerabilityReport", "List", "VulnerabilityReportList") and not (
            pending and pending[0] == "items.item"
        ):
            raise ReportError(
                f"Trivy Operator {kind or 'resource'} is not supported; export "
                "VulnerabilityReport resources (kubectl get vulnerabilityreports -o json)",
                where="kind",
                filename=filename,
            )
        info = ReportInfo(
            format=self.name,
            source="trivy-operator",
            scanned_at=parse_time(header.get("report.updateTimestamp")),
        )
        return info, self._records(header, pending, values, filename)

    def _records(
        self,
        header: dict[str, Any],
        pending: tuple[str, Any] | None,
        values: Iterator[tuple[str, Any]],
        filename: str,
    ) -> Iterator[ImportRecord]:
        stream = values if pending is None else itertools.chain([pending], values)
        if pending is not None and pending[0] == "items.item":
            for index, (_prefix, item) in enumerate(stream):
                resource = as_dict(item)
                if text(resource.get("kind")) != "VulnerabilityReport":
                    yield SkippedRecord(
                        f"{text(resource.get('kind'))} is not supported", f"items[{index}]"
                    )
                    continue
                report = as_dict(resource.get("report"))
                device = _operator_device(resource.get("metadata"), report, f"items[{index}]")
                yield device
                for vuln in as_list(report.get("vulnerabilities")):
                    yield _operator_finding(device.device_ref, as_dict(vuln))
            return
        report = {
            "artifact": header.get("report.artifact"),
            "registry": header.get("report.registry"),
        }
        device = _operator_device(header.get("metadata"), report, "report")
        yield device
        for _prefix, vuln in stream:
            yield _operator_finding(device.device_ref, as_dict(vuln))


def _operator_device(metadata: object, report: dict[str, Any], ref: str) -> DeviceRecord:
    """A VulnerabilityReport's image as a device, tagged with the workload that runs it."""
    artifact = as_dict(report.get("artifact"))
    registry = text(as_dict(report.get("registry")).get("server"))
    repository = text(artifact.get("repository"))
    tag = text(artifact.get("tag"))
    image = "/".join(p for p in (registry, repository) if p) + (f":{tag}" if tag else "")
    labels = as_dict(as_dict(metadata).get("labels"))
    workload = "/".join(
        text(labels.get(f"trivy-operator.resource.{k}")) for k in ("namespace", "kind", "name")
    )
    return DeviceRecord(
        device_ref=ref,
        name=image or text(as_dict(metadata).get("name")) or ref,
        asset_id=text(artifact.get("digest")) or image,
        os_platform="Linux",
        tags=(f"workload:{workload}",) if workload.strip("/") else (),
    )


def _operator_finding(device_ref: str, vuln: dict[str, Any]) -> FindingRecord:
    score = vuln.get("score")
    return FindingRecord(
        device_ref=device_ref,
        vulnerability_id=text(vuln.get("vulnerabilityID")),
        product=text(vuln.get("resource")),
        installed_version=text(vuln.get("installedVersion")),
        fixed_version=text(vuln.get("fixedVersion")),
        severity=severity(vuln.get("severity")),
        cvss_v3_score=float(score) if isinstance(score, int | float) else None,
        title=text(vuln.get("title")),
    )
