"""Writing one report's batches set-based, in the caller's transaction (``ReportWriter``), and
what an import adds up to (``ImportSummary``). Each batch reads the rows it may touch with a few
``IN`` queries, decides in Python what changed, and writes with ``executemany`` inserts (``COPY``
on PostgreSQL) and updates; devices this import created are not read back until a later batch
names them again. Rules (device identity, fixed-on-rescan, older scans) are in docs/imports.md.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.db.indexes import defer_indexes, restore_indexes, stop_foreign_key_checks
from remedium.importers.assessments import write_assessments
from remedium.importers.batches import Batch, Finding, Product
from remedium.importers.chunks import chunk_pairs, chunks, table_of
from remedium.importers.detections import choose_products
from remedium.importers.records import (
    ConfigurationCheckRecord,
    DeviceRecord,
    ReportInfo,
    VulnerabilityRecord,
)
from remedium.importers.summary import ImportSummary
from remedium.intel import service as intel_service
from remedium.intel.models import SecurityConfiguration, Vulnerability
from remedium.inventory import service as inventory_service
from remedium.inventory.models import InstalledSoftware, Weakness
from remedium.recommendations.models import DeviceRecommendation

ANALYZE_FROM = 20000  # findings an import adds before PostgreSQL's statistics are refreshed


# A new weakness: (device, software, vulnerability, installed version, fixed version, path), then
# the columns every row of a report shares (source, first_seen, last_seen, fixed_at).
_WEAKNESS_INSERT = (
    "device_id",
    "software_id",
    "vulnerability_id",
    "installed_version",
    "fixed_version",
    "path",
    "source",
    "first_seen",
    "last_seen",
    "fixed_at",
)
_WEAKNESS_UPDATE = (
    "installed_version",
    "fixed_version",
    "path",
    "source",
    "last_seen",
    "fixed_at",
)
_INSTALLED_INSERT = ("device_id", "software_id", "version", "first_seen", "last_seen")
_OLDER = "older than the latest scan of the device by this source"


class ReportWriter:
    """Writes one report's batches set-based; remembers the file's device and product ids."""

    def __init__(
        self,
        session: Session,
        info: ReportInfo,
        *,
        filename: str = "",
        device_group: str | None = None,
        bulk: bool = False,
    ) -> None:
        self.session = session
        self.info = info
        self.scanned_at = info.scanned_at or utcnow()
        self.source = info.source[:100]
        self.summary = ImportSummary(
            format=info.format, source=info.source, filename=filename, scanned_at=info.scanned_at
        )
        session.flush()
        self.devices = inventory_service.DeviceIndex.load(session)
        self.groups = inventory_service.GroupIndex.load(session)
        self.software = inventory_service.SoftwareIndex.load(session)
        self.forced_group_id = self.groups.ensure(session, device_group) if device_group else None
        self.known_checks: set[str] = set(session.scalars(select(SecurityConfiguration.id)).all())
        self.known_vulnerabilities: set[str] = set()
        self.unknown_facts: dict[
            str, VulnerabilityRecord
        ] = {}  # named by findings, not yet written
        self.device_ids: list[int] = []  # the file's device number -> device.id
        self.product_ids: list[int] = []  # the file's product number -> software.id
        self.stale: set[int] = set()  # devices this report is older than (per source)
        self.with_software: set[int] = set()  # devices whose software list the report gives
        # Devices this import created, and those of them that earlier batches wrote rows for:
        # a created device's first batch has nothing stored to compare with, so it is not read.
        self.created: set[int] = set()
        self.written: set[int] = set()
        # The first product number the current batch names; products from it on have no rows
        # yet on the devices this import created, unless a placement used them.
        self.fresh_products_from = 0
        self.placed_software: set[int] = set()
        self.merged = False  # two of the file's devices turned out to be one device
        # (device, software, vulnerability) of findings placed by this import: "placed" through
        # NVD data or kept on the scanner's "detection"; counted when their rows are added.
        self.placements: dict[tuple[int, int, str], str] = {}
        self._analyzed_at: int | None = ANALYZE_FROM // 2  # findings added at the last ANALYZE
        # A bulk load builds the secondary indexes once at the end instead of row by row, and
        # does not look up again the references it has just looked up or created.
        if bulk:
            stop_foreign_key_checks(session)
        # device_recommendation too: devices settled during the import write its rows (see
        # importers/derived.py), and its second index is only read by the final recompute.
        self.deferred = (
            defer_indexes(
                session,
                [table_of(Weakness), table_of(InstalledSoftware), table_of(DeviceRecommendation)],
            )
            if bulk
            else []
        )

    def apply(self, batch: Batch) -> None:
        """Write one batch, in dependency order."""
        self.summary.skipped_reasons.update(batch.skipped)
        self._write_vulnerabilities(batch.vulnerabilities)
        self._write_checks(batch.checks)
        self._write_devices(batch.devices)
        self.fresh_products_from = len(self.product_ids)
        self._write_products(batch.products)
        self.with_software.update(self.device_ids[n] for n in batch.software_devices)
        self._write_installs(batch.installs)
        # Placed after this batch's software is written: it decides between several products.
        placed = self._place(batch.unplaced)
        self._write_findings(batch.findings, batch.finding_facts, placed)
        self._write_configuration_results(batch.results)
        self.written.update(self.device_ids[n] for n, _record in batch.devices)
        self._refresh_statistics()

    def devices_of(self, batch: Batch) -> set[int]:
        """The devices an applied batch wrote something of."""
        numbers = {row[0] for row in batch.findings}
        numbers.update(row[0] for row in batch.unplaced)
        numbers.update(row[0] for row in batch.installs)
        numbers.update(row[0] for row in batch.results)
        numbers.update(number for number, _record in batch.devices)
        return {self.device_ids[n] for n in numbers}

    def _refresh_statistics(self) -> None:
        # PostgreSQL plans the per-batch lookups from table statistics, which this transaction's
        # own inserts do not update: an empty-looking weakness table gets sequential scans, read
        # again for every batch (quadratic). ANALYZE samples our own uncommitted rows too; once
        # the import has doubled what the tables were thought to hold, refresh the statistics.
        if self._analyzed_at is None or self.summary.findings_added < 2 * self._analyzed_at:
            return
        if self.session.get_bind().dialect.name != "postgresql":
            self._analyzed_at = None  # SQLite plans from the indexes it has
            return
        for table in ("weakness", "installed_software"):
            self.session.execute(text(f"ANALYZE {table}"))
        self._analyzed_at = max(self.summary.findings_added, ANALYZE_FROM)

    def finish(self) -> None:
        """Mark what a complete scan no longer reports as fixed (devices it created hold only
        what it reported), and build the indexes a bulk load deferred."""
        self._fix_unreported()
        restore_indexes(self.session, self.deferred)
        self.deferred = []

    def _fix_unreported(self) -> None:
        if not self.info.complete_scan:
            return
        current = sorted(set(self.device_ids) - self.stale - self.created)
        weakness = table_of(Weakness)
        for ids in chunks(current):
            result = self.session.execute(
                update(weakness)
                .where(
                    weakness.c.device_id.in_(ids),
                    weakness.c.source == self.source,
                    weakness.c.fixed_at.is_(None),
                    weakness.c.last_seen < self.scanned_at,
                )
                .values(fixed_at=self.scanned_at)
            )
            self.summary.findings_fixed += max(result.rowcount, 0)  # type: ignore[attr-defined]
        installed = table_of(InstalledSoftware)
        for ids in chunks(sorted(self.with_software - self.stale - self.created)):
            result = self.session.execute(
                delete(installed).where(
                    installed.c.device_id.in_(ids), installed.c.last_seen < self.scanned_at
                )
            )
            self.summary.installed_removed += max(result.rowcount, 0)  # type: ignore[attr-defined]

    # -- intelligence carried by the report ------------------------------------------------

    def _write_vulnerabilities(self, records: list[VulnerabilityRecord]) -> None:
        if not records:
            return
        result = intel_service.upsert_vulnerabilities(
            self.session, records, source=self.source, observed_at=self.scanned_at
        )
        self.summary.vulnerabilities_added += result.added
        self.summary.vulnerabilities_updated += result.updated
        self.summary.changed_vulnerability_ids |= result.changed_ids
        self.summary.updated_vulnerability_ids |= result.updated_ids
        self.known_vulnerabilities.update(r.vulnerability_id for r in records)

    def _write_checks(self, records: list[ConfigurationCheckRecord]) -> None:
        if not records:
            return
        checks = [
            {
                "id": r.configuration_id,
                "name": r.name,
                "category": r.category,
                "sub_category": r.sub_category,
                "weight": r.weight,
                "description": r.description,
                "remediation": r.remediation,
                "related_component": r.related_component,
                "benchmarks": list(r.benchmarks),
            }
            for r in records
        ]
        self.summary.configurations_added += intel_service.upsert_configurations(
            self.session, checks
        )
        self.known_checks.update(r.configuration_id for r in records)

    # -- devices and software --------------------------------------------------------------

    def _write_devices(self, numbered: list[tuple[int, DeviceRecord]]) -> None:
        if not numbered:
            return
        result = inventory_service.upsert_devices(
            self.session,
            [record for _number, record in numbered],
            index=self.devices,
            groups=self.groups,
            forced_group_id=self.forced_group_id,
            scanned_at=self.scanned_at,
        )
        known = set(self.device_ids)
        for number, record in numbered:
            device_id = result.ids[record.device_ref]
            if number == len(self.device_ids):
                self.merged = self.merged or device_id in known
                known.add(device_id)
                self.device_ids.append(device_id)
        self.created |= result.created
        self.summary.devices_added += result.added
        self.summary.devices_updated += result.updated
        new_ids = sorted(set(result.ids.values()) - self.summary.touched_device_ids)
        self.summary.devices_seen += len(new_ids)
        self.summary.touched_device_ids.update(new_ids)
        self.stale |= inventory_service.devices_scanned_after(
            self.session,
            [i for i in new_ids if i not in self.created],
            source=self.source,
            scanned_at=self.scanned_at,
        )

    def _write_products(self, products: list[tuple[Product, dict[str, Any]]]) -> None:
        if not products:
            return
        self.summary.software_added += self.software.ensure(self.session, dict(products))
        ids = self.software.ids
        self.product_ids.extend(ids[key] for key, _row in products)

    def _unread(self) -> set[int]:
        """Devices whose stored rows need not be read: created by this import, not yet written."""
        return self.created - self.written

    def _write_installs(self, installs: list[tuple[int, int, str]]) -> None:
        if not installs:
            return
        devices, products, stale, unread, created = (
            self.device_ids,
            self.product_ids,
            self.stale,
            self._unread(),
            self.created,
        )
        fresh_from, placed_software = self.fresh_products_from, self.placed_software
        at = inventory_service.bound(
            self.session, table_of(InstalledSoftware).c.last_seen, self.scanned_at
        )
        inserts: list[tuple[int, int, str]] = []
        others: list[tuple[int, int, str]] = []
        for number, product, version in installs:
            device_id = devices[number]
            if device_id in unread or (
                # As for findings: a device this import created holds no row of a product
                # first named in this batch (one SBOM of a hundred thousand components).
                device_id in created
                and product >= fresh_from
                and products[product] not in placed_software
            ):
                inserts.append((device_id, products[product], version))
            elif device_id not in stale:
                others.append((device_id, products[product], version))
        if self.merged:
            inserts = list(dict.fromkeys(inserts))
            others = list(dict.fromkeys(others))
        inventory_service.bulk_insert(
            self.session, table_of(InstalledSoftware), _INSTALLED_INSERT, inserts, (at, at)
        )
        self.summary.installed_added += len(inserts)
        if others:
            self.summary.installed_added += inventory_service.upsert_installed(
                self.session, others, scanned_at=self.scanned_at
            )

    # -- findings --------------------------------------------------------------------------

    def _place(
        self, unplaced: list[tuple[int, str, str, str | None, str | None, str]]
    ) -> list[tuple[int, int, str, str, str | None, str | None]]:
        """Findings that name no product (network scanners: a CVE on a host) placed on the
        product the vulnerability's NVD or CVE record names (``affected_package`` CPE ranges):
        the only one it names, or the one of several the device has installed. The rest are
        kept on a placeholder product for the scanner's own detection (its plugin, NVT or QID,
        by title: ``detection_row``), moved onto the real product when intelligence arrives
        (``importers/detections.py``). Returns (device id, software id, vulnerability,
        installed, fixed, path) rows."""
        if not unplaced:
            return []
        products, choices, kinds = choose_products(
            self.session,
            [(self.device_ids[n], v, i, f, p, title) for n, v, i, f, p, title in unplaced],
            known=self.software.ids,
            source=self.source,
        )
        self.summary.software_added += self.software.ensure(self.session, products)
        ids = self.software.ids
        placed = [(d, ids[key], v, i, f, p) for d, key, v, i, f, p in choices]
        # Counted when written (added), not again when a re-import finds them in place.
        for (d, _key, v, _i, _f, _p), placed_row, kind in zip(choices, placed, kinds, strict=True):
            self.placements[(d, placed_row[1], v)] = kind
        self.placed_software.update(row[1] for row in placed)
        # The product counts as installed (at the version the scanner saw, often unknown);
        # read first: the device may list it already.
        installs = dict.fromkeys((d, s, i) for d, s, _v, i, _f, _p in placed if d not in self.stale)
        if installs:
            self.summary.installed_added += inventory_service.upsert_installed(
                self.session, list(installs), scanned_at=self.scanned_at
            )
        return placed

    def _write_findings(
        self,
        findings: list[Finding],
        facts: list[VulnerabilityRecord],
        placed: list[tuple[int, int, str, str, str | None, str | None]],
    ) -> None:
        for record in facts:
            if record.vulnerability_id not in self.known_vulnerabilities:
                self.unknown_facts.setdefault(record.vulnerability_id, record)
        if not findings and not placed:
            return
        devices, products, stale, unread, created = (
            self.device_ids,
            self.product_ids,
            self.stale,
            self._unread(),
            self.created,
        )
        fresh_from, placed_software = self.fresh_products_from, self.placed_software
        at_bound = inventory_service.bound(
            self.session, table_of(Weakness).c.last_seen, self.scanned_at
        )
        inserts: list[tuple[int, int, str, str, str | None, str | None]] = []
        wanted: dict[tuple[int, int, str], tuple[str, str | None, str | None]] = {}
        older = 0
        for number, product, vulnerability, installed, fixed, path in findings:
            device_id = devices[number]
            if device_id in unread:
                inserts.append(
                    (device_id, products[product], vulnerability, installed, fixed, path)
                )
            elif device_id in stale:
                older += 1
            elif (
                # A device this import created holds no row of a product first named in this
                # batch (one image with a million findings: no reading back, batch after batch).
                device_id in created
                and product >= fresh_from
                and products[product] not in placed_software
            ):
                inserts.append(
                    (device_id, products[product], vulnerability, installed, fixed, path)
                )
            else:
                wanted.setdefault(
                    (device_id, products[product], vulnerability), (installed, fixed, path)
                )
        for device_id, software_id, vulnerability, installed, fixed, path in placed:
            if device_id in unread:
                inserts.append((device_id, software_id, vulnerability, installed, fixed, path))
            elif device_id in stale:
                older += 1
            else:
                wanted.setdefault((device_id, software_id, vulnerability), (installed, fixed, path))
        if older:
            self.summary.skip(_OLDER, older)
        if self.merged or placed:
            inserts = list({row[:3]: row for row in reversed(inserts)}.values())
        self._create_unknown_vulnerabilities(
            {row[2] for row in inserts} | {key[2] for key in wanted}
        )
        weakness = table_of(Weakness)
        inventory_service.bulk_insert(
            self.session, weakness, _WEAKNESS_INSERT, inserts, self._shared(at_bound)
        )
        self.summary.findings_added += len(inserts)
        self._count_placements(inserts)
        if wanted:
            self._merge_findings(wanted, at_bound)

    def _count_placements(self, added: list[tuple[Any, ...]]) -> None:
        placements = self.placements
        if not placements:
            return
        for row in added:
            kind = placements.get((row[0], row[1], row[2]))
            if kind == "detection":
                self.summary.findings_on_detection += 1
            elif kind == "placed":
                self.summary.findings_placed += 1

    def _shared(self, at_bound: Any) -> tuple[Any, ...]:
        """The values of a new weakness every row of this report shares: source, first and
        last seen, not fixed."""
        return (self.source, at_bound, at_bound, None)

    def _merge_findings(
        self, wanted: dict[tuple[int, int, str], tuple[str, str | None, str | None]], at_bound: Any
    ) -> None:
        """Findings of devices with stored weaknesses: insert, update, reopen or leave alone."""
        weakness = table_of(Weakness)
        device_ids = sorted({key[0] for key in wanted})
        software_ids = sorted({key[1] for key in wanted})
        existing: dict[tuple[int, int, str], Any] = {}
        at = self.scanned_at
        # Read by (device, product), not by device alone: one large device (an image with a
        # million matches) would otherwise be read again, whole, for every batch. The scan time
        # is compared with the stored times by the database (bound as the columns store them):
        # reading them back as datetimes cost a third of an unchanged re-import's merge.
        for ids, sids in chunk_pairs(device_ids, software_ids):
            for found in self.session.execute(
                select(
                    weakness.c.device_id,
                    weakness.c.software_id,
                    weakness.c.vulnerability_id,
                    weakness.c.id,
                    weakness.c.installed_version,
                    weakness.c.fixed_version,
                    weakness.c.path,
                    weakness.c.source,
                    weakness.c.fixed_at.is_not(None),
                    weakness.c.fixed_at >= at,  # fixed since this scan
                    weakness.c.last_seen >= at,  # seen since this scan
                ).where(weakness.c.device_id.in_(ids), weakness.c.software_id.in_(sids))
            ):
                existing[(found[0], found[1], found[2])] = found
        source = self.source
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for key, (installed, fixed, path) in wanted.items():
            row = existing.get(key)
            if row is None:
                inserts.append((*key, installed, fixed, path))
                continue
            row_id, stored_installed, stored_fixed, stored_path, stored_source = row[3:8]
            fixed_now, fixed_since, seen_since = row[8:]
            if fixed_now:
                if fixed_since:
                    continue  # an older scan never reopens a weakness fixed since
                self.summary.findings_reopened += 1
            elif seen_since:
                continue  # nothing newer than what is known
            elif (stored_installed, stored_fixed, stored_path, stored_source) == (
                installed,
                fixed,
                path,
                source,
            ):
                updates.append((installed, fixed, path, source, at_bound, None, row_id))
                continue  # only last_seen moves: bookkeeping, not an update
            self.summary.findings_updated += 1
            updates.append((installed, fixed, path, source, at_bound, None, row_id))
        inventory_service.bulk_insert(
            self.session, weakness, _WEAKNESS_INSERT, inserts, self._shared(at_bound)
        )
        self.summary.findings_added += len(inserts)
        self._count_placements(inserts)
        inventory_service.bulk_update(self.session, weakness, _WEAKNESS_UPDATE, ("id",), updates)

    def _create_unknown_vulnerabilities(self, named: set[str]) -> None:
        ids = sorted(named - self.known_vulnerabilities)
        if not ids:
            return
        for part in chunks(ids):
            self.known_vulnerabilities.update(
                self.session.scalars(select(Vulnerability.id).where(Vulnerability.id.in_(part)))
            )
        unknown = [
            self.unknown_facts[i]
            for i in ids
            if i not in self.known_vulnerabilities and i in self.unknown_facts
        ]
        self.known_vulnerabilities.update(ids)
        for i in ids:
            self.unknown_facts.pop(i, None)
        if not unknown:
            return
        result = intel_service.upsert_vulnerabilities(
            self.session,
            unknown,
            source=self.source,
            observed_at=self.scanned_at,
            create_only=True,
        )
        self.summary.vulnerabilities_added += result.added
        self.summary.changed_vulnerability_ids |= result.changed_ids

    # -- configuration ---------------------------------------------------------------------

    def _write_configuration_results(self, results: list[tuple[int, str, bool]]) -> None:
        if not results:
            return
        wanted: dict[tuple[int, str], bool] = {}
        for number, check_id, compliant in results:
            device_id = self.device_ids[number]
            if check_id not in self.known_checks:
                self.summary.skip("result of a configuration check remedium does not know")
                continue
            if device_id in self.stale:
                self.summary.skip(_OLDER)
                continue
            wanted[(device_id, check_id)] = compliant
        if not wanted:
            return
        inserted, updated, fixed = write_assessments(
            self.session, wanted, source=self.source, at=self.scanned_at
        )
        self.summary.configurations_fixed += fixed
        self.summary.configuration_results += inserted + updated
