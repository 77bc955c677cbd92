"""The plain records every importer yields. Parsers never touch the database.

A parser reads one file and yields, in any order but devices before the findings that name them:

- :class:`DeviceRecord`: a device as the source sees it;
- :class:`SoftwareRecord`: one product version installed on a device;
- :class:`FindingRecord`: one vulnerability on a device (through a product when known);
- :class:`ConfigurationResultRecord`: one configuration check's result on a device;
- :class:`VulnerabilityRecord`: facts about a vulnerability carried in the report;
- :class:`ConfigurationCheckRecord`: the definition of a configuration check;
- :class:`SkippedRecord`: something the file holds that remedium cannot use, with the reason.

Devices are referred to by ``device_ref``, the parser's own key for a device within one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as the source sees it. Empty strings mean "not reported"."""

    device_ref: str
    name: str
    ip_address: str = ""
    asset_id: str = ""  # a stable id from the source (agent id, image digest, AWS instance id)
    os_platform: str = ""
    os_version: str = ""
    os_architecture: str = ""
    device_group: str = ""
    device_value: str = ""  # Low | Normal | High
    is_intune_managed: bool | None = None
    is_aad_joined: bool | None = None
    aad_device_id: str = ""
    internet_facing: bool | None = None
    tags: tuple[str, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    # Installed OS updates (e.g. Windows "KB5012649"), when the inventory lists them.
    hotfixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SoftwareRecord:
    """One version of a product installed on a device."""

    device_ref: str
    vendor: str
    product: str
    version: str
    display_name: str = ""
    display_vendor: str = ""
    purl: str = ""
    cpe: str = ""
    is_operating_system: bool = False
    end_of_support_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One vulnerability found on one device, through one installed product when known."""

    device_ref: str
    vulnerability_id: str
    vendor: str = ""
    product: str = ""
    installed_version: str = ""
    fixed_version: str = ""
    purl: str = ""
    severity: str = ""  # Low | Medium | High | Critical, as the source rated it
    cvss_v3_vector: str = ""
    cvss_v3_score: float | None = None
    title: str = ""
    description: str = ""
    # VEX analysis carried by the report: "not_affected" findings are skipped, with the reason.
    vex_state: str = ""
    vex_justification: str = ""
    # Where the scanner found it: a file or lock file, a layer path, a Kubernetes resource.
    path: str = ""


@dataclass(frozen=True, slots=True)
class ConfigurationResultRecord:
    """The result of one configuration check on one device."""

    device_ref: str
    configuration_id: str
    is_compliant: bool


@dataclass(frozen=True, slots=True)
class ConfigurationCheckRecord:
    """The definition of a configuration check, when the report carries it."""

    configuration_id: str
    name: str
    category: str  # Accounts | Application | Network | OS | SecurityControls
    weight: float = 5.0
    sub_category: str = ""
    description: str = ""
    remediation: str = ""
    related_component: str = ""
    benchmarks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VulnerabilityRecord:
    """Facts about a vulnerability, from a report or an intelligence feed."""

    vulnerability_id: str
    description: str | None = None
    severity: str | None = None
    cvss_v3_vector: str | None = None
    # A CVSS v3 base score the source gives without its vector (kept; a vector's own score wins).
    cvss_v3_score: float | None = None
    cvss_v4_vector: str | None = None
    published_on: datetime | None = None
    updated_on: datetime | None = None
    public_exploit: bool | None = None
    exploit_verified: bool | None = None
    exploit_in_kit: bool | None = None
    kev_listed: bool | None = None
    kev_date_added: datetime | None = None
    kev_due_date: datetime | None = None
    kev_ransomware: bool | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    cwe_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """Something in the file that was not imported, and why."""

    reason: str
    where: str = ""


ImportRecord = (
    DeviceRecord
    | SoftwareRecord
    | FindingRecord
    | ConfigurationResultRecord
    | ConfigurationCheckRecord
    | VulnerabilityRecord
    | SkippedRecord
)


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """What a parser learns about the report as a whole before yielding records."""

    format: str
    source: str  # the scanner or tool that produced it, e.g. "trivy"
    scanned_at: datetime | None = None
    # True when the report lists everything the source saw on its devices, so weaknesses
    # it no longer lists are fixed; False for partial reports (VEX documents, advisories).
    complete_scan: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)
    # True for a format that cannot prove it is whole (a CSV export cut at a row boundary reads
    # like a whole one): it fixes nothing unless the user says it is a complete scan
    # (``remedium import --complete``), which then sets ``complete_scan``.
    may_be_complete: bool = False


class ReportError(Exception):
    """A report that cannot be imported. The message names the file, the place and the fault."""

    def __init__(self, message: str, *, where: str = "", filename: str = "") -> None:
        self.detail = message
        self.where = where
        self.filename = filename
        place = f"{filename}: " if filename else ""
        place += f"{where}: " if where else ""
        super().__init__(f"{place}{message}")


class ReportParser(Protocol):
    """One report format. ``sniff`` looks at the first bytes; ``parse`` streams the records."""

    name: str

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when ``head`` (the first 64 KiB of the file) looks like this format."""
        ...

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Return the report's info and an iterator over its records (lazily, streaming)."""
        ...
