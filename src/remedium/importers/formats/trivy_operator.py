"""Trivy Operator resources (``kubectl get vulnerabilityreports,configauditreports -o json``):
one resource, a ``List`` of resources of mixed kinds, or several kinds keyed by resource name.
Vulnerability and config-audit reports are imported, other kinds skipped with the reason. See
``docs/formats.md`` (Trivy)."""

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
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    VulnerabilityRecord,
)

# The resources remedium imports; every other kind in a list is skipped, with the reason.
_VULNERABILITIES = ("VulnerabilityReport", "ClusterVulnerabilityReport")
_CONFIG_AUDITS = ("ConfigAuditReport", "ClusterConfigAuditReport")
# ``kubectl get`` of several kinds at once, keyed by each custom resource's plural name.
_PLURALS = tuple(
    f"{name}.aquasecurity.github.io"
    for name in (
        "vulnerabilityreports",
        "clustervulnerabilityreports",
        "configauditreports",
        "clusterconfigauditreports",
        "exposedsecretreports",
        "rbacassessmentreports",
        "clusterrbacassessmentreports",
        "infraassessmentreports",
        "clusterinfraassessmentreports",
        "clustercompliancereports",
        "sbomreports",
        "clustersbomreports",
    )
)
_LISTS = ("items.item", *(f"{plural}.item" for plural in _PLURALS))
_SEVERITY_WEIGHT = {"Critical": 10.0, "High": 8.0, "Medium": 5.0, "Low": 3.0}


class TrivyOperatorParser:
    """Trivy Operator resources: one ``VulnerabilityReport`` or ``ConfigAuditReport``, a
    ``List`` of resources of any kinds, or ``kubectl get`` output keyed by resource name."""

    name = "trivy_operator"

    def sniff(self, head: bytes, filename: str) -> bool:
        return looks_like_json(head) and b"aquasecurity.github.io" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        targets = ["kind", "metadata", "report", *_LISTS]
        values = json_values(stream, targets, filename)
        header: dict[str, Any] = {}
        pending: tuple[str, Any] | None = None
        for prefix, value in values:
            if prefix in _LISTS:
                pending = (prefix, value)
                break
            header[prefix] = value
        kind = text(header.get("kind"))
        if pending is None and kind not in (*_VULNERABILITIES, *_CONFIG_AUDITS):
            if kind in ("List", "VulnerabilityReportList") or not kind:
                return self._info(None), iter(())
            raise ReportError(
                f"Trivy Operator {kind or 'resource'} is not supported; export "
                "VulnerabilityReport or ConfigAuditReport resources "
                "(kubectl get vulnerabilityreports,configauditreports -o json)",
                where="kind",
                filename=filename,
            )
        report = as_dict(header.get("report"))
        return self._info(report.get("updateTimestamp")), self._records(header, pending, values)

    def _info(self, updated: object) -> ReportInfo:
        # Several resources, each with its own time: the import is dated when it runs.
        return ReportInfo(format=self.name, source="trivy-operator", scanned_at=parse_time(updated))

    def _records(
        self,
        header: dict[str, Any],
        pending: tuple[str, Any] | None,
        values: Iterator[tuple[str, Any]],
    ) -> Iterator[ImportRecord]:
        checks: set[str] = set()
        if pending is None:
            yield from _resource(header, "report", checks)
            return
        for index, (prefix, item) in enumerate(itertools.chain([pending], values)):
            if prefix in _LISTS:
                where = f"{prefix.removesuffix('.item')}[{index}]"
                yield from _resource(as_dict(item), where, checks)


def _resource(resource: dict[str, Any], where: str, checks: set[str]) -> Iterator[ImportRecord]:
    """The records of one Trivy Operator resource (a skipped record for unsupported kinds)."""
    kind = text(resource.get("kind"))
    report = as_dict(resource.get("report"))
    if kind in _VULNERABILITIES:
        device = _operator_device(resource.get("metadata"), report, where)
        yield device
        for vuln in as_list(report.get("vulnerabilities")):
            yield from _operator_finding(device.device_ref, as_dict(vuln))
    elif kind in _CONFIG_AUDITS:
        yield from _config_audit(resource.get("metadata"), report, where, checks)
    else:
        yield SkippedRecord(
            f"Trivy Operator {kind or 'resource without kind'} is not imported "
            "(only VulnerabilityReport and ConfigAuditReport)",
            where,
        )


def _workload(metadata: object) -> str:
    labels = as_dict(as_dict(metadata).get("labels"))
    return "/".join(
        text(labels.get(f"trivy-operator.resource.{k}")) or "-"
        for k in ("namespace", "kind", "name")
    )


def _config_audit(
    metadata: object, report: dict[str, Any], where: str, checks: set[str]
) -> Iterator[ImportRecord]:
    """A ConfigAuditReport: its workload as a device (named ``namespace/Kind/name`` like a
    ``trivy k8s`` report's), each check's definition once and its result."""
    workload = _workload(metadata)
    if not workload.strip("/-"):
        workload = text(as_dict(metadata).get("name")) or where
    ref = f"workload:{workload}"
    yield DeviceRecord(device_ref=ref, name=workload, asset_id=workload, os_platform="Linux")
    for check in as_list(report.get("checks")):
        entry = as_dict(check)
        check_id = text(entry.get("checkID")) or text(entry.get("id"))
        if not check_id:
            yield SkippedRecord("configuration check without checkID", where)
            continue
        if check_id not in checks:
            checks.add(check_id)
            yield ConfigurationCheckRecord(
                configuration_id=check_id,
                name=text(entry.get("title")) or check_id,
                category="Application",
                sub_category=text(entry.get("category")),
                weight=_SEVERITY_WEIGHT.get(severity(entry.get("severity")), 5.0),
                description=text(entry.get("description")),
                remediation=text(entry.get("remediation")),
            )
        yield ConfigurationResultRecord(
            device_ref=ref, configuration_id=check_id, is_compliant=entry.get("success") is True
        )


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


def _operator_finding(device_ref: str, vuln: dict[str, Any]) -> Iterator[ImportRecord]:
    """A finding, and the report's facts of its vulnerability (severity, CVSS score: Trivy
    Operator gives the score without its vector, and the score is kept)."""
    score = vuln.get("score")
    cvss = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None
    vulnerability_id = text(vuln.get("vulnerabilityID"))
    rating = severity(vuln.get("severity"))
    yield FindingRecord(
        device_ref=device_ref,
        vulnerability_id=vulnerability_id,
        product=text(vuln.get("resource")),
        installed_version=text(vuln.get("installedVersion")),
        fixed_version=text(vuln.get("fixedVersion")),
        severity=rating,
        cvss_v3_score=cvss,
        title=text(vuln.get("title")),
        path=text(vuln.get("target")),
    )
    if vulnerability_id and (rating or cvss is not None):
        yield VulnerabilityRecord(
            vulnerability_id=vulnerability_id, severity=rating or None, cvss_v3_score=cvss
        )
