"""The import page: upload a report or an intelligence feed, and the history of imports."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from remedium.api.deps import SessionDep, require
from remedium.audit import service as audit_service
from remedium.auth.principal import Principal, Right
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.registry import FORMATS
from remedium.importers.service import import_report
from remedium.importers.summary import ImportSummary
from remedium.intel.feeds import FEEDS
from remedium.intel.importing import import_feed
from remedium.inventory.models import DeviceGroup
from remedium.web.templating import NavItem, PageContext, PageDep, register_navigation

router = APIRouter(include_in_schema=False)
HISTORY = 50
DEVICE_NAME_MAX = 255  # the length of ``device.name``
# Counts shown for each import in the history, in this order, when non-zero.
SHOWN = (
    ("devices_added", "devices added"),
    ("devices_updated", "devices updated"),
    ("software_added", "products added"),
    ("findings_added", "findings added"),
    ("findings_updated", "findings updated"),
    ("findings_fixed", "findings fixed"),
    ("findings_reopened", "findings reopened"),
    ("findings_on_detection", "findings kept on the scanner's detection"),
    ("configuration_results", "configuration results"),
    ("devices_matched", "devices matched"),
    ("vulnerabilities_added", "vulnerabilities added"),
    ("vulnerabilities_updated", "vulnerabilities updated"),
    ("events", "threat events"),
    ("ranges_added", "affected ranges added"),
)

register_navigation(NavItem("imports", "Imports", "/imports", 60, "box", Right.ADMIN))


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The non-zero counts of an import summary, as "12 findings added"."""
    return [f"{summary[key]:,} {label}" for key, label in SHOWN if summary.get(key)]


def _render(
    page: PageContext,
    session: SessionDep,
    *,
    error: str = "",
    status_code: int = 200,
    checked: dict[str, Any] | None = None,
) -> HTMLResponse:
    runs = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(HISTORY)).all()
    groups = dict(session.execute(select(DeviceGroup.id, DeviceGroup.name)).tuples().all())
    done = page.request.query_params.get("done", "")
    return page.render(
        "imports/imports.html",
        {
            "title": "Imports",
            "active": "imports",
            "runs": runs,
            "group_names": groups,
            "device_groups": sorted(groups.values()),
            "report_formats": sorted(FORMATS),
            "feeds": sorted(FEEDS),
            "summary_lines": summary_lines,
            "error": error,
            "checked": checked,
            "done": int(done) if done.isdigit() else None,
        },
        status_code=status_code,
    )


@router.get("/imports", response_class=HTMLResponse, dependencies=[require(Right.ADMIN)])  # type: ignore[list-item]
def imports_page(page: PageDep, session: SessionDep) -> HTMLResponse:
    """The upload form and the history of imports, newest first."""
    return _render(page, session)


def _import_upload(
    session: Session,
    path: Path,
    principal: Principal | None,
    *,
    format: str,
    device_group: str,
    device_name: str,
    complete: bool,
    checking: bool,
) -> ImportSummary:
    """Import an uploaded report; when ``checking``, in a savepoint rolled back afterwards."""
    savepoint = session.begin_nested() if checking else None
    try:
        return import_report(
            session,
            path,
            format=format or None,
            device_group=device_group.strip() or None,
            device_name=device_name or None,
            imported_by=principal.name if principal else "web",
            filename=path.name,
            actor=principal,
            complete=complete,
            derive=not checking,
        )
    finally:
        if savepoint is not None:
            savepoint.rollback()


@router.post("/imports", response_model=None, dependencies=[require(Right.ADMIN)])  # type: ignore[list-item]
def upload(  # noqa: PLR0917 - one argument per form field
    page: PageDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    format: Annotated[str, Form()] = "",
    device_group: Annotated[str, Form()] = "",
    device: Annotated[str, Form()] = "",
    complete: Annotated[bool, Form()] = False,
    action: Annotated[str, Form()] = "import",
) -> Response:
    """Import one uploaded file in the request's transaction; a bad file changes nothing and the
    page says why. ``device`` is the device a report that names none describes (optional);
    ``complete`` says the file is a complete scan (CSV exports fix nothing without it).
    ``action=check`` ("Check first") runs the import in a savepoint it rolls back and shows what
    it would do, changing nothing."""
    checking = action == "check" and not format.startswith("feed:")
    principal = page.principal
    name = Path(file.filename or "upload").name
    device_name = device.strip()
    if len(device_name) > DEVICE_NAME_MAX:
        return _render(
            page,
            session,
            error=f"Import refused, nothing changed: the device name is longer than "
            f"{DEVICE_NAME_MAX} characters",
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    with tempfile.TemporaryDirectory(prefix="remedium-upload-") as folder:
        path = Path(folder) / name
        with path.open("wb") as target:
            shutil.copyfileobj(file.file, target, 1 << 20)
        try:
            if format.startswith("feed:"):
                feed = format.removeprefix("feed:") or None
                import_id = import_feed(
                    session,
                    path,
                    feed=feed,
                    imported_by=principal.name if principal else "web",
                    filename=name,
                ).import_id
            else:
                summary = _import_upload(
                    session,
                    path,
                    principal,
                    format=format,
                    device_group=device_group,
                    device_name=device_name,
                    complete=complete,
                    checking=checking,
                )
                if checking:
                    return _render(page, session, checked=summary.as_dict())
                import_id = summary.import_id
        except ReportError as error:
            session.rollback()
            return _render(
                page,
                session,
                error=f"Import refused, nothing changed: {error}",
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
    run = session.get(ImportRun, import_id)
    if format.startswith("feed:"):
        # Report imports are audited by the pipeline itself; feeds are audited here.
        audit_service.record(
            session,
            actor=principal,
            action="import.create",
            object_type="import",
            object_id=import_id,
            device_group_id=run.device_group_id if run else None,
            after=run.summary if run else None,
            client_address=page.request.client.host if page.request.client else "",
        )
    # Post/redirect/get: a reload must not import the file twice.
    return RedirectResponse(f"/imports?done={import_id}", status_code=status.HTTP_303_SEE_OTHER)
