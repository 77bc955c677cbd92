"""OWASP Dependency-Check reports, XML (``--format XML``) and JSON (``--format JSON``); see
``docs/formats.md`` (OWASP Dependency-Check)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from remedium.importers.formats import _xmlstream as xml
from remedium.importers.formats._advisory import (
    cve_or_own,
    cvss3_from_metrics,
    cwe_ids,
    facts,
    score,
)
from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_first,
    json_items,
    looks_like_json,
    parse_time,
    peek_first_byte,
    purl_vendor_product,
    seekable,
    severity,
    text,
)
from remedium.importers.formats._xmlstream import Element, cpe_vendor_product
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
    SoftwareRecord,
)

_DEVICE_REF = "project"
_XML_MARK = b"jeremylong.github.io/DependencyCheck"


@dataclass(frozen=True, slots=True)
class _Package:
    vendor: str
    product: str
    version: str
    purl: str = ""
    cpe: str = ""


@dataclass(frozen=True, slots=True)
class _Vulnerability:
    name: str
    source: str
    severity: str
    cvss3: dict[str, str]
    cwes: tuple[str, ...]
    description: str
    fixed: str
    aliases: tuple[str, ...] = ()


class DependencyCheckParser:
    """Dependency-Check's XML (``<analysis>``, schema dependency-check.2.x) or JSON
    (``reportSchema``, ``projectInfo``, ``dependencies``) report."""

    name = "dependency_check"

    def sniff(self, head: bytes, filename: str) -> bool:
        if looks_like_json(head):
            return (b'"reportSchema"' in head and b'"dependencies"' in head) or (
                b'"scanInfo"' in head and b'"engineVersion"' in head
            )
        return _XML_MARK in head and b"<analysis" in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        first, stream = peek_first_byte(stream)
        if first == b"{":
            return self._json(seekable(stream), filename)
        head, stream = xml.peek(stream)
        if b"<analysis" not in head:
            raise ReportError(
                "not a Dependency-Check report: no <analysis> root", filename=filename
            )
        info = ReportInfo(format=self.name, source="dependency-check")
        return info, self._xml(stream, filename)

    # -- XML -------------------------------------------------------------------------------

    def _xml(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        device_done = False
        for _event, element in xml.walk(
            stream, filename, end_tags=frozenset({"projectInfo", "dependency"})
        ):
            name = xml.local(element.tag)
            if name == "projectInfo":
                yield _device(
                    xml.child_text(element, "name"),
                    xml.child_text(element, "version"),
                    xml.child_text(element, "groupID"),
                    xml.child_text(element, "artifactID"),
                )
                device_done = True
                continue
            if not device_done:
                raise ReportError(
                    "dependency before projectInfo", where="dependencies", filename=filename
                )
            package = _xml_package(element)
            file_name = xml.child_text(element, "fileName")
            related = [
                _xml_package(r)
                for rs in xml.children(element, "relatedDependencies")
                for r in xml.children(rs, "relatedDependency")
            ]
            vulns: list[_Vulnerability] = []
            for group in xml.children(element, "vulnerabilities"):
                for vuln in group:
                    tag = xml.local(vuln.tag)
                    where = f"dependency {file_name} / {xml.child_text(vuln, 'name')}"
                    if tag == "suppressedVulnerability":
                        yield SkippedRecord("suppressed in Dependency-Check", where)
                    elif tag == "vulnerability":
                        vulns.append(_xml_vulnerability(vuln))
            yield from _findings(package, related, vulns, file_name)

    # -- JSON ------------------------------------------------------------------------------

    def _json(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        project = as_dict(json_first(stream, "projectInfo", filename))
        stream.seek(0)
        if not project:
            raise ReportError("not a Dependency-Check report: no projectInfo", filename=filename)
        info = ReportInfo(
            format=self.name,
            source="dependency-check",
            scanned_at=parse_time(project.get("reportDate")),
        )

        def records() -> Iterator[ImportRecord]:
            yield _device(
                text(project.get("name")),
                text(project.get("version")),
                text(project.get("groupID")),
                text(project.get("artifactID")),
            )
            for raw in json_items(stream, "dependencies.item", filename):
                dependency = as_dict(raw)
                file_name = text(dependency.get("fileName"))
                for suppressed in as_list(dependency.get("suppressedVulnerabilities")):
                    where = f"dependency {file_name} / {text(as_dict(suppressed).get('name'))}"
                    yield SkippedRecord("suppressed in Dependency-Check", where)
                yield from _findings(
                    _json_package(dependency),
                    [
                        _json_package(as_dict(r))
                        for r in as_list(dependency.get("relatedDependencies"))
                    ],
                    [
                        _json_vulnerability(as_dict(v))
                        for v in as_list(dependency.get("vulnerabilities"))
                    ],
                    file_name,
                )

        return info, records()


def _device(name: str, version: str, group: str, artifact: str) -> DeviceRecord:
    """The scanned project: its name and version; ``groupId:artifactId`` as its id (Maven)."""
    label = f"{name} {version}".strip() if name else ":".join(p for p in (group, artifact) if p)
    asset = ":".join(p for p in (group, artifact) if p) or name
    return DeviceRecord(
        device_ref=_DEVICE_REF,
        name=label or "dependency-check project",
        asset_id=asset,
        os_platform="Other",
    )


def _package(purls: list[str], cpes: list[str], file_name: str, version: str) -> _Package:
    """The dependency's package: its package URL, else its CPE, else its file name."""
    for purl in purls:
        vendor, product, purl_version = purl_vendor_product(purl)
        if product:
            return _Package(vendor, product, purl_version or version, purl=purl)
    for cpe in cpes:
        vendor, product, cpe_version = cpe_vendor_product(cpe)
        if product:
            return _Package(vendor, product, cpe_version or version, cpe=cpe)
    return _Package("", file_name, version)


def _xml_package(element: Element) -> _Package:
    purls: list[str] = []
    cpes: list[str] = []
    for identifiers in xml.children(element, "identifiers"):
        for identifier in identifiers:
            value = xml.child_text(identifier, "id")
            if xml.local(identifier.tag) == "package":
                purls.append(value)
            elif xml.local(identifier.tag) == "vulnerabilityIds":
                cpes.append(value)
    return _package(purls, cpes, xml.child_text(element, "fileName"), "")


def _json_package(dependency: dict[str, Any]) -> _Package:
    purls = [text(as_dict(p).get("id")) for p in as_list(dependency.get("packages"))]
    purls += [text(as_dict(p).get("id")) for p in as_list(dependency.get("packageIds"))]
    cpes = [text(as_dict(v).get("id")) for v in as_list(dependency.get("vulnerabilityIds"))]
    return _package(purls, cpes, text(dependency.get("fileName")), text(dependency.get("version")))


def _xml_vulnerability(vuln: Element) -> _Vulnerability:
    cvss3 = xml.child(vuln, "cvssV3")
    metrics = {xml.local(m.tag): xml.text(m) for m in cvss3} if cvss3 is not None else {}
    cwes = [xml.text(c) for group in xml.children(vuln, "cwes") for c in xml.children(group, "cwe")]
    fixed = ""
    for group in xml.children(vuln, "vulnerableSoftware"):
        for software in xml.children(group, "software"):
            if software.get("vulnerabilityIdMatched") == "true":
                fixed = (software.get("versionEndExcluding") or "").strip()
                break
    return _Vulnerability(
        name=xml.child_text(vuln, "name"),
        source=vuln.get("source", ""),
        severity=xml.child_text(vuln, "severity"),
        cvss3=metrics,
        cwes=cwe_ids(cwes),
        description=" ".join(xml.child_text(vuln, "description").split()),
        fixed=fixed,
    )


def _json_vulnerability(vuln: dict[str, Any]) -> _Vulnerability:
    cvss3 = as_dict(vuln.get("cvssv3"))
    fixed = ""
    for raw in as_list(vuln.get("vulnerableSoftware")):
        software = as_dict(as_dict(raw).get("software"))
        if text(software.get("vulnerabilityIdMatched")) == "true":
            fixed = text(software.get("versionEndExcluding"))
            break
    aliases = [text(a) for a in as_list(vuln.get("aliases"))]
    return _Vulnerability(
        name=text(vuln.get("name")),
        source=text(vuln.get("source")),
        severity=text(vuln.get("severity")),
        cvss3={k: text(v) for k, v in cvss3.items()},
        cwes=cwe_ids(as_list(vuln.get("cwes"))),
        description=text(vuln.get("description")),
        fixed=fixed,
        aliases=tuple(aliases),
    )


def _findings(
    package: _Package, related: list[_Package], vulns: list[_Vulnerability], file_name: str
) -> Iterator[ImportRecord]:
    if not vulns:
        return
    packages = [package] + [r for r in related if r.product and r != package]
    for each in packages:
        yield SoftwareRecord(
            device_ref=_DEVICE_REF,
            vendor=each.vendor,
            product=each.product,
            version=each.version,
            purl=each.purl,
            cpe=each.cpe,
        )
    for vuln in vulns:
        if not vuln.name:
            yield SkippedRecord("vulnerability without a name", f"dependency {file_name}")
            continue
        vulnerability_id = cve_or_own(vuln.name, vuln.aliases)
        vector = cvss3_from_metrics(vuln.cvss3)
        base = score(vuln.cvss3.get("baseScore"))
        rating = severity(vuln.severity)
        for each in packages:
            yield FindingRecord(
                device_ref=_DEVICE_REF,
                vulnerability_id=vulnerability_id,
                vendor=each.vendor,
                product=each.product,
                installed_version=each.version,
                fixed_version=vuln.fixed,
                purl=each.purl,
                severity=rating,
                cvss_v3_vector=vector,
                cvss_v3_score=base,
                description=vuln.description,
            )
        record = facts(
            vulnerability_id, description=vuln.description, cvss_v3_vector=vector, cwes=vuln.cwes
        )
        if record is not None:
            yield record
