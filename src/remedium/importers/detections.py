"""Findings kept on a scanner's detection, moved onto the real product once intelligence names it.

A network scanner's finding that names no product (an OpenVAS NVT, a Nessus plugin, a Qualys QID
with its CVEs) is placed on the product the vulnerability's NVD or CVE record names; when no such
record is stored yet, the import keeps it on a placeholder product for the scanner's detection
(``batches.detection_row``: ``software.purl_type = "detection"``), visible, counted and scored like
any weakness. After an intelligence import, :func:`move_detections` moves those weaknesses onto
the product the new records name (the only one, or the one of several the device has installed),
and records that product as installed at the version the scanner saw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from remedium.db.base import utcnow
from remedium.importers.batches import DETECTION, Product, detection_row, placed_software_row
from remedium.intel.matching import cpe_products
from remedium.inventory import service as inventory_service
from remedium.inventory.models import InstalledSoftware, Software, Weakness


def choose_products(
    session: Session,
    unplaced: list[tuple[int, str, str, str | None, str | None, str]],
    *,
    known: Collection[Product],
    source: str,
) -> tuple[
    dict[Product, dict[str, Any]],
    list[tuple[int, Product, str, str, str | None, str | None]],
    list[str],
]:
    """Choose the product of each finding that names none, at import time.

    ``unplaced`` rows are (device id, vulnerability, installed version, fixed version, path,
    detection title). The product is the one the vulnerability's NVD or CVE record names, or the
    one of several the device has installed; otherwise the scanner's detection placeholder.
    Returns the software rows to ensure (products not in ``known``), one (device id, product,
    vulnerability, installed, fixed, path) choice per finding, and its kind (``placed`` or
    ``detection``) in the same order.
    """
    named = cpe_products(session, sorted({row[1] for row in unplaced}))
    devices = {row[0] for row in unplaced}
    installed = inventory_service.installed_products(session, devices) if named else {}
    products: dict[Product, dict[str, Any]] = {}
    choices: list[tuple[int, Product, str, str, str | None, str | None]] = []
    kinds: list[str] = []
    for device_id, vulnerability, version, fixed, path, title in unplaced:
        candidates = named.get(vulnerability, [])
        if len(candidates) > 1:
            on_device = installed.get(device_id, set())
            candidates = [key for key in candidates if key in on_device][:1]
        if candidates:
            key = candidates[0]
            if key not in known and key not in products:
                products[key] = placed_software_row(key)
        else:
            key, row = detection_row(source, title, vulnerability)
            if key not in products:
                products[key] = row
        choices.append((device_id, key, vulnerability, version, fixed, path))
        kinds.append("placed" if candidates else "detection")
    return products, choices, kinds


def move_detections(session: Session) -> set[int]:
    """Move weaknesses held by detection placeholders onto the products intelligence now names;
    returns the devices whose weaknesses moved."""
    rows = session.execute(
        select(
            Weakness.id,
            Weakness.device_id,
            Weakness.vulnerability_id,
            Weakness.installed_version,
        )
        .join(Software, Software.id == Weakness.software_id)
        .where(Software.purl_type == DETECTION)
    ).all()
    if not rows:
        return set()
    named = cpe_products(session, sorted({row.vulnerability_id for row in rows}))
    if not named:
        return set()
    installed = inventory_service.installed_products(session, {row.device_id for row in rows})
    software = inventory_service.SoftwareIndex.load(session)
    moves: list[tuple[int, int, tuple[str, str], str, str]] = []
    for row in rows:
        candidates = named.get(row.vulnerability_id, [])
        if len(candidates) > 1:
            on_device = installed.get(row.device_id, set())
            candidates = [key for key in candidates if key in on_device][:1]
        if candidates:
            key = candidates[0]
            moves.append((row.id, row.device_id, key, row.vulnerability_id, row.installed_version))
    if not moves:
        return set()
    software.ensure(session, {key: placed_software_row(key) for _w, _d, key, _v, _i in moves})
    taken: dict[tuple[int, int, str], int] = {}
    wanted = defaultdict(list)
    for weakness_id, device_id, key, vulnerability, _version in moves:
        wanted[(device_id, software.ids[key], vulnerability)].append(weakness_id)
    for (device_id, software_id, vulnerability), _ids in wanted.items():
        existing = session.scalar(
            select(Weakness.id).where(
                Weakness.device_id == device_id,
                Weakness.software_id == software_id,
                Weakness.vulnerability_id == vulnerability,
            )
        )
        if existing is not None:
            taken[(device_id, software_id, vulnerability)] = existing
    for (device_id, software_id, vulnerability), weakness_ids in wanted.items():
        if (device_id, software_id, vulnerability) in taken:
            # The real product already holds it: the placeholder's copy goes.
            session.execute(delete(Weakness).where(Weakness.id.in_(weakness_ids)))
            continue
        session.execute(
            update(Weakness).where(Weakness.id == weakness_ids[0]).values(software_id=software_id)
        )
        if len(weakness_ids) > 1:
            session.execute(delete(Weakness).where(Weakness.id.in_(weakness_ids[1:])))
    inventory_service.upsert_installed(
        session,
        list(dict.fromkeys((d, software.ids[key], v) for _w, d, key, _vu, v in moves)),
        scanned_at=utcnow(),
    )
    moved_devices = {device_id for _w, device_id, _k, _v, _i in moves}
    # A placeholder that holds no weakness of a device any more is not installed there.
    still_held = select(Weakness.id).where(
        Weakness.device_id == InstalledSoftware.device_id,
        Weakness.software_id == InstalledSoftware.software_id,
    )
    detections = select(Software.id).where(Software.purl_type == DETECTION)
    session.execute(
        delete(InstalledSoftware).where(
            InstalledSoftware.device_id.in_(sorted(moved_devices)),
            InstalledSoftware.software_id.in_(detections),
            ~still_held.exists(),
        )
    )
    session.flush()
    return moved_devices
