"""Write-side inventory upserts used by the import pipeline (set-based, batch by batch).

Device identity (docs/imports.md): a source's asset id first, then the host name (case-insensitive;
the short name of an FQDN when the FQDN itself is not known), then the IP address for devices
reported without a name. The first key a device was seen by stays its ``identity_key``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from remedium.importers.chunks import chunks, table_of
from remedium.importers.records import DeviceRecord
from remedium.inventory._bulk import bound, bulk_insert, bulk_update, new_ids, rows_by_key
from remedium.inventory.models import (
    DEVICE_VALUES,
    OS_PLATFORMS,
    ConfigurationAssessment,
    Device,
    DeviceGroup,
    InstalledSoftware,
    Software,
    Weakness,
)

__all__ = [
    "DEFAULT_GROUP",
    "DeviceIndex",
    "DeviceUpsert",
    "GroupIndex",
    "SoftwareIndex",
    # The bulk statements live in ``_bulk.py``; the import pipeline takes them from here.
    "bound",
    "bulk_insert",
    "bulk_update",
    "count_devices",
    "devices_scanned_after",
    "devices_with_open_weaknesses",
    "identity_key",
    "installed_products",
    "machine_id",
    "short_name",
    "table_of",
    "upsert_devices",
    "upsert_installed",
]

DEFAULT_GROUP = "Ungrouped devices"


def short_name(name: str) -> str:
    """The host part of an FQDN, lower case (IP addresses stay whole)."""
    lowered = name.strip().lower()
    if lowered.replace(".", "").isdigit() or ":" in lowered:
        return lowered
    return lowered.split(".", 1)[0]


def _is_address(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered.replace(".", "").isdigit() or (":" in lowered and "." not in lowered)


def identity_key(record: DeviceRecord) -> str:
    """The identity key a new device is stored under."""
    if record.asset_id:
        return f"asset:{record.asset_id.strip().lower()}"[:300]
    if record.name and not _is_address(record.name):
        return f"host:{record.name.strip().lower()}"[:300]
    return f"ip:{(record.ip_address or record.name).strip().lower()}"[:300]


def machine_id(key: str) -> str:
    """Defender-style 40-hex machine id, stable for the identity key."""
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()


@dataclass(slots=True)
class DeviceIndex:
    """Every device's identity keys in memory, so matching a report's devices costs no query."""

    by_key: dict[str, int | str] = field(default_factory=dict)
    by_name: dict[str, int | str] = field(default_factory=dict)
    by_short: dict[str, int | str] = field(default_factory=dict)
    by_ip: dict[str, int | str] = field(default_factory=dict)
    # Where each device still being inserted is entered, so its id replaces it in one pass.
    pending: dict[str, list[tuple[dict[str, int | str], str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> DeviceIndex:
        """Index the devices already in the database."""
        index = cls()
        rows = session.execute(
            select(Device.id, Device.identity_key, Device.name, Device.ip_address)
        )
        for device_id, key, name, ip in rows:
            index.add(device_id, key, name, ip)
        return index

    def add(self, device: int | str, key: str, name: str, ip: str) -> None:
        """Remember a device (``device`` is its id, or its identity key while being inserted)."""
        entries: list[tuple[dict[str, int | str], str]] = [(self.by_key, key)]
        if name and not _is_address(name):
            entries += [(self.by_name, name.strip().lower()), (self.by_short, short_name(name))]
        if ip:
            entries.append((self.by_ip, ip.strip().lower()))
        elif name and _is_address(name):
            entries.append((self.by_ip, name.strip().lower()))
        for mapping, entry in entries:
            if mapping is self.by_key or entry not in mapping:
                mapping[entry] = device
                if isinstance(device, str):
                    self.pending.setdefault(device, []).append((mapping, entry))

    def replace(self, pending: str, device_id: int) -> None:
        """Swap a pending identity key for the id the database gave the device."""
        for mapping, entry in self.pending.pop(pending, ()):
            if mapping.get(entry) == pending:
                mapping[entry] = device_id

    def match(self, record: DeviceRecord) -> int | str | None:
        """The known device ``record`` describes (an id, a pending key, or None)."""
        if record.asset_id:
            found = self.by_key.get(f"asset:{record.asset_id.strip().lower()}")
            if found is not None:
                return found
        name = record.name.strip().lower()
        if name and not _is_address(name):
            found = self.by_name.get(name)
            if found is None:
                found = self.by_short.get(short_name(name))
            if found is not None:
                return found
            return None
        address = (record.ip_address or name).strip().lower()
        return self.by_ip.get(address) if address else None


@dataclass(slots=True)
class GroupIndex:
    """Device group ids by name, created on first use."""

    ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> GroupIndex:
        """Index the existing device groups."""
        return cls(dict(session.execute(select(DeviceGroup.name, DeviceGroup.id)).tuples().all()))

    def ensure(self, session: Session, name: str) -> int:
        """The id of the group called ``name``, creating it when needed."""
        name = name.strip()[:200] or DEFAULT_GROUP
        if name not in self.ids:
            group = DeviceGroup(name=name, description="")
            session.add(group)
            session.flush()
            self.ids[name] = group.id
        return self.ids[name]


@dataclass(slots=True)
class DeviceUpsert:
    """The outcome of writing one batch of device records."""

    ids: dict[str, int] = field(default_factory=dict)  # device_ref -> device id
    created: set[int] = field(default_factory=set)  # ids of the devices inserted
    added: int = 0
    updated: int = 0


_ATTRIBUTES = (
    "name",
    "ip_address",
    "os_platform",
    "os_version",
    "os_architecture",
    "device_value",
    "is_intune_managed",
    "is_aad_joined",
    "aad_device_id",
    "internet_facing",
    "tags",
    "device_group_id",
)


_TEXT_LIMITS = {"ip_address": 64, "os_version": 100, "os_architecture": 20, "aad_device_id": 64}


def _attributes(
    session: Session, record: DeviceRecord, groups: GroupIndex, forced_group_id: int | None
) -> dict[str, Any]:
    """The device columns ``record`` gives a value for (absent facts are left out)."""
    values: dict[str, Any] = {}
    if record.name:
        values["name"] = record.name.strip()[:255]
    for column, limit in _TEXT_LIMITS.items():
        value = getattr(record, column)
        if value:
            values[column] = value.strip()[:limit]
    if record.os_platform:
        values["os_platform"] = (
            record.os_platform if record.os_platform in OS_PLATFORMS else "Other"
        )
    if record.device_value in DEVICE_VALUES:
        values["device_value"] = record.device_value
    for column in ("is_intune_managed", "is_aad_joined", "internet_facing"):
        value = getattr(record, column)
        if value is not None:
            values[column] = bool(value)
    if record.tags:
        values["tags"] = sorted(set(record.tags))
    if forced_group_id is not None:
        values["device_group_id"] = forced_group_id
    elif record.device_group:
        values["device_group_id"] = groups.ensure(session, record.device_group)
    return values


def _new_device_row(record: DeviceRecord, key: str, scanned_at: datetime) -> dict[str, Any]:
    """A new device's row before the record's own attributes: defaults, names, first seen."""
    seen = record.last_seen or scanned_at
    return {
        "machine_id": machine_id(key),
        "identity_key": key,
        "name": (record.name or record.ip_address or key).strip()[:255],
        "os_platform": "Other",
        "os_version": "",
        "os_architecture": "",
        "ip_address": "",
        "device_value": "Normal",
        "is_intune_managed": False,
        "is_aad_joined": False,
        "aad_device_id": None,
        "internet_facing": False,
        "tags": [],
        "first_seen": min(record.first_seen or seen, seen),
        "last_seen": seen,
        "exposure_points": 0.0,
        "exposure_score": 0.0,
        "exposure_level": "None",
        "secure_passed_weight": 0.0,
        "secure_total_weight": 0.0,
    }


def upsert_devices(
    session: Session,
    records: Sequence[DeviceRecord],
    *,
    index: DeviceIndex,
    groups: GroupIndex,
    forced_group_id: int | None,
    scanned_at: datetime,
) -> DeviceUpsert:
    """Match ``records`` to known devices, insert the new ones and update what changed.

    Attributes are only taken from a record at least as recent as what is known of the device.
    """
    outcome = DeviceUpsert()
    new_rows: dict[str, dict[str, Any]] = {}
    pending_refs: dict[str, str] = {}
    matched: dict[str, tuple[int, DeviceRecord]] = {}
    for record in records:
        found = index.match(record)
        if isinstance(found, int):
            matched[record.device_ref] = (found, record)
            continue
        if isinstance(found, str):
            pending_refs[record.device_ref] = found
            continue
        key = identity_key(record)
        if key in index.by_key:  # an address or asset already taken by another record
            pending_refs[record.device_ref] = key
            found_id = index.by_key[key]
            if isinstance(found_id, int):
                matched[record.device_ref] = (found_id, record)
                del pending_refs[record.device_ref]
            continue
        row = _new_device_row(record, key, scanned_at)
        row.update(_attributes(session, record, groups, forced_group_id))
        if "device_group_id" not in row:
            row["device_group_id"] = groups.ensure(session, DEFAULT_GROUP)
        new_rows[key] = row
        pending_refs[record.device_ref] = key
        index.add(key, key, row["name"], row["ip_address"])
    if new_rows:
        session.execute(insert(Device), list(new_rows.values()))
        table = table_of(Device)
        for device_id, key in rows_by_key(
            session, table, (table.c.id, table.c.identity_key), table.c.identity_key, list(new_rows)
        ):
            index.replace(key, device_id)
            outcome.created.add(device_id)
        outcome.added = len(new_rows)
    for ref, key in pending_refs.items():
        device_id = index.by_key[key]
        if isinstance(device_id, int):
            outcome.ids[ref] = device_id
    if matched:
        outcome.updated = _update_devices(
            session, list(matched.values()), groups, forced_group_id, scanned_at
        )
        outcome.ids.update({ref: device_id for ref, (device_id, _) in matched.items()})
    return outcome


def _update_devices(
    session: Session,
    matched: list[tuple[int, DeviceRecord]],
    groups: GroupIndex,
    forced_group_id: int | None,
    scanned_at: datetime,
) -> int:
    table = table_of(Device)
    columns = [table.c[name] for name in ("id", "first_seen", "last_seen", *_ATTRIBUTES)]
    current: dict[int, dict[str, Any]] = {}
    ids = sorted({device_id for device_id, _ in matched})
    for part in chunks(ids):
        for found in session.execute(select(*columns).where(table.c.id.in_(part))).mappings():
            current[found["id"]] = dict(found)
    changed: set[int] = set()
    dirty: set[int] = set()
    for device_id, record in matched:
        row = current[device_id]
        seen = record.last_seen or scanned_at
        if seen >= row["last_seen"]:
            values = _attributes(session, record, groups, forced_group_id)
            known_name = str(row["name"]).lower()
            if "." in known_name and values.get("name", "").lower() == short_name(known_name):
                del values["name"]  # a short name never replaces the FQDN it abbreviates
            for column, value in values.items():
                if row[column] != value:
                    row[column] = value
                    changed.add(device_id)
            if seen > row["last_seen"]:
                row["last_seen"] = seen
                dirty.add(device_id)
        first = record.first_seen or seen
        if first < row["first_seen"]:
            row["first_seen"] = first
            dirty.add(device_id)
    to_write = sorted(changed | dirty)
    if to_write:
        session.execute(
            update(table).where(table.c.id == bindparam("b_id")),
            [
                {"b_id": device_id, **{k: v for k, v in current[device_id].items() if k != "id"}}
                for device_id in to_write
            ],
        )
    return len(changed)


def devices_scanned_after(
    session: Session, device_ids: Sequence[int], *, source: str, scanned_at: datetime
) -> set[int]:
    """Devices that ``source`` has already reported in a scan newer than ``scanned_at``."""
    newer: set[int] = set()
    weakness = table_of(Weakness)
    assessment = table_of(ConfigurationAssessment)
    for part in chunks(list(device_ids)):
        newer.update(
            session.scalars(
                select(weakness.c.device_id)
                .where(
                    weakness.c.device_id.in_(part),
                    weakness.c.source == source,
                    or_(weakness.c.last_seen > scanned_at, weakness.c.fixed_at > scanned_at),
                )
                .distinct()
            )
        )
        newer.update(
            session.scalars(
                select(assessment.c.device_id)
                .where(
                    assessment.c.device_id.in_(part),
                    assessment.c.source == source,
                    assessment.c.last_seen > scanned_at,
                )
                .distinct()
            )
        )
    return newer


_SOFTWARE_COLUMNS = (
    "vendor",
    "product",
    "display_name",
    "display_vendor",
    "product_key",
    "purl_type",
    "purl_name",
    "cpe_prefix",
    "is_operating_system",
    "end_of_support_on",
    "end_of_support_versions",
)


def _software_tuple(session: Session, row: dict[str, Any]) -> tuple[Any, ...]:
    """A ``software`` row (``importers.batches.software_row``) as the driver takes it."""
    end = row["end_of_support_on"]
    return (
        *(row[name] for name in _SOFTWARE_COLUMNS[:9]),
        None if end is None else bound(session, Software.__table__.c.end_of_support_on, end),
        json.dumps(row["end_of_support_versions"]),
    )


@dataclass(slots=True)
class SoftwareIndex:
    """Software ids by normalised (vendor, product)."""

    ids: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> SoftwareIndex:
        """Index the known software products."""
        rows = session.execute(select(Software.vendor, Software.product, Software.id))
        return cls({(vendor, product): sid for vendor, product, sid in rows})

    def ensure(self, session: Session, products: dict[tuple[str, str], dict[str, Any]]) -> int:
        """Insert the products not yet known; returns how many were added."""
        missing = [(key, row) for key, row in products.items() if key not in self.ids]
        if not missing:
            return 0
        # Inserted with ids drawn beforehand, as plain tuples in the driver's types (COPY on
        # PostgreSQL): no reading back by key. The ORM's insert of the rows as dictionaries
        # cost a 150,000-product import 3 s on PostgreSQL; reading 120,000 ids back 1 s.
        ids = new_ids(session, table_of(Software), len(missing))
        bulk_insert(
            session,
            table_of(Software),
            ("id", *_SOFTWARE_COLUMNS),
            [
                (sid, *_software_tuple(session, row))
                for sid, (_key, row) in zip(ids, missing, strict=True)
            ],
        )
        for sid, (key, _row) in zip(ids, missing, strict=True):
            self.ids[key] = sid
        return len(missing)


def upsert_installed(
    session: Session, rows: Sequence[tuple[int, int, str]], *, scanned_at: datetime
) -> int:
    """Record (device, software, version) as installed at ``scanned_at``; returns rows added."""
    table = table_of(InstalledSoftware)
    known: dict[tuple[int, int, str], datetime] = {}
    software_ids = list(chunks(sorted({row[1] for row in rows})))
    # Read by (device, product): a large device's list is not read whole for every batch.
    for part in chunks(sorted({row[0] for row in rows})):
        for products in software_ids:
            for device_id, software_id, version, last_seen in session.execute(
                select(
                    table.c.device_id, table.c.software_id, table.c.version, table.c.last_seen
                ).where(table.c.device_id.in_(part), table.c.software_id.in_(products))
            ):
                known[(device_id, software_id, version)] = last_seen
    at = bound(session, table.c.last_seen, scanned_at)
    inserts = [(d, s, v) for d, s, v in rows if (d, s, v) not in known]
    updates = [
        (at, d, s, v) for d, s, v in rows if (d, s, v) in known and known[(d, s, v)] < scanned_at
    ]
    bulk_insert(
        session,
        table,
        ("device_id", "software_id", "version", "first_seen", "last_seen"),
        inserts,
        (at, at),
    )
    bulk_update(session, table, ("last_seen",), ("device_id", "software_id", "version"), updates)
    return len(inserts)


def count_devices(session: Session) -> int:
    """How many devices the inventory holds (all groups; used by the demo's reuse check)."""
    return int(session.scalar(select(func.count()).select_from(Device)) or 0)


def devices_with_open_weaknesses(session: Session, vulnerability_ids: Sequence[str]) -> set[int]:
    """The devices that hold an open weakness of any of ``vulnerability_ids``."""
    devices: set[int] = set()
    for start in range(0, len(vulnerability_ids), 500):
        devices.update(
            session.scalars(
                select(Weakness.device_id)
                .where(
                    Weakness.vulnerability_id.in_(vulnerability_ids[start : start + 500]),
                    Weakness.fixed_at.is_(None),
                )
                .distinct()
            )
        )
    return devices


def installed_products(
    session: Session, device_ids: Iterable[int]
) -> dict[int, set[tuple[str, str]]]:
    """The normalised (vendor, product) pairs installed on each of ``device_ids``."""
    installed: dict[int, set[tuple[str, str]]] = {}
    table = table_of(InstalledSoftware)
    for part in chunks(sorted(set(device_ids))):
        for device_id, vendor, product in session.execute(
            select(table.c.device_id, Software.vendor, Software.product)
            .join(Software, Software.id == table.c.software_id)
            .where(table.c.device_id.in_(part))
        ):
            installed.setdefault(device_id, set()).add((vendor, product))
    return installed
