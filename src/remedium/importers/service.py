"""The import pipeline: any ``ReportParser``'s records, written set-based in one transaction.

The parser's records are digested into batches (``importers/batches.py``; in a parser process
beside this one for large files, ``importers/worker.py``), written by a ``ReportWriter``
(``importers/writer.py``), then what follows a change of inventory runs (``changes/service.py``).
The caller owns the transaction: an error anywhere leaves the database as it was once the caller
rolls back. Rules (device identity, fixed-on-rescan, older scans) are in docs/imports.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from remedium.audit import service as audit_service
from remedium.auth.principal import Principal
from remedium.changes import service as changes
from remedium.changes.service import Settler
from remedium.db.base import utcnow
from remedium.db.indexes import stop_foreign_key_checks
from remedium.db.session import take_writer_lock
from remedium.importers.batches import normalise_name, vendor_product
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.registry import detect_parser, get_parser
from remedium.importers.summary import ImportSummary
from remedium.importers.worker import Report, file_sha256, parser_process_from, report_batches
from remedium.importers.writer import ReportWriter

__all__ = [
    "ImportSummary",
    "ReportWriter",
    "file_sha256",
    "import_report",
    "normalise_name",
    "vendor_product",
]

Progress = Callable[[int, int], None]


def import_report(
    session: Session,
    path: Path | str,
    *,
    format: str | None = None,
    device_group: str | None = None,
    imported_by: str = "cli",
    progress: Progress | None = None,
    filename: str | None = None,
    as_of: datetime | None = None,
    actor: Principal | None = None,
    derive: bool = True,
    device_name: str | None = None,
    complete: bool = False,
) -> ImportSummary:
    """Import one report file into the inventory and record an ``ImportRun``.

    ``format`` names the parser (detected from the file when ``None``); ``device_group`` puts every
    device of the file into that group; ``progress(done, total)`` is called with bytes read;
    ``as_of`` is when derived figures are computed for (default now; the demo replays history).
    The import is recorded in the audit history as ``actor`` (or ``imported_by`` for the system).
    ``derive=False`` skips recomputing recommendations and scores (benchmarks time it apart).
    ``device_name`` is the device a report that names none describes (a Wazuh agent's export).
    ``complete`` says the file is a complete scan where its format cannot prove it (CSV
    exports): only then does it mark what it no longer lists as fixed.
    Raises ``ReportError`` on a bad file; the caller then rolls back and nothing has changed.
    """
    path = Path(path)
    parser = get_parser(format) if format else detect_parser(path)
    total = path.stat().st_size
    shown_name = filename or path.name
    started_at = utcnow()
    in_process_below = parser_process_from()
    bulk = _take_import_lock(session, total, in_process_below)
    with report_batches(
        parser, path, shown_name, in_process_below=in_process_below, device_name=device_name or ""
    ) as report:
        info = report.info
        if complete and info.may_be_complete and not info.complete_scan:
            info = replace(info, complete_scan=True)
        writer = ReportWriter(
            session, info, filename=shown_name, device_group=device_group, bulk=bulk
        )
        settler = (
            Settler(session, as_of or started_at) if derive and report.in_parser_process else None
        )
        _write_batches(writer, report, settler, progress, total)
    summary = writer.summary
    if format and _read_nothing(summary):
        # The user named the format: a file it reads nothing from is the wrong file or format.
        raise ReportError(
            f"the {parser.name} parser read nothing from this file (no device, finding or "
            "other record); check the file and --format",
            filename=shown_name,
        )
    if derive:
        changes.after_report(session, summary, as_of=as_of, settled=settler)
    run = ImportRun(
        format=parser.name,
        filename=shown_name,
        source=info.source,
        device_group_id=writer.forced_group_id,
        imported_by=imported_by,
        scanned_at=info.scanned_at,
        started_at=started_at,
        finished_at=utcnow(),
        summary={},
        sha256=report.file_sha256(),
        note="; ".join(info.notes),
    )
    _record_run(session, run, summary, actor=actor, imported_by=imported_by)
    if progress is not None:
        progress(total, total)
    return summary


def _take_import_lock(session: Session, total: int, in_process_below: int) -> bool:
    """Decide whether a report of ``total`` bytes is a bulk load, then take the import lock;
    returns whether it is."""
    # Decided before the lock below opens the transaction: SQLite can stop checking foreign
    # keys for a bulk load only before its transaction's first write (db/indexes.py). The row
    # count it reads is an estimate; a concurrent import that changes it changes nothing here.
    bulk = total >= in_process_below and _is_bulk_load(session, total)
    if bulk:
        stop_foreign_key_checks(session)
    # One import at a time per database, across processes: two imports of the same devices
    # would otherwise race on them (docs/deployment.md).
    take_writer_lock(session, "remedium.import")
    return bulk


def _write_batches(
    writer: ReportWriter,
    report: Report,
    settler: Settler | None,
    progress: Progress | None,
    total: int,
) -> None:
    """Write every batch of ``report``, settling devices on the way (see ``Settler``)."""
    for batch in report.batches:
        writer.apply(batch)
        if settler is not None:
            settler.after(writer.devices_of(batch), writer.created)
        if progress is not None:
            progress(min(batch.position, total), total)
    writer.finish()


def _record_run(
    session: Session,
    run: ImportRun,
    summary: ImportSummary,
    *,
    actor: Principal | None,
    imported_by: str,
) -> None:
    """Store the import's ``ImportRun`` with its summary, and its audit event."""
    session.add(run)
    session.flush()
    summary.import_id = run.id
    run.summary = summary.as_dict()
    audit_service.record(
        session,
        actor=actor,
        actor_name=None if actor is not None else imported_by,
        action="import.create",
        object_type="import",
        object_id=run.id,
        device_group_id=run.device_group_id,
        after={"format": run.format, "filename": run.filename, **run.summary},
    )
    session.flush()


def _read_nothing(summary: ImportSummary) -> bool:
    return not (
        summary.devices_seen
        or summary.skipped_reasons
        or summary.vulnerabilities_added
        or summary.vulnerabilities_updated
        or summary.configurations_added
        or summary.changed_vulnerability_ids
    )


# A report adds at least one weakness per this many bytes (Trivy ~250, Grype ~650 per finding).
_BYTES_PER_ROW_AT_MOST = 1024


def _is_bulk_load(session: Session, size: int) -> bool:
    """True when a report of ``size`` bytes likely adds at least as many weaknesses as are
    stored: building the secondary indexes afterwards is then cheaper than keeping them up to
    date (SQLite; see ``inventory.service.defer_indexes``)."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    stored = session.execute(text("SELECT count(*) FROM weakness")).scalar_one()
    return int(stored) * _BYTES_PER_ROW_AT_MOST <= size
