"""Writing vulnerability intelligence: upserts of vulnerability facts and their dated events.

Feeds (KEV, EPSS, NVD, OSV) and reports both arrive as :class:`VulnerabilityRecord`; a ``None``
field means "this source does not say", so it never erases what another source said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from cvss import CVSS3, CVSS4
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from remedium.importers.records import VulnerabilityRecord
from remedium.intel.models import (
    SEVERITIES,
    UNRATED,
    IntelEvent,
    SecurityConfiguration,
    Vulnerability,
)
from remedium.scoring.engine import vulnerability_points

BATCH = 2000
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# What a source that rates a vulnerability "Unknown" leaves stored, when nothing else rates it.
UNKNOWN_SEVERITY = UNRATED
# The fields a record may set, each copied only when the record gives it (not None).
_COPIED = (
    "description",
    "published_on",
    "updated_on",
    "public_exploit",
    "exploit_verified",
    "exploit_in_kit",
    "kev_listed",
    "kev_date_added",
    "kev_due_date",
    "kev_ransomware",
    "epss",
    "epss_percentile",
)
_COLUMNS = (
    "id",
    "name",
    "description",
    "severity",
    "cvss_v3_vector",
    "cvss_v3_score",
    "cvss_v4_vector",
    "cvss_v4_score",
    "published_on",
    "updated_on",
    "public_exploit",
    "exploit_verified",
    "exploit_in_kit",
    "exploit_types",
    "exploit_uris",
    "kev_listed",
    "kev_date_added",
    "kev_due_date",
    "kev_ransomware",
    "epss",
    "epss_percentile",
    "cwe_ids",
    "exposure_points",
)


def table_of(model: type[Any]) -> Table:
    """The Core table of a mapped class (typed, for set-based statements)."""
    table: Table = model.__table__
    return table


@dataclass(slots=True)
class IntelSummary:
    """What an intelligence upsert changed."""

    added: int = 0
    updated: int = 0
    events: int = 0
    changed_ids: set[str] = field(default_factory=set)  # created or updated
    updated_ids: set[str] = field(default_factory=set)  # known before, and changed


@lru_cache(maxsize=65536)
def cvss_v3(vector: str) -> tuple[float, str] | None:
    """Base score and severity of a CVSS v3 vector (None when the vector is malformed).

    Cached: a report repeats a few thousand distinct vectors over millions of records, and
    parsing one costs about 50 microseconds.
    """
    try:
        parsed = CVSS3(vector)
    except Exception:  # the cvss library raises several error types for bad vectors
        return None
    return float(parsed.scores()[0]), _severity(str(parsed.severities()[0]))


@lru_cache(maxsize=65536)
def cvss_v4(vector: str) -> tuple[float, str] | None:
    """Base score and severity of a CVSS v4 vector (None when the vector is malformed; cached)."""
    try:
        parsed = CVSS4(vector)
    except Exception:  # the cvss library raises several error types for bad vectors
        return None
    return float(parsed.base_score), _severity(str(parsed.severity))


def _severity(label: str) -> str:
    # CVSS "None" (score 0) has no Defender severity: Low is the floor.
    return label if label in SEVERITY_RANK else "Low"


def points_of(row: dict[str, Any]) -> float:
    """Exposure points of one weakness of the vulnerability in ``row``."""
    score = row.get("cvss_v3_score")
    if score is None:
        score = row.get("cvss_v4_score")
    return vulnerability_points(
        cvss_score=score,
        severity=row.get("severity") or "Medium",
        kev_listed=bool(row.get("kev_listed")),
        public_exploit=bool(row.get("public_exploit")),
        epss=row.get("epss"),
    )


def _apply(row: dict[str, Any], record: VulnerabilityRecord) -> None:
    """Copy what ``record`` says onto ``row`` and derive scores and severity."""
    for name in _COPIED:
        value = getattr(record, name)
        if value is not None:
            row[name] = value
    if record.cwe_ids:
        row["cwe_ids"] = list(record.cwe_ids)
    severity = record.severity
    if record.cvss_v3_vector:
        row["cvss_v3_vector"] = record.cvss_v3_vector
        scored = cvss_v3(record.cvss_v3_vector)
        if scored is not None:
            row["cvss_v3_score"] = scored[0]
            severity = severity or scored[1]
    elif record.cvss_v3_score is not None and 0.0 <= record.cvss_v3_score <= 10.0:
        # A score the source gives without its vector (Trivy Operator, Wazuh): kept as given.
        row["cvss_v3_score"] = record.cvss_v3_score
    if record.cvss_v4_vector:
        row["cvss_v4_vector"] = record.cvss_v4_vector
        scored = cvss_v4(record.cvss_v4_vector)
        if scored is not None:
            row["cvss_v4_score"] = scored[0]
            severity = severity or (scored[1] if row.get("cvss_v3_score") is None else None)
    if severity in SEVERITY_RANK:
        row["severity"] = severity
    elif (
        severity == UNKNOWN_SEVERITY
        and row.get("cvss_v3_score") is None
        and row.get("cvss_v4_score") is None
        and row.get("severity") in (None, "Medium", UNKNOWN_SEVERITY)
        and record.cvss_v3_vector is None
    ):
        # The source says it does not know (Grype's "Unknown") and nothing scores it: stored
        # as "Unknown", never replaced by a default (scored like Medium, docs/formats.md).
        row["severity"] = UNKNOWN_SEVERITY
    row["exposure_points"] = points_of(row)


def _new_row(vulnerability_id: str) -> dict[str, Any]:
    return {
        "id": vulnerability_id,
        "name": vulnerability_id,
        "description": "",
        "severity": "Medium",
        "cvss_v3_vector": None,
        "cvss_v3_score": None,
        "cvss_v4_vector": None,
        "cvss_v4_score": None,
        "published_on": None,
        "updated_on": None,
        "public_exploit": False,
        "exploit_verified": False,
        "exploit_in_kit": False,
        "exploit_types": [],
        "exploit_uris": [],
        "kev_listed": False,
        "kev_date_added": None,
        "kev_due_date": None,
        "kev_ransomware": False,
        "epss": None,
        "epss_percentile": None,
        "cwe_ids": [],
        "exposure_points": 0.0,
    }


def _worsening(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The worsening changes from ``old`` to ``new``: (kind, old value, new value)."""
    events: list[tuple[str, str, str]] = []
    if new["kev_listed"] and not old["kev_listed"]:
        events.append(("kev_listed", "false", "true"))
    if new["public_exploit"] and not old["public_exploit"]:
        events.append(("public_exploit", "false", "true"))
    if new["exploit_verified"] and not old["exploit_verified"]:
        events.append(("exploit_verified", "false", "true"))
    if new["epss"] is not None and new["epss"] > (old["epss"] or 0.0) + 1e-9:
        events.append(("epss_increase", f"{old['epss'] or 0.0:.5f}", f"{new['epss']:.5f}"))
    if SEVERITY_RANK.get(new["severity"], 0) > SEVERITY_RANK.get(old["severity"], 0):
        events.append(("severity_increase", old["severity"], new["severity"]))
    return events


def upsert_vulnerabilities(
    session: Session,
    records: Iterable[VulnerabilityRecord],
    *,
    source: str,
    observed_at: datetime,
    create_only: bool = False,
) -> IntelSummary:
    """Create or update vulnerabilities from ``records``, set-based, in batches.

    Records an :class:`IntelEvent` (dated ``observed_at``) for each worsening change of a known
    vulnerability, and keeps ``exposure_points`` in step. With ``create_only``, known
    vulnerabilities are left as they are (reports only fill gaps, feeds are authoritative).
    """
    summary = IntelSummary()
    batch: list[VulnerabilityRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            _upsert_batch(
                session,
                batch,
                source=source,
                observed_at=observed_at,
                create_only=create_only,
                summary=summary,
            )
            batch = []
    if batch:
        _upsert_batch(
            session,
            batch,
            source=source,
            observed_at=observed_at,
            create_only=create_only,
            summary=summary,
        )
    return summary


def _upsert_batch(
    session: Session,
    records: Sequence[VulnerabilityRecord],
    *,
    source: str,
    observed_at: datetime,
    create_only: bool,
    summary: IntelSummary,
) -> None:
    # Equal records repeat on every finding of a vulnerability; applying one twice changes
    # nothing, so only the last of equal records is applied (it leaves the same final row).
    records = list(reversed(dict.fromkeys(reversed(records))))
    ids = list(dict.fromkeys(r.vulnerability_id for r in records))
    table = table_of(Vulnerability)
    existing: dict[str, dict[str, Any]] = {
        row["id"]: dict(row)
        for row in session.execute(
            select(*[table.c[name] for name in _COLUMNS]).where(table.c.id.in_(ids))
        ).mappings()
    }
    originals = {key: dict(value) for key, value in existing.items()}
    created: dict[str, dict[str, Any]] = {}
    for record in records:
        row = existing.get(record.vulnerability_id)
        if row is None:
            row = created.get(record.vulnerability_id)
            if row is None:
                row = created[record.vulnerability_id] = _new_row(record.vulnerability_id)
        elif create_only:
            continue
        _apply(row, record)
    if created:
        session.execute(insert(Vulnerability), list(created.values()))
        summary.added += len(created)
        summary.changed_ids.update(created)
    changed = [row for key, row in existing.items() if row != originals[key]]
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("b_id")),
            [{**{k: v for k, v in row.items() if k != "id"}, "b_id": row["id"]} for row in changed],
        )
        summary.updated += len(changed)
        summary.changed_ids.update(row["id"] for row in changed)
        summary.updated_ids.update(row["id"] for row in changed)
        events = [
            {
                "vulnerability_id": row["id"],
                "kind": kind,
                "old_value": old_value,
                "new_value": new_value,
                "source": source,
                "occurred_at": observed_at,
            }
            for row in changed
            for kind, old_value, new_value in _worsening(originals[row["id"]], row)
        ]
        if events:
            session.execute(insert(IntelEvent), events)
            summary.events += len(events)


def upsert_configurations(session: Session, checks: Iterable[dict[str, Any]]) -> int:
    """Create or update security configuration checks (dicts of model fields); returns changes."""
    rows = {check["id"]: check for check in checks}
    if not rows:
        return 0
    table = table_of(SecurityConfiguration)
    known = {
        row["id"]: dict(row)
        for row in session.execute(
            select(*[table.c[name] for name in next(iter(rows.values()))]).where(
                table.c.id.in_(list(rows))
            )
        ).mappings()
    }
    new = [row for key, row in rows.items() if key not in known]
    changed = [row for key, row in rows.items() if key in known and known[key] != row]
    if new:
        session.execute(insert(SecurityConfiguration), new)
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("b_id")),
            [{**{k: v for k, v in row.items() if k != "id"}, "b_id": row["id"]} for row in changed],
        )
    return len(new) + len(changed)
