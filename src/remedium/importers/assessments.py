"""A report's configuration results written as assessments: new ones inserted, known ones
updated when the scan is newer, a check that passes again marked fixed (docs/imports.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from remedium.importers.chunks import chunks, table_of
from remedium.inventory.models import ConfigurationAssessment


def write_assessments(
    session: Session, wanted: dict[tuple[int, str], bool], *, source: str, at: datetime
) -> tuple[int, int, int]:
    """Write the (device, check) -> compliant results of one scan at ``at``.

    Returns how many were inserted, updated, and fixed (compliant now, failing before). An older
    (or the same) scan than the stored one changes nothing.
    """
    table = table_of(ConfigurationAssessment)
    fixed = 0
    existing: dict[tuple[int, str], Any] = {}
    for ids in chunks(sorted({key[0] for key in wanted})):
        for found in session.execute(
            select(
                table.c.device_id,
                table.c.configuration_id,
                table.c.is_compliant,
                table.c.last_seen,
                table.c.fixed_at,
            ).where(table.c.device_id.in_(ids))
        ):
            existing[(found.device_id, found.configuration_id)] = found
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for (device_id, check_id), compliant in wanted.items():
        row = existing.get((device_id, check_id))
        if row is None:
            inserts.append(
                {
                    "device_id": device_id,
                    "configuration_id": check_id,
                    "is_compliant": compliant,
                    "source": source,
                    "first_seen": at,
                    "last_seen": at,
                    "fixed_at": None,
                }
            )
            continue
        if at <= row.last_seen:
            continue  # an older (or the same) scan changes nothing
        fixed_at = row.fixed_at
        if compliant and not row.is_compliant:
            fixed_at = at
            fixed += 1
        elif not compliant:
            fixed_at = None
        updates.append(
            {
                "b_device": device_id,
                "b_check": check_id,
                "is_compliant": compliant,
                "source": source,
                "last_seen": at,
                "fixed_at": fixed_at,
            }
        )
    if inserts:
        session.execute(insert(table), inserts)
    if updates:
        session.execute(
            update(table).where(
                table.c.device_id == bindparam("b_device"),
                table.c.configuration_id == bindparam("b_check"),
            ),
            updates,
        )
    return len(inserts), len(updates), fixed
