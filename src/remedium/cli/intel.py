"""``remedium intel import FILE...``: import KEV, EPSS, NVD, OSV and CVE JSON 5 intelligence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from remedium.audit import service as audit_service
from remedium.cli.common import console, print_json, ready_engine
from remedium.db.session import transaction
from remedium.importers.records import ReportError
from remedium.intel.importing import IntelImportSummary, import_feed

intel_app = typer.Typer(no_args_is_help=True, help="Vulnerability intelligence feeds.")

SHOWN = (
    ("records", "records read"),
    ("vulnerabilities_added", "vulnerabilities added"),
    ("vulnerabilities_updated", "vulnerabilities updated"),
    ("events", "events (worsening changes)"),
    ("ranges_added", "affected ranges added"),
    ("devices_matched", "devices with new matches"),
    ("devices_recomputed", "devices recomputed"),
)


@intel_app.command("import")
def intel_import_command(
    files: list[Path] = typer.Argument(..., exists=True, readable=True),
    format: str = typer.Option(
        None,
        "--format",
        help="Feed: kev-json, kev-csv, epss, nvd, osv, cve5 (detected when omitted).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Import FILE... (files, folders or zips), each in its own transaction: a bad file changes
    nothing, and the files before it stay imported."""
    engine = ready_engine()
    summaries: list[IntelImportSummary] = []
    refused: list[dict[str, str]] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as progress:
        for path in files:
            task = progress.add_task(path.name, total=None)

            def advance(done: int, task: Any = task) -> None:
                progress.update(task, completed=done)

            try:
                with transaction(engine) as session:
                    summary = import_feed(session, path, feed=format, progress=advance)
                    audit_service.record(
                        session,
                        actor=None,
                        actor_name="cli",
                        action="intel.import",
                        object_type="import",
                        object_id=summary.import_id,
                        after=summary.as_dict(),
                    )
                summaries.append(summary)
            except ReportError as error:
                refused.append({"file": str(path), "error": str(error)})
            progress.remove_task(task)
    if as_json:
        print_json(
            {"imports": [s.as_dict() for s in summaries], "refused": refused, **_totals(summaries)}
        )
    else:
        for summary in summaries:
            _print(summary)
        for entry in refused:
            console.print(f"[red]import refused, nothing changed:[/red] {entry['error']}")
    if refused:
        raise typer.Exit(2)


def _totals(summaries: list[IntelImportSummary]) -> dict[str, int]:
    totals = {key: 0 for key, _ in SHOWN}
    for summary in summaries:
        data = summary.as_dict()
        for key in totals:
            totals[key] += int(data[key])
    return totals


def _print(summary: IntelImportSummary) -> None:
    title = f"{summary.filename} ({summary.feed}"
    title += f" {summary.version})" if summary.version else ")"
    table = Table(title=title)
    table.add_column("")
    table.add_column("count", justify="right")
    data = summary.as_dict()
    for key, label in SHOWN:
        table.add_row(label, str(data[key]))
    for skipped in summary.skipped:
        table.add_row(f"skipped: {skipped['reason']}", str(skipped["count"]))
    console.print(table)
