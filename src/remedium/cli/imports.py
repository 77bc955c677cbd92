"""``remedium import FILE...``: import scanner, inventory and configuration reports."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from remedium.cli.common import console, loading, print_json, ready_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from remedium.importers.service import ImportSummary

DEVICE_NAME_MAX = 255  # the length of ``device.name``
SHOWN = (
    ("devices_added", "devices added"),
    ("devices_updated", "devices updated"),
    ("software_added", "software added"),
    ("findings_added", "findings added"),
    ("findings_updated", "findings updated"),
    ("findings_fixed", "findings fixed"),
    ("configuration_results", "configuration results"),
    ("vulnerabilities_added", "vulnerabilities added"),
    ("findings_on_detection", "findings kept on the scanner's detection"),
)
ALWAYS_SHOWN = {"findings_added", "findings_fixed"}


def _device_name(value: str | None) -> str | None:
    """``--device``: a device name of 1 to 255 characters once stripped."""
    if value is None:
        return None
    name = value.strip()
    if not 1 <= len(name) <= DEVICE_NAME_MAX:
        raise typer.BadParameter(f"give a device name of 1 to {DEVICE_NAME_MAX} characters")
    return name


def import_command(  # noqa: PLR0917 - one argument per option
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    format: str = typer.Option(None, "--format", help="Report format (detected when omitted)."),
    device_group: str = typer.Option(
        None, "--device-group", help="Put every device of the files into this device group."
    ),
    device: str = typer.Option(
        None,
        "--device",
        callback=_device_name,
        help=(
            "The device a report describes when it names none (e.g. a Wazuh agent's API export)."
        ),
    ),
    complete: bool = typer.Option(
        False,
        "--complete",
        help=(
            "The file is a complete scan of its devices: what it no longer lists is fixed. "
            "Needed for formats that cannot prove it (CSV exports), which otherwise fix nothing."
        ),
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Read and check the files, print what would change, and change nothing.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Import FILE... in one transaction: a bad file changes nothing."""
    # The import pipeline (SQLAlchemy, the models, the recompute) loads when the command runs,
    # not for ``remedium import --help`` (docs/imports.md, "Start-up").
    with loading():
        from remedium.importers.worker import stop_early  # noqa: PLC0415 — not for --help

        try:
            _start_parser_early(files[0], format, device)
            # The pipeline loads within ``loading`` (its objects are then frozen, see there).
            import remedium.db.session  # noqa: PLC0415 — not for --help
            import remedium.importers.service  # noqa: F401, PLC0415 — not for --help

            engine = ready_engine()
        except BaseException:
            stop_early()
            raise
    try:
        _import_files(engine, files, format, device_group, device, complete, dry_run, as_json)
    finally:
        stop_early()


def _start_parser_early(path: Path, format: str | None, device: str | None) -> None:
    """Start the first file's parser process before the pipeline loads, when the file is large
    enough to have one (``importers/worker.py``, ``start_early``; docs/imports.md): it parses
    while this process loads SQLAlchemy and the models. A file whose format cannot be told is
    left to the import, which says why."""
    from remedium.importers.records import ReportError  # noqa: PLC0415 — not for --help
    from remedium.importers.registry import detect_parser, get_parser  # noqa: PLC0415 — idem
    from remedium.importers.worker import parser_process_from, start_early  # noqa: PLC0415 — idem

    try:
        parser = get_parser(format) if format else detect_parser(path)
    except ReportError:
        return
    start_early(parser.name, path, parser_process_from(), device_name=device or "")


def _import_files(  # noqa: PLR0917 - the command's options, passed on
    engine: Engine,
    files: list[Path],
    format: str | None,
    device_group: str | None,
    device: str | None,
    complete: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    # Loaded by the command already (within ``loading``).
    from remedium.db.session import dry_run_session, transaction  # noqa: PLC0415 — idem
    from remedium.importers.records import ReportError  # noqa: PLC0415 — idem
    from remedium.importers.service import import_report  # noqa: PLC0415 — idem

    summaries: list[ImportSummary] = []
    try:
        with (
            dry_run_session(engine) if dry_run else transaction(engine) as session,
            _progress_bars(shown=not as_json and console.is_terminal) as progress_of,
        ):
            for path in files:
                summaries.append(
                    import_report(
                        session,
                        path,
                        format=format,
                        device_group=device_group,
                        progress=progress_of(path),
                        device_name=device,
                        complete=complete,
                        derive=not dry_run,
                    )
                )
    except ReportError as error:
        console.print(f"[red]import refused, nothing changed:[/red] {error}")
        raise typer.Exit(2) from None
    if dry_run:
        for summary in summaries:
            summary.import_id = None
    if as_json:
        print_json({**_combined(summaries), "dry_run": dry_run})
        return
    if dry_run:
        console.print("[bold]dry run:[/bold] nothing was changed; this is what the import would do")
    for summary in summaries:
        _print_summary(summary)


Advance = Callable[[int, int], None]


@contextlib.contextmanager
def _progress_bars(*, shown: bool) -> Iterator[Callable[[Path], Advance]]:
    """A progress bar per file on a terminal: gives each file's ``progress(done, total)``.

    Not shown (``--json``, or output not a terminal): no bar, and Rich's progress display is not
    even imported (a small import starts faster; docs/imports.md, "Start-up").
    """
    if not shown:
        yield lambda _path: _ignore
        return
    from rich.progress import (  # noqa: PLC0415 — drawn only on a terminal
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:

        def bar(path: Path) -> Advance:
            task = progress.add_task(path.name, total=path.stat().st_size or 1)

            def advance(done: int, total: int, task: Any = task) -> None:
                progress.update(task, completed=done, total=total)

            return advance

        yield bar


def _ignore(_done: int, _total: int) -> None:
    """``progress`` when no bar is shown."""


def _print_summary(summary: ImportSummary) -> None:
    """One file's figures as a table."""
    from rich.table import Table  # noqa: PLC0415 — only for the table output, not for --json

    table = Table(title=f"{summary.filename} ({summary.format}, source {summary.source})")
    table.add_column("")
    table.add_column("count", justify="right")
    data = summary.as_dict()
    for key, label in SHOWN:
        # A re-import changes little: counts of what did not change are not repeated.
        if data[key] or key in ALWAYS_SHOWN:
            table.add_row(label, str(data[key]))
    for skipped in summary.skipped:
        table.add_row(f"skipped: {skipped['reason']}", str(skipped["count"]))
    console.print(table)


def _combined(summaries: list[ImportSummary]) -> dict[str, Any]:
    """One JSON object for all files: summed counts, plus each file's own summary."""
    result: dict[str, Any] = {key: 0 for key, _ in SHOWN}
    result.update(findings_reopened=0, configurations_fixed=0)
    skipped: dict[str, int] = {}
    for summary in summaries:
        data = summary.as_dict()
        for key in result:
            result[key] += data[key]
        for entry in summary.skipped:
            skipped[entry["reason"]] = skipped.get(entry["reason"], 0) + entry["count"]
    result["skipped"] = [{"reason": r, "count": c} for r, c in sorted(skipped.items())]
    result["imports"] = [s.as_dict() for s in summaries]
    return result
