"""Trivy JSON reports: image and filesystem scans (schema 2 and the legacy list) and ``trivy k8s``
cluster summaries (Trivy Operator resources: ``trivy_operator.py``).

See ``docs/formats.md`` (Trivy) for the fields mapped. A file is read by ``json_fast_values``
(runs of items decoded in C into the shapes of ``_trivy_shapes``); where it gives up, the ijson
reader, which reads anything else, takes over from the same record (``fast_or_exact``).
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import PurePosixPath
from typing import IO, Any

from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
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
    purl_vendor,
    record_builder,
    severity,
    severity_from_score,
    text,
)
from remedium.importers.formats._fastjson import fast_or_exact, json_fast_values, stream_contains
from remedium.importers.formats._trivy_shapes import (
    ARTIFACT_RUNS,
    K8S_RUNS,
    LEGACY_RUNS,
    Sections,
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
# Every value a schema-2 report is read for (``json_values`` targets), in one pass.
_TARGETS = (
    *_HEADER,
    "ClusterName",
    "Vulnerabilities.item",
    "Misconfigurations.item",
    "Resources.item",
    "Findings.item",
    *(f"{_RESULT}.{f}" for f in _RESULT_FIELDS),
    *(f"{_RESULT}.{f}.item" for f in _RESULT_LISTS),
)
_TARGET, _TYPE = f"{_RESULT}.Target", f"{_RESULT}.Type"
# The top-level lists of a current ``trivy k8s`` report (resources with their results).
_K8S_RESOURCES = ("Resources.item", "Findings.item")
_LIST_ITEMS = {f"{_RESULT}.{f}.item": f for f in _RESULT_LISTS}  # prefix -> list name
_PREFIX, _SECOND = operator.itemgetter(0), operator.itemgetter(1)
# FindingRecord(...) and VulnerabilityRecord(...), without the cost of a frozen __init__.
_new_finding = record_builder(FindingRecord)
_new_vulnerability = record_builder(VulnerabilityRecord)


def _stem(filename: str) -> str:
    return PurePosixPath(filename).stem or "trivy-report"


def _str(value: object) -> str:
    # The common case (a JSON string) without text()'s type checks: this runs per field.
    return value.strip() if type(value) is str else text(value)


def _vendor_for(vuln: dict[str, Any], result_type: str) -> tuple[str, str]:
    """(vendor, purl) of the package a vulnerability or package entry names."""
    ident = vuln.get("PkgIdentifier") or vuln.get("Identifier")
    purl = _str(ident.get("PURL")) if type(ident) is dict else ""
    vendor = purl_vendor(purl) if purl else ""
    return vendor or ecosystem_vendor(result_type), purl


_NO_CVSS: tuple[str, float | None] = ("", None)
_CVSS_FALLBACKS = ("nvd", "ghsa", "redhat")


def _cvss_v3(sources: dict[str, Any], severity_source: object) -> tuple[str, float | None]:
    """The CVSS v3 vector and score of a vulnerability's ``CVSS`` (a non-empty object),
    preferring the source Trivy rated the severity from, then nvd, ghsa, redhat, then any."""
    entry = sources.get(_str(severity_source))
    if type(entry) is dict and (found := _v3(entry)):
        return found
    for name in _CVSS_FALLBACKS:
        entry = sources.get(name)
        if type(entry) is dict and (found := _v3(entry)):
            return found
    for entry in sources.values():
        if type(entry) is dict and (found := _v3(entry)):
            return found
    return _NO_CVSS


def _v3(entry: dict[str, Any]) -> tuple[str, float | None] | None:
    """(vector, score) of one source's CVSS entry; ``None`` when it has no v3 vector."""
    vector = entry.get("V3Vector")
    vector = vector.strip() if type(vector) is str else text(vector)
    if not vector:
        return None
    score = entry.get("V3Score")
    if type(score) is float:
        return vector, score
    return vector, float(score) if isinstance(score, int | float) else None


def _vulnerability(vuln: dict[str, Any], vector: str) -> VulnerabilityRecord | None:
    description = _str(vuln.get("Description"))
    if not (vector or description):
        return None
    cwes = vuln.get("CweIDs")
    return _new_vulnerability(
        vulnerability_id=_str(vuln.get("VulnerabilityID")),
        description=description or None,
        severity=severity(vuln.get("Severity")) or None,
        cvss_v3_vector=vector or None,
        published_on=_time(vuln.get("PublishedDate")),
        updated_on=_time(vuln.get("LastModifiedDate")),
        cwe_ids=tuple(text(c) for c in cwes if text(c)) if type(cwes) is list else (),
    )


def _time(value: object) -> datetime | None:
    # Dates repeat across vulnerabilities (NVD publishes on the quarter hour): parse each once.
    return _cached_time(value) if type(value) is str else parse_time(value)


_cached_time = lru_cache(maxsize=4096)(parse_time)


class _ResultReader:
    """Turns the entries of one or more Trivy ``Results`` into records for one device."""

    def __init__(self, device_ref: str, facts: FactsFilter | None = None) -> None:
        self.device_ref = device_ref
        self.checks_seen: set[str] = set()
        self.facts = facts or FactsFilter()

    def vulnerabilities(
        self, vulns: Iterable[object], result_type: str, where: str, target: str = ""
    ) -> Iterator[ImportRecord]:
        """A finding per entry of a result's ``Vulnerabilities``, and its facts when new.

        The loop a large report spends its time in, so written flat: per result, not per
        vulnerability, the ecosystem's vendor; a purl's vendor from a cache; a JSON string read
        without text()'s type checks (``text()`` is only called for anything else); the
        severity by one lookup of the spelling.
        """
        device_ref = self.device_ref
        ecosystem = ecosystem_vendor(result_type)
        facts_are_new, facts_given = self.facts.new, self.facts.last
        spellings = SEVERITY_SPELLINGS
        new_finding = _new_finding
        # A language result's target is its lock file; an OS result's, the image ("(alpine 3.18)").
        lock_file = "" if _OS_SUFFIX.search(target) else target
        for vuln in vulns:
            entry: dict[str, Any] = vuln if type(vuln) is dict else {}
            get = entry.get
            value = get("VulnerabilityID")
            vulnerability_id = value.strip() if type(value) is str else text(value)
            if not vulnerability_id:
                yield SkippedRecord("vulnerability without VulnerabilityID", where)
                continue
            sources = get("CVSS")
            vector, score = (
                _cvss_v3(sources, get("SeveritySource"))
                if type(sources) is dict and sources
                else _NO_CVSS
            )
            ident = get("PkgIdentifier") or get("Identifier")
            purl = ""
            if type(ident) is dict:
                value = ident.get("PURL")
                purl = value.strip() if type(value) is str else text(value)
            raw_severity = get("Severity")
            rating = spellings.get(raw_severity) if type(raw_severity) is str else ""
            if rating is None:
                rating = severity(raw_severity)
            product = get("PkgName")
            installed = get("InstalledVersion")
            fixed = get("FixedVersion")
            title = get("Title")
            description = get("Description")
            path = get("PkgPath")
            path = path.strip() if type(path) is str else lock_file
            # Positional, in FindingRecord's field order (test_parser_speedups pins it): a
            # call with keywords costs twice as much.
            yield new_finding(
                device_ref,
                vulnerability_id,
                (purl_vendor(purl) if purl else "") or ecosystem,  # vendor
                product.strip() if type(product) is str else text(product),
                installed.strip() if type(installed) is str else text(installed),
                fixed.strip() if type(fixed) is str else text(fixed),
                purl,
                rating or severity_from_score(score),  # severity
                vector,
                score,
                title.strip() if type(title) is str else text(title),
                description.strip() if type(description) is str else text(description),
                "",  # vex_state
                "",  # vex_justification
                path or lock_file,
            )
            # The raw fields the facts are built from: equal ones would give an equal record.
            raw = (
                vector,
                description,
                raw_severity,
                get("PublishedDate"),
                get("LastModifiedDate"),
                get("CweIDs"),
            )
            # The filter's own check first, inline: most findings repeat facts already given.
            if facts_given.get(vulnerability_id) != raw and facts_are_new(vulnerability_id, raw):
                facts = _vulnerability(entry, vector)
                if facts is not None:
                    yield facts

    def packages(
        self, packages: Iterable[object], result_type: str, where: str
    ) -> Iterator[ImportRecord]:
        """A software record per entry of a result's ``Packages``."""
        for package in packages:
            entry = as_dict(package)
            name = text(entry.get("Name"))
            if not name:
                yield SkippedRecord("package without Name", where)
                continue
            vendor, purl = _vendor_for(entry, result_type)
            yield SoftwareRecord(
                device_ref=self.device_ref,
                vendor=vendor,
                product=name,
                version=text(entry.get("Version")),
                purl=purl,
            )

    def misconfigurations(self, misconfs: Iterable[object], where: str) -> Iterator[ImportRecord]:
        """A configuration result per entry of a result's ``Misconfigurations`` (and each
        check's definition the first time it is seen)."""
        for misconf in misconfs:
            entry = as_dict(misconf)
            check_id = text(entry.get("ID")) or text(entry.get("AVDID"))
            if not check_id:
                yield SkippedRecord("misconfiguration without ID", where)
                continue
            if check_id not in self.checks_seen:
                self.checks_seen.add(check_id)
                yield ConfigurationCheckRecord(
                    configuration_id=check_id,
                    name=text(entry.get("Title")) or check_id,
                    # Trivy checks container, Kubernetes and IaC settings: applications, not
                    # the OS.
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
        """All records of one whole ``Results`` entry (k8s and legacy shapes): its packages,
        vulnerabilities, misconfigurations and secrets, in that order."""
        result_type = text(result.get("Type"))
        target = text(result.get("Target"))
        # Chained in C: a record then passes through no generator of this method.
        return itertools.chain(
            self.packages(as_list(result.get("Packages")), result_type, where),
            self.vulnerabilities(
                as_list(result.get("Vulnerabilities")), result_type, where, target
            ),
            self.misconfigurations(as_list(result.get("Misconfigurations")), where),
            map(_secret, as_list(result.get("Secrets")), itertools.repeat(target)),
        )


def _secret(secret: object, target: str) -> SkippedRecord:
    rule = text(as_dict(secret).get("RuleID")) or "secret"
    return SkippedRecord(f"exposed secret ({rule}) is not a vulnerability; not imported", target)


def _license(license_: object, where: str) -> SkippedRecord:
    name = text(as_dict(license_).get("Name"))
    return SkippedRecord(f"license finding ({name}) is not a vulnerability", where)


class TrivyParser:
    """Trivy ``--format json``: schema 2 reports, legacy lists, and ``trivy k8s`` summaries."""

    name = "trivy"

    def sniff(self, head: bytes, filename: str) -> bool:
        if not looks_like_json(head):
            return False
        keys = json_head_keys(head)
        if "SchemaVersion" in keys and ("ArtifactName" in keys or "Results" in keys):
            return True
        if "ClusterName" in keys and (
            keys & {"Vulnerabilities", "Misconfigurations", "Resources", "Findings"}
        ):
            return True
        if "Findings" in keys and b'"Kind"' in head and b'"Results"' in head:
            return True  # ``trivy k8s --report summary``'s consolidated report

        # The legacy (pre-schema-2) output is a bare list of results.
        start = head.lstrip()[:1]
        return start == b"[" and b'"Target"' in head and b'"Vulnerabilities"' in head

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        if _can_seek(stream):
            # A file: peek, then rewind, so the report can be read again by the fast reader.
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
        start = stream.tell() if _can_seek(stream) else -1
        values = json_values(stream, _TARGETS, filename)
        header, pending = _read_header(values)
        if "ClusterName" in header or (pending is not None and pending[0] in _K8S_RESOURCES):
            info = ReportInfo(format=self.name, source="trivy k8s")
            if start < 0:
                return info, self._k8s(header, _chain(pending, values))
            fast = self._k8s_items(header, stream, filename, fast=True)
            return info, fast_or_exact(
                fast, lambda: self._k8s_items(header, stream, filename, fast=False)
            )
        if "SchemaVersion" not in header and pending is None and not header:
            raise ReportError("not a Trivy report: no SchemaVersion or Results", filename=filename)
        info = ReportInfo(
            format=self.name, source="trivy", scanned_at=parse_time(header.get("CreatedAt"))
        )
        if start < 0 or pending is None:
            # Not seekable, or nothing after the header (``values`` has read it all): walk on.
            return info, self._artifact(header, _chain(pending, values), filename)

        def exact() -> Iterator[ImportRecord]:
            stream.seek(start)
            again = json_values(stream, _TARGETS, filename)
            header, pending = _read_header(again)
            return self._artifact(header, _chain(pending, again), filename)

        # The whole report again from the start (the header values are no-ops the second time).
        fast = self._artifact(
            header, json_fast_values(stream, _TARGETS, start=start, runs=ARTIFACT_RUNS), filename
        )
        return info, fast_or_exact(fast, exact)

    def _artifact(
        self, header: dict[str, Any], values: Iterator[tuple[str, Any]], filename: str
    ) -> Iterator[ImportRecord]:
        """A single-artifact report from the values ``json_values`` yields for ``_TARGETS``
        (header values, read already, are not read again): a run of items of one list goes to
        the result reader in one go."""
        yield _artifact_device(header, filename)
        reader = _ResultReader("artifact")
        result_type = target = ""
        index = -1
        for prefix, run in itertools.groupby(values, key=_PREFIX):
            field = _LIST_ITEMS.get(prefix)
            if field is None:
                for _prefix, value in run:
                    if prefix == _TARGET:
                        # Target opens a new result (Trivy writes it first).
                        index += 1
                        target, result_type = text(value), ""
                    elif prefix == _TYPE:
                        result_type = text(value)
                # Anything else (Class, header fields after the results) is not read.
                continue
            items = map(_SECOND, run)
            where = f"Results[{max(index, 0)}] ({target})"
            if field == "Vulnerabilities":
                yield from reader.vulnerabilities(items, result_type, where, target)
            elif field == "Packages":
                yield from reader.packages(items, result_type, where)
            elif field == "Misconfigurations":
                yield from reader.misconfigurations(items, where)
            elif field == "Secrets":
                yield from (_secret(value, target) for value in items)
            else:
                yield from (_license(value, where) for value in items)

    def _k8s(
        self, header: dict[str, Any], values: Iterator[tuple[str, Any]]
    ) -> Iterator[ImportRecord]:
        cluster = text(header.get("ClusterName"))
        seen: set[str] = set()
        readers: dict[str, _ResultReader] = {}
        facts = FactsFilter()
        for index, (prefix, value) in enumerate(values):
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
        self, header: dict[str, Any], stream: IO[bytes], filename: str, *, fast: bool
    ) -> Iterator[ImportRecord]:
        """A cluster report's resources, each built whole in C (by the json module's decoder
        when ``fast``, else by ijson).

        One pass per section (vulnerabilities, then misconfigurations); each pass reads past
        the other section one resource at a time, which costs far less than building every
        resource event by event. The fast reader's first pass notes whether the other section
        has any resource: a report of one section (``trivy k8s --scanners vuln`` still writes
        ``"Misconfigurations": []``) is then read once, not twice.
        """
        cluster = text(header.get("ClusterName"))
        seen: set[str] = set()
        readers: dict[str, _ResultReader] = {}
        facts = FactsFilter()  # shared: workloads repeat the same vulnerabilities
        other_has_items = True
        top_keys: set[str] | None = None  # known after a fast pass: no byte search is needed
        for section, other in (
            ("Vulnerabilities", "Misconfigurations"),
            ("Misconfigurations", "Vulnerabilities"),
            # Trivy 0.50 on: every resource once, its results holding both kinds
            ("Resources", ""),
            ("Findings", ""),  # ``--report summary``: the consolidated report
        ):
            if (other and not other_has_items) or not (
                section in top_keys
                if top_keys is not None
                else stream_contains(stream, f'"{section}"'.encode())
            ):
                continue  # a pass over a large report that finds nothing costs seconds
            if fast:
                found = Sections(section)
                targets = [f"{section}.item", f"{other or section}.item"]
                resources: Iterator[Any] = found.values(
                    json_fast_values(stream, targets, start=0, runs=K8S_RUNS, keys=found.keys)
                )
            else:
                resources = json_items(stream, f"{section}.item", filename)
            for index, value in enumerate(resources):
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
            if fast:
                other_has_items, top_keys = found.other_has_items, found.keys

    def _legacy(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        """A legacy report (a bare list of results), each result built whole."""
        if not _can_seek(stream):
            return self._legacy_results(json_values(stream, ["item"], filename), filename)
        start = stream.tell()

        def exact() -> Iterator[ImportRecord]:
            stream.seek(start)
            return self._legacy_results(json_values(stream, ["item"], filename), filename)

        fast = json_fast_values(stream, ["item"], start=start, runs=LEGACY_RUNS)
        return fast_or_exact(self._legacy_results(fast, filename), exact)

    def _legacy_results(
        self, values: Iterator[tuple[str, Any]], filename: str
    ) -> Iterator[ImportRecord]:
        reader = _ResultReader("artifact")
        announced = False
        for index, (_prefix, value) in enumerate(values):
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


def _read_header(
    values: Iterator[tuple[str, Any]],
) -> tuple[dict[str, Any], tuple[str, Any] | None]:
    """The header fields read before the first other value, and that value (``None`` when the
    report has nothing else)."""
    header: dict[str, Any] = {}
    for prefix, value in values:
        if prefix in _HEADER or prefix == "ClusterName":
            header[prefix] = value
            continue
        return header, (prefix, value)
    return header, None


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


def _chain(
    first: tuple[str, Any] | None, rest: Iterator[tuple[str, Any]]
) -> Iterator[tuple[str, Any]]:
    if first is not None:
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
