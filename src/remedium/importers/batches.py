"""A report's records, digested into the batches the pipeline writes. Pure: no database.

A :class:`Digest` does the per-record work that needs no database: it checks that software,
findings and results name a device the report describes, applies the report's VEX, normalises
product names, numbers the file's devices and products in the order it introduces them and
removes repeats within a batch. What it emits, a :class:`Batch`, is made of plain tuples so it
crosses a pipe cheaply: for a large file the digest runs in a parser process beside the
importing one (``importers/worker.py``), which then only maps numbers to ids and writes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from remedium.importers.records import (
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)

BATCH = 5000  # records digested before a batch is handed to the writer

_SPACES = re.compile(r"\s+")
# A name with one of these is a path, a domain or a package id: shown as spelled (``_display``).
_IDENTIFIER_MARKS = re.compile(r"[/.:@]")
Product = tuple[str, str]  # normalised (vendor, product)


def normalise_name(value: str) -> str:
    """Defender-style product naming: lower case, words joined by underscores."""
    return _SPACES.sub("_", value.strip().lower())


@lru_cache(maxsize=65536)
def vendor_product(vendor: str, product: str, purl: str = "") -> Product:
    """The normalised (vendor, product) of a record; the vendor is guessed when missing.

    Cached: a report names the same few thousand packages on every device and finding.
    """
    product_name = normalise_name(product)
    vendor_name = normalise_name(vendor)
    if not vendor_name and purl.startswith("pkg:"):
        # pkg:type/namespace/name@version: the namespace (or the ecosystem) stands for the vendor.
        body = purl[4:].split("@", 1)[0].split("?", 1)[0]
        parts = body.split("/")
        vendor_name = normalise_name(parts[1] if len(parts) > 2 else parts[0])
    return vendor_name or product_name, product_name


def _display(raw: str, *, package: bool = False) -> str:
    """How a product or vendor name is shown.

    Package names (a purl names them: ``github.com/gogo/protobuf``, ``libx11-6``, ``lodash``)
    are identifiers and are shown as the ecosystem spells them; so are names that look like a
    path or a domain. Other names a source already cased stay ("OpenSSL"); plain lower-case
    words are title-cased ("chrome" -> "Chrome").
    """
    text = raw.strip()
    if package or _IDENTIFIER_MARKS.search(text):
        return text
    text = text.replace("_", " ")
    return text if text != text.lower() else text.title()


def software_row(
    key: Product, record: SoftwareRecord | None, finding: FindingRecord | None = None
) -> dict[str, Any]:
    """A ``software`` row for the normalised ``key``, with display names from the record."""
    vendor, product = key
    raw_product = (record.product if record else finding.product if finding else "") or product
    raw_vendor = (record.vendor if record else finding.vendor if finding else "") or vendor
    purl = (record.purl if record else finding.purl if finding else "") or ""
    purl_type = purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else None
    cpe = record.cpe if record else ""
    return {
        "vendor": vendor[:200],
        "product": product[:200],
        "display_name": (
            (record.display_name if record else "") or _display(raw_product, package=bool(purl))
        )[:300],
        "display_vendor": (
            (record.display_vendor if record else "") or _display(raw_vendor, package=bool(purl))
        )[:300],
        "product_key": f"{vendor}-_-{product}"[:420],
        "purl_type": purl_type,
        "purl_name": purl[4:].split("@", 1)[0][:300] if purl_type else None,
        "cpe_prefix": ":".join(cpe.split(":")[:5])[:300] if cpe else None,
        "is_operating_system": bool(record.is_operating_system) if record else False,
        "end_of_support_on": record.end_of_support_on if record else None,
        "end_of_support_versions": [],
    }


def placed_software_row(key: Product) -> dict[str, Any]:
    """The ``software`` row of a product an NVD CPE names (for findings placed on it)."""
    row = software_row(key, None)
    row["cpe_prefix"] = f"cpe:2.3:a:{key[0]}:{key[1]}"[:300]
    return row


# The marker (``software.purl_type``) of a placeholder product: a scanner's own detection (a
# Nessus plugin, an OpenVAS NVT, a Qualys QID) holding findings that name no product until
# intelligence names the real one (importers/detections.py).
DETECTION = "detection"


def detection_row(source: str, title: str, vulnerability: str) -> tuple[Product, dict[str, Any]]:
    """The placeholder product of a scanner's detection (by its title, else the vulnerability
    id): vendor ``<source> detection``, shown as such."""
    shown_vendor = f"{source or 'scanner'} detection"
    shown = " ".join(title.split()) or vulnerability
    key = (normalise_name(shown_vendor)[:200], normalise_name(shown)[:200])
    row = software_row(key, None)
    row.update(
        display_name=shown[:300],
        display_vendor=shown_vendor.title()[:300],
        purl_type=DETECTION,
    )
    return key, row


# (device number, product number, vulnerability id, installed version, fixed version or None,
# path or None)
Finding = tuple[int, int, str, str, str | None, str | None]


@dataclass(slots=True)
class Batch:
    """One batch of a report, ready to write. Devices and products are numbered per file."""

    devices: list[tuple[int, DeviceRecord]] = field(default_factory=list)
    vulnerabilities: list[VulnerabilityRecord] = field(default_factory=list)
    checks: list[ConfigurationCheckRecord] = field(default_factory=list)
    # Products the file names for the first time, numbered on from the previous batch's last.
    products: list[tuple[Product, dict[str, Any]]] = field(default_factory=list)
    # (device number, product number, version), from the software lists and the findings.
    installs: list[tuple[int, int, str]] = field(default_factory=list)
    # Devices whose software list the report gives (their other versions are removed).
    software_devices: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # What findings say of the vulnerabilities they name first (to create unknown ones).
    finding_facts: list[VulnerabilityRecord] = field(default_factory=list)
    # Findings that name no product: (device number, vulnerability id, installed, fixed, path,
    # the scanner's own detection); the writer places them on the product the vulnerability's
    # NVD record names, else on the scanner's detection (docs/imports.md).
    unplaced: list[tuple[int, str, str, str | None, str | None, str]] = field(default_factory=list)
    # (device number, configuration id, compliant)
    results: list[tuple[int, str, bool]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    position: int = 0  # bytes of the file read when the batch was taken (for progress)


# The ``device_ref`` of records whose report does not say which device it describes (a Wazuh
# API export for one agent, a package list): they go to the device the user names on import.
UNNAMED = ""
_UNNAMED_SKIP = "{what} in a report that does not name its device (give the device: --device NAME)"


class Digest:
    """Turns records into batches, remembering what the file named before (devices, products,
    vulnerabilities); that memory is bounded by the inventory's size, not the file's.

    ``device_name`` is the device the user says the report describes: records of the
    :data:`UNNAMED` device are given to it (and skipped, with the reason, without it).
    """

    def __init__(self, device_name: str = "") -> None:
        self.device_name = device_name.strip()
        self.device_numbers: dict[str, int] = {}
        self.product_numbers: dict[Product, int] = {}
        self.named_vulnerabilities: set[str] = set()
        # The last facts passed on for each vulnerability: a report that repeats them with every
        # finding (CycloneDX 1.2's extension, under each component) sends them once, not 150,000
        # times over the pipe to the writer, which would apply them again to no effect.
        self._last_facts: dict[str, VulnerabilityRecord] = {}
        self.software_devices: set[int] = set()
        self.pending = 0
        self._batch = Batch()
        self._software: list[SoftwareRecord] = []
        self._findings: list[FindingRecord] = []
        self._results: dict[tuple[int, str], bool] = {}

    def add(self, record: ImportRecord) -> None:
        """Take one record into the current batch."""
        kind = type(record)
        if kind is FindingRecord:
            self._findings.append(record)  # type: ignore[arg-type]
        elif kind is SoftwareRecord:
            self._software.append(record)  # type: ignore[arg-type]
        elif kind is DeviceRecord:
            self._device(record)  # type: ignore[arg-type]
        elif kind is SkippedRecord:
            self._batch.skipped[record.reason] += 1  # type: ignore[union-attr]
            return
        elif kind is VulnerabilityRecord:
            # Applying the same facts twice in a row changes nothing (intel.service); facts that
            # differ from the last ones, even facts seen before them, are passed on.
            vulnerability_id = record.vulnerability_id  # type: ignore[union-attr]
            if self._last_facts.get(vulnerability_id) != record:
                self._last_facts[vulnerability_id] = record  # type: ignore[assignment]
                self._batch.vulnerabilities.append(record)  # type: ignore[arg-type]
        elif kind is ConfigurationCheckRecord:
            self._batch.checks.append(record)  # type: ignore[arg-type]
        elif kind is ConfigurationResultRecord:
            self._result(record)  # type: ignore[arg-type]
        else:
            raise TypeError(f"not an import record: {record!r}")
        self.pending += 1

    def take(self, position: int = 0) -> Batch:
        """The batch digested so far; the next one starts empty."""
        batch = self._batch
        installs: dict[tuple[int, int, str], None] = {}
        for record in self._software:
            self._software_record(record, batch, installs)
        findings: dict[tuple[int, int, str], Finding] = {}
        for finding in self._findings:
            self._finding(finding, batch, installs, findings)
        batch.installs = list(installs)
        batch.findings = list(findings.values())
        batch.results = [(d, c, ok) for (d, c), ok in self._results.items()]
        batch.position = position
        self._batch = Batch()
        self._software, self._findings, self._results = [], [], {}
        self.pending = 0
        return batch

    def _number(self, ref: str, what: str, batch: Batch) -> int | None:
        """The number of the device ``ref`` names, or ``None`` (counted as skipped)."""
        number = self.device_numbers.get(ref)
        if number is not None:
            return number
        if ref != UNNAMED:
            batch.skipped[f"{what} for a device the report does not describe"] += 1
            return None
        if not self.device_name:
            batch.skipped[_UNNAMED_SKIP.format(what=what.capitalize())] += 1
            return None
        self._device(DeviceRecord(device_ref=UNNAMED, name=self.device_name), batch)
        return self.device_numbers[UNNAMED]

    def _device(self, record: DeviceRecord, batch: Batch | None = None) -> None:
        if record.device_ref == UNNAMED:
            # The facts a report gives of its unnamed device (its OS, say) are the named
            # device's; without a name there is no device to give them to.
            if not self.device_name:
                (batch or self._batch).skipped[_UNNAMED_SKIP.format(what="Device")] += 1
                return
            record = replace(record, name=self.device_name)
        number = self.device_numbers.get(record.device_ref)
        if number is None:
            number = self.device_numbers[record.device_ref] = len(self.device_numbers)
        (batch or self._batch).devices.append((number, record))

    def _product(
        self,
        key: Product,
        batch: Batch,
        record: SoftwareRecord | None,
        finding: FindingRecord | None,
    ) -> int:
        number = self.product_numbers.get(key)
        if number is None:
            number = self.product_numbers[key] = len(self.product_numbers)
            batch.products.append((key, software_row(key, record, finding)))
        return number

    def _software_record(
        self, record: SoftwareRecord, batch: Batch, installs: dict[tuple[int, int, str], None]
    ) -> None:
        device = self._number(record.device_ref, "software", batch)
        if device is None:
            return
        key = vendor_product(record.vendor, record.product, record.purl)
        product = self._product(key, batch, record, None)
        if device not in self.software_devices:
            self.software_devices.add(device)
            batch.software_devices.append(device)
        installs[(device, product, record.version[:100])] = None

    def _finding(
        self,
        finding: FindingRecord,
        batch: Batch,
        installs: dict[tuple[int, int, str], None],
        findings: dict[tuple[int, int, str], Finding],
    ) -> None:
        device = self.device_numbers.get(finding.device_ref)
        if device is None:
            device = self._number(finding.device_ref, "finding", batch)
            if device is None:
                return
        if finding.vex_state == "not_affected":
            why = finding.vex_justification or "no justification given"
            batch.skipped[f"not affected according to the report's VEX ({why})"] += 1
            return
        vulnerability = finding.vulnerability_id[:100]
        fixed = finding.fixed_version[:100] or None
        path = finding.path[:500] or None
        if not finding.product:
            # Not de-duplicated: each is counted when it cannot be placed (few per report).
            batch.unplaced.append(
                (
                    device,
                    vulnerability,
                    finding.installed_version[:100],
                    fixed,
                    path,
                    finding.title[:200],
                )
            )
            self._name(vulnerability, finding, batch)
            return
        key = vendor_product(finding.vendor, finding.product, finding.purl)
        product = self.product_numbers.get(key)
        if product is None:
            product = self._product(key, batch, None, finding)
        installed = finding.installed_version[:100]
        installs[(device, product, installed)] = None
        unique = (device, product, vulnerability)
        if unique in findings:
            return
        findings[unique] = (device, product, vulnerability, installed, fixed, path)
        self._name(vulnerability, finding, batch)

    def _name(self, vulnerability: str, finding: FindingRecord, batch: Batch) -> None:
        """Keep what the first finding naming ``vulnerability`` says of it (for unknown ones)."""
        if vulnerability not in self.named_vulnerabilities:
            self.named_vulnerabilities.add(vulnerability)
            batch.finding_facts.append(
                VulnerabilityRecord(
                    vulnerability_id=vulnerability,
                    description=finding.description or finding.title or None,
                    severity=finding.severity or None,
                    cvss_v3_vector=finding.cvss_v3_vector or None,
                )
            )

    def _result(self, record: ConfigurationResultRecord) -> None:
        device = self._number(record.device_ref, "configuration result", self._batch)
        if device is None:
            return
        self._results[(device, record.configuration_id)] = record.is_compliant
