"""Amazon Inspector (Inspector2) findings: ``aws inspector2 list-findings`` output and the
JSON findings report Inspector exports to S3; see ``docs/formats.md`` (AWS Inspector2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._advisory import cve_or_own, cvss3_vector, facts, require, score
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_items,
    looks_like_json,
    parse_time,
    severity,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportInfo,
    SkippedRecord,
)

# Inspector's packageManager -> the vendor remedium records for the package's ecosystem.
_MANAGER_VENDORS = {
    "BUNDLER": "gem",
    "GEMSPEC": "gem",
    "CARGO": "cargo",
    "COMPOSER": "composer",
    "DOTNET_CORE": "nuget",
    "NUGET": "nuget",
    "GOBINARY": "golang",
    "GOMOD": "golang",
    "GO": "golang",
    "JAR": "maven",
    "POM": "maven",
    "NODEPKG": "npm",
    "NPM": "npm",
    "PNPM": "npm",
    "YARN": "npm",
    "PIPENV": "pypi",
    "POETRY": "pypi",
    "PYTHONPKG": "pypi",
    "PYTHON": "pypi",
}
_SKIPPED_TYPES = {
    "CODE_VULNERABILITY": "code vulnerability (static analysis finding, not a package)",
    "NETWORK_REACHABILITY": "network reachability finding (no vulnerability id)",
}


class AwsInspector2Parser:
    """``{"findings": [{findingArn, type, severity, status, resources: [...],
    packageVulnerabilityDetails: {...}, inspectorScoreDetails, epss}]}``."""

    name = "aws_inspector2"

    def sniff(self, head: bytes, filename: str) -> bool:
        return (
            looks_like_json(head)
            and b'"findingArn"' in head
            and (b"arn:aws:inspector2:" in head or b'"packageVulnerabilityDetails"' in head)
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        stream = require(self, stream, filename, "an Inspector2 findings list (no findingArn)")
        # Only the active findings of the listed resources: fixing what is not listed would be
        # wrong for a filtered listing, so the report is partial.
        info = ReportInfo(format=self.name, source="aws-inspector2", complete_scan=False)
        return info, self._records(json_items(stream, "findings.item", filename))

    def _records(self, findings: Iterator[Any]) -> Iterator[ImportRecord]:
        devices: set[str] = set()
        for index, raw in enumerate(findings):
            finding = as_dict(raw)
            where = f"findings[{index}] {text(finding.get('title'))}".strip()
            kind = text(finding.get("type"))
            if kind in _SKIPPED_TYPES:
                yield SkippedRecord(_SKIPPED_TYPES[kind], where)
                continue
            status = text(finding.get("status")).upper()
            if status == "CLOSED":
                yield SkippedRecord("closed in Inspector (remediated)", where)
                continue
            details = as_dict(finding.get("packageVulnerabilityDetails"))
            own = text(details.get("vulnerabilityId"))
            if not own:
                yield SkippedRecord("finding without a vulnerability id", where)
                continue
            related = [
                text(r) if not isinstance(r, dict) else text(r.get("id"))
                for r in as_list(details.get("relatedVulnerabilities"))
            ]
            vulnerability_id = cve_or_own(own, related)
            vector, base = _cvss(finding, details)
            epss = score(as_dict(finding.get("epss")).get("score"))
            description = text(finding.get("description"))
            rating = severity(finding.get("severity"))  # UNTRIAGED: not rated, stays empty
            packages = [as_dict(p) for p in as_list(details.get("vulnerablePackages"))]
            resources = [as_dict(r) for r in as_list(finding.get("resources"))]
            if not packages:
                yield SkippedRecord("finding names no vulnerable package", where)
                continue
            for resource in resources:
                device = _device(resource)
                if device is None:
                    yield SkippedRecord("resource without an id", where)
                    continue
                if device.device_ref not in devices:
                    devices.add(device.device_ref)
                    yield device
                seen: set[tuple[str, str, str]] = set()
                for package in packages:
                    key = (
                        text(package.get("name")),
                        _version(package),
                        text(package.get("fixedInVersion")),
                    )
                    if key in seen:  # the same package at two paths: one finding
                        continue
                    seen.add(key)
                    yield FindingRecord(
                        device_ref=device.device_ref,
                        vulnerability_id=vulnerability_id,
                        vendor=_vendor(package, resource),
                        product=text(package.get("name")),
                        installed_version=_version(package),
                        fixed_version=text(package.get("fixedInVersion")),
                        severity=rating,
                        cvss_v3_vector=vector,
                        cvss_v3_score=base,
                        title=text(finding.get("title")),
                        description=description,
                    )
            record = facts(
                vulnerability_id, description=description, cvss_v3_vector=vector, epss=epss
            )
            if record is not None:
                yield record


def _cvss(finding: dict[str, Any], details: dict[str, Any]) -> tuple[str, float | None]:
    """The CVSS v3 vector and score Inspector rated the finding with (``inspectorScoreDetails
    .adjustedCvss``), else the first v3 entry of the vulnerability's ``cvss``."""
    adjusted = as_dict(as_dict(finding.get("inspectorScoreDetails")).get("adjustedCvss"))
    vector = cvss3_vector(adjusted.get("scoringVector"))
    if vector:
        return vector, score(adjusted.get("score"))
    for raw in as_list(details.get("cvss")):
        entry = as_dict(raw)
        vector = cvss3_vector(entry.get("scoringVector"))
        if vector or text(entry.get("version")).startswith("3"):
            return vector, score(entry.get("baseScore"))
    return "", None


def _version(package: dict[str, Any]) -> str:
    """The installed version as Inspector writes it: ``epoch:version-release`` for OS packages."""
    version = text(package.get("version"))
    release = text(package.get("release"))
    epoch = package.get("epoch")
    if release:
        version = f"{version}-{release}"
    if isinstance(epoch, int) and epoch > 0:
        version = f"{epoch}:{version}"
    return version


def _vendor(package: dict[str, Any], resource: dict[str, Any]) -> str:
    manager = text(package.get("packageManager")).upper()
    if manager in _MANAGER_VENDORS:
        return _MANAGER_VENDORS[manager]
    if manager == "OS":
        details = as_dict(resource.get("details"))
        platform = text(
            as_dict(details.get("awsEc2Instance")).get("platform")
            or as_dict(details.get("awsEcrContainerImage")).get("platform")
        )
        return platform.split("_", 1)[0].lower() if platform else ""
    return ""


def _device(resource: dict[str, Any]) -> DeviceRecord | None:
    """A resource as a device: an EC2 instance, a container image in ECR, a Lambda function."""
    resource_id = text(resource.get("id"))
    if not resource_id:
        return None
    details = as_dict(resource.get("details"))
    tags = as_dict(resource.get("tags"))
    kind = text(resource.get("type"))
    ec2 = as_dict(details.get("awsEc2Instance"))
    image = as_dict(details.get("awsEcrContainerImage"))
    function = as_dict(details.get("awsLambdaFunction"))
    if ec2:
        platform = text(ec2.get("platform"))
        addresses = [text(a) for a in as_list(ec2.get("ipV4Addresses"))]
        return DeviceRecord(
            device_ref=resource_id,
            name=text(tags.get("Name")) or resource_id,
            ip_address=addresses[0] if addresses else "",
            asset_id=resource_id,
            os_platform=_platform(platform),
            os_version=platform,
            first_seen=parse_time(ec2.get("launchedAt")),
        )
    if image:
        repository = text(image.get("repositoryName"))
        tags_of_image = [text(t) for t in as_list(image.get("imageTags")) if text(t)]
        name = f"{repository}:{tags_of_image[0]}" if repository and tags_of_image else repository
        return DeviceRecord(
            device_ref=resource_id,
            name=name or resource_id,
            asset_id=text(image.get("imageHash")) or resource_id,
            os_platform="Linux",
            os_version=text(image.get("platform")),
            os_architecture=text(image.get("architecture")),
        )
    if function:
        architectures = [text(a) for a in as_list(function.get("architectures"))]
        return DeviceRecord(
            device_ref=resource_id,
            name=text(function.get("functionName")) or resource_id,
            asset_id=resource_id,
            os_platform="Other",
            os_version=text(function.get("runtime")),
            os_architecture=architectures[0] if architectures else "",
        )
    return DeviceRecord(
        device_ref=resource_id,
        name=resource_id,
        asset_id=resource_id,
        os_platform="Other",
        os_version=kind,
    )


def _platform(platform: str) -> str:
    value = platform.upper()
    if "WINDOWS" in value:
        return "Other"  # the Windows release is not given precisely enough for remedium's names
    return "Linux" if value else ""
