"""Trivy JSON reports: image and filesystem scans (schema 2 and the legacy list), ``trivy k8s``
cluster summaries, and Trivy Operator ``VulnerabilityReport`` resources.

See ``docs/formats.md`` (Trivy) for the fields mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    FactsFilter,
    as_dict,
    as_list,
    ecosystem_vendor,
    json_head_keys,
    json_items,
    json_values,
    looks_like_json,
    parse_time,
    peek_first_byte,
    purl_vendor_product,
    severity,
    severity_from_score,
    stream_contains,
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
    SoftwareRecord,
    VulnerabilityRecord,
)

_HEADER = ("SchemaVersion", "CreatedAt", "ArtifactID", "ArtifactName", "ArtifactType", "Metadata")
_RESULT = "Results.item"
_RESULT_FIELDS = ("Target", "Class", "Type")
_RESULT_LISTS = ("Packages", "Vulnerabilities", "Misconfigurations", "Secrets", "Licenses")
_OS_SUFFIX = re.compile(r"\s+\([^()]*\)$")


def _stem(filename: str) -> str:
    return PurePosixPath(filename).stem or "trivy-report"


def _str(value: object) -> str:
    # The common case (a JSON string) without text()'s type checks: this runs per field.
    return value.strip() if type(value) is str else text(value)


def _vendor_for(vuln: dict[str, Any], result_type: str) -> tuple[str, str]:
    """(vendor, purl) of the package a vulnerability or package entry names."""
    ident = vuln.get("PkgIdentifier") or vuln.get("Identifier")
    purl = _str(ident.get("PURL")) if type(ident) is dict else ""
    vendor = purl_vendor_product(purl)[0] if purl else ""
    return vendor or ecosystem_vendor(result_type), purl


def _cvss_v3(vuln: dict[str, Any]) -> tuple[str, float | None]:
    """The CVSS v3 vector and score, preferring the source Trivy rated the severity from."""
    sources = vuln.get("CVSS")
    if type(sources) is not dict or not sources:
        return "", None
    preferred = _str(vuln.get("SeveritySource"))
    for name in (preferred, "nvd", "ghsa", "redhat", *sources.keys()):
        entry = sources.get(name)
        if type(entry) is not dict:
            continue
        vector = _str(entry.get("V3Vector"))
        if vector:
            score = entry.get("V3Score")
            return vector, float(score) if isinstance(score, int | float) else None
    return "", None


def _finding(
    device_ref: str, vuln: dict[str, Any], result_type: str, cvss: tuple[str, float | None]
) -> FindingRecord:
    vendor, purl = _vendor_for(vuln, result_type)
    vector, score = cvss
    return FindingRecord(
        device_ref=device_ref,
        vulnerability_id=_str(vuln.get("VulnerabilityID")),
        vendor=vendor,
        product=_str(vuln.get("PkgName")),
        installed_version=_str(vuln.get("InstalledVersion")),
        fixed_version=_str(vuln.get("FixedVersion")),
        purl=purl,
        severity=severity(vuln.get("Severity")) or severity_from_score(score),
        cvss_v3_vector=vector,
        cvss_v3_score=score,
        title=_str(vuln.get("Title")),
        description=_str(vuln.get("Description")),
    )


def _vulnerability(vuln: dict[str, Any], vector: str) -> VulnerabilityRecord | None:
    description = _str(vuln.get("Description"))
    if not (vector or description):
        return None
    cwes = vuln.get("CweIDs")
    return VulnerabilityRecord(
        vulnerability_id=_str(vuln.get("VulnerabilityID")),
        description=description or None,
        severity=severity(vuln.get("Severity")) or None,
        cvss_v3_vector=vector or None,
        published_on=parse_time(vuln.get("PublishedDate")),
        updated_on=parse_time(vuln.get("LastModifiedDate")),
        cwe_ids=tuple(text(c) for c in cwes if text(c)) if type(cwes) is list else (),
    )


class _ResultReader:
    """Turns the entries of one or more Trivy ``Results`` into records for one device."""

    def __init__(self, device_ref: str, facts: FactsFilter | None = None) -> None:
        self.device_ref = device_ref
        self.checks_seen: set[str] = set()
        self.facts = facts or FactsFilter()

    def vulnerability(self, vuln: object, result_type: str, where: str) -> Iterator[ImportRecord]:
        entry = as_dict(vuln)
        vulnerability_id = _str(entry.get("VulnerabilityID"))
        if not vulnerability_id:
            yield SkippedRecord("vulnerability without VulnerabilityID", where)
            return
        cvss = _cvss_v3(entry)
        yield _finding(self.device_ref, entry, result_type, cvss)
        # The raw fields the facts are built from: equal ones would give an equal record.
        get = entry.get
        raw = (
            cvss[0],
            get("Description"),
            get("Severity"),
            get("PublishedDate"),
            get("LastModifiedDate"),
            get("CweIDs"),
        )
        if self.facts.new(vulnerability_id, raw):
            facts = _vulnerability(entry, cvss[0])
            if facts is not None:
                yield facts

    def package(self, package: object, result_type: str, where: str) -> Iterator[ImportRecord]:
        entry = as_dict(package)
        name = text(entry.get("Name"))
        if not name:
            yield SkippedRecord("package without Name", where)
            return
        vendor, purl = _vendor_for(entry, result_type)
        yield SoftwareRecord(
            device_ref=self.device_ref,
            vendor=vendor,
            product=name,
            version=text(entry.get("Version")),
            purl=purl,
        )

    def misconfiguration(self, misconf: object, target: str, where: str) -> Iterator[ImportRecord]:
        entry = as_dict(misconf)
        check_id = text(entry.get("ID")) or text(entry.get("AVDID"))
        if not check_id:
            yield SkippedRecord("misconfiguration without ID", where)
            return
        if check_id not in self.checks_seen:
            self.checks_seen.add(check_id)
            yield ConfigurationCheckRecord(
                configuration_id=check_id,
                name=text(entry.get("Title")) or check_id,
                # Trivy checks container, Kubernetes and IaC settings: applications, not the OS.
                category="Application",
                sub_category=text(entry.get("Type")),
                description=text(entry.get("Description")),
                remediation=text(entry.get("Resolution")),
            )
        yield ConfigurationResultRecord(
            device_ref=self.device_ref,
            configuration_id=check_id,
            is_compliant=text(entry.get("Status")).upper() == "PASS",
        )

    def result(self, result: dict[str, Any], where: str) -> Iterator[ImportRecord]:
        """All records of one whole ``Results`` entry (k8s and legacy shapes)."""
        result_type = text(result.get("Type"))
        target = text(result.get("Target"))
        for package in as_list(result.get("Packages")):
            yield from self.package(package, result_type, where)
        for vuln in as_list(result.get("Vulnerabilities")):
            yield from self.vulnerability(vuln, result_type, where)
        for misconf in as_list(result.get("Misconfigurations")):
            yield from self.misconfiguration(misconf, target, where)
        for secret in as_list(result.get("Secrets")):
            yield _secret(secret, target)


def _secret(secret: object, target: str) -> SkippedRecord:
    rule = text(as_dict(secret).get("RuleID")) or "secret"
    return SkippedRecord(f"exposed secret ({rule}) is not a vulnerability; not imported", target)


class TrivyParser:
    """Trivy ``--format json``: schema 2 reports, legacy lists, and ``trivy k8s`` summaries."""

    name = "trivy"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        if "SchemaVersion" in keys and ("ArtifactName" in keys or "Results" in keys):
            return True
        if "ClusterName" in keys and ("Vulnerabilities" in keys or "Misconfigurations" in keys):
            return True
        # The legacy (pre-schema-2) output is a bare list of results.
        start = head.lstrip()[:1]
        return start == b"[" and b'"Target"' in head and b'"Vulnerabilities"' in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        if _can_seek(stream):
            # A file: peek, then rewind, so the large lists can be read again by ijson's C items.
            start = stream.tell()
            first = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
            stream.seek(start)
        else:
            first, stream = peek_first_byte(stream)
        if first == b"[":
            return ReportInfo(format=self.name, source="trivy"), self._legacy(stream, filename)
        if first != b"{":
            raise ReportError("not a Trivy report: expected a JSON object", filename=filename)
        return self._report(stream, filename)

    def _report(
        self, stream: IO[bytes], filename: str
    ) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        targets = [
            *_HEADER,
            "ClusterName",
            "Vulnerabilities.item",
            "Misconfigurations.item",
            *(f"{_RESULT}.{f}" for f in _RESULT_FIELDS),
            *(f"{_RESULT}.{f}.item" for f in _RESULT_LISTS),
        ]
        values = json_values(stream, targets, filename)
        header: dict[str, Any] = {}
        pending: tuple[str, Any] | None = None
        for prefix, value in values:
            if prefix in _HEADER or prefix == "ClusterName":
                header[prefix] = value
                continue
            pending = (prefix, value)
            break
        if "ClusterName" in header:
            info = ReportInfo(format=self.name, source="trivy k8s")
            if _can_seek(stream):
                return info, self._k8s_items(header, stream, filename)
            return info, self._k8s(header, pending, values)
        if "SchemaVersion" not in header and pending is None and not header:
            raise ReportError("not a Trivy report: no SchemaVersion or Results", filename=filename)
        info = ReportInfo(
            format=self.name, source="trivy", scanned_at=parse_time(header.get("CreatedAt"))
        )
        return info, self._artifact(header, pending, values, filename)

    def _artifact(
        self,
        header: dict[str, Any],
        pending: tuple[str, Any] | None,
        values: Iterator[tuple[str, Any]],
        filename: str,
    ) -> Iterator[ImportRecord]:
        yield _artifact_device(header, filename)
        reader = _ResultReader("artifact")
        result_type = target = ""
        index = -1
        stream = values if pending is None else _chain(pending, values)
        for prefix, value in stream:
            field = prefix[len(_RESULT) + 1 :].split(".", 1)[0]
            if field == "Target":
                # Target opens a new result (Trivy writes it first).
                index += 1
                target, result_type = text(value), ""
                continue
            if field == "Type":
                result_type = text(value)
                continue
            if field == "Class":
                continue
            where = f"Results[{max(index, 0)}] ({target})"
            if field == "Vulnerabilities":
                yield from reader.vulnerability(value, result_type, where)
            elif field == "Packages":
                yield from reader.package(value, result_type, where)
            elif field == "Misconfigurations":
                yield from reader.misconfiguration(value, target, where)
            elif field == "Secrets":
                yield _secret(value, target)
            elif field == "Licenses":
                name = text(as_dict(value).get("Name"))
                yield SkippedRecord(f"license finding ({name}) is not a vulnerability", where)

    def _k8s(
        self,
        header: dict[str, Any],
        pending: tuple[str, Any] | None,
        values: Iterator[tuple[str, Any]],
    ) -> Iterator[ImportRecord]:
        cluster = text(header.get("ClusterName"))
        seen: set[str] = set()
        readers: dict[str, _ResultReader] = {}
        facts = FactsFilter()
        stream = values if pending is None else _chain(pending, values)
        for index, (prefix, value) in enumerate(stream):
            resource = as_dict(value)
            ref = "/".join(text(resource.get(k)) or "-" for k in ("Namespace", "Kind", "Name"))
            if ref not in seen:
                seen.add(ref)
                yield _k8s_device(ref, cluster)
            reader = readers.get(ref) or readers.setdefault(ref, _ResultReader(ref, facts))
            section = prefix.split(".", 1)[0]
            for result in as_list(resource.get("Results")):
                yield from reader.result(as_dict(result), f"{section}[{index}] {ref}")

    def _k8s_items(
        self, header: dict[str, Any], stream: IO[bytes], filename: str
    ) -> Iterator[ImportRecord]:
        """A cluster report's resources, each built as a dict by ijson's C code (fast path).

        One pass per section (vulnerabilities, then misconfigurations); each pass skips the
        other section in C, which costs far less than building every resource event by event.
        """
        cluster = text(header.get("ClusterName"))
        seen: set[str] = set()
        readers: dict[str, _ResultReader] = {}
        facts = FactsFilter()  # shared: workloads repeat the same vulnerabilities
        for section in ("Vulnerabilities", "Misconfigurations"):
            if not stream_contains(stream, f'"{section}"'.encode()):
                continue  # a pass over a large report that finds nothing costs seconds
            for index, value in enumerate(json_items(stream, f"{section}.item", filename)):
                resource = as_dict(value)
                ref = "/".join(text(resource.get(k)) or "-" for k in ("Namespace", "Kind", "Name"))
                if ref not in seen:
                    seen.add(ref)
                    yield _k8s_device(ref, cluster)
                reader = readers.get(ref)
                if reader is None:
                    reader = readers[ref] = _ResultReader(ref, facts)
                for result in as_list(resource.get("Results")):
                    yield from reader.result(as_dict(result), f"{section}[{index}] {ref}")

    def _legacy(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        reader = _ResultReader("artifact")
        announced = False
        for index, (_prefix, value) in enumerate(json_values(stream, ["item"], filename)):
            result = as_dict(value)
            if not announced:
                announced = True
                target = text(result.get("Target"))
                name = _OS_SUFFIX.sub("", target) or _stem(filename)
                yield DeviceRecord(
                    device_ref="artifact",
                    name=name,
                    asset_id=name,
                    os_platform=(
                        "Linux"
                        if result.get("Class") == "os-pkgs" or _OS_SUFFIX.search(target)
                        else "Other"
                    ),
                )
            yield from reader.result(result, f"[{index}] {text(result.get('Target'))}")


def _can_seek(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except AttributeError:
        return False


def _k8s_device(ref: str, cluster: str) -> DeviceRecord:
    """A cluster workload (``namespace/kind/name``) as a device."""
    return DeviceRecord(
        device_ref=ref,
        name=ref,
        asset_id=f"{cluster}/{ref}" if cluster else ref,
        os_platform="Linux",
        tags=(f"cluster:{cluster}",) if cluster else (),
    )


def _chain(first: tuple[str, Any], rest: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    yield first
    yield from rest


def _artifact_device(header: dict[str, Any], filename: str) -> DeviceRecord:
    """The scanned artifact (image, repository, file system) as a device."""
    metadata = as_dict(header.get("Metadata"))
    os_info = as_dict(metadata.get("OS"))
    tags = [text(t) for t in as_list(metadata.get("RepoTags")) if text(t)]
    name = text(header.get("ArtifactName")) or (tags[0] if tags else "") or _stem(filename)
    asset_id = text(metadata.get("ImageID")) or text(header.get("ArtifactID")) or name
    family = text(os_info.get("Family"))
    is_image = text(header.get("ArtifactType")) == "container_image"
    config = as_dict(metadata.get("ImageConfig"))
    return DeviceRecord(
        device_ref="artifact",
        name=name,
        asset_id=asset_id,
        os_platform="Linux" if (family or is_image) and family != "windows" else "Other",
        os_version=" ".join(p for p in (family, text(os_info.get("Name"))) if p),
        os_architecture=text(config.get("architecture")),
        tags=tuple(tags),
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
        stream = values if pending is None else _chain(pending, values)
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
