"""``/api/v1/imports`` (upload a report, list imports) and the native format's JSON Schema."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remedium.api.deps import PrincipalDep, SessionDep, require
from remedium.auth.principal import Principal, Right
from remedium.common.paging import DEFAULT_LIMIT, Page, clamp_limit, make_page
from remedium.importers.formats.native import inventory_schema
from remedium.importers.models import ImportRun
from remedium.importers.records import ReportError
from remedium.importers.schemas import ImportRunOut
from remedium.importers.service import ImportSummary, import_report

router = APIRouter(tags=["imports"])

# The name of the device a report describes when it names none (the length of ``device.name``).
DeviceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


@router.get("/schemas/remedium-inventory.json", include_in_schema=True)
def native_schema() -> JSONResponse:
    """The JSON Schema (draft 2020-12) of remedium's native report format."""
    return JSONResponse(inventory_schema(), media_type="application/schema+json")


@router.post(
    "/api/v1/imports",
    response_model=ImportRunOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require(Right.ADMIN)],  # type: ignore[list-item]
)
def upload_report(  # noqa: PLR0917 - one argument per form field
    session: SessionDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The report file.")],
    format: Annotated[str | None, Form(description="Format name; detected when empty.")] = None,
    device_group: Annotated[str | None, Form(description="Put every device in this group.")] = None,
    device: Annotated[
        DeviceName | None,
        Form(
            description=(
                "The device a report describes when it names none (e.g. a Wazuh agent's API "
                "export): its findings and software go to this device, matched by name or "
                "created. Without it they are skipped, with the reason in the summary."
            )
        ),
    ] = None,
    complete: Annotated[
        bool,
        Form(
            description=(
                "The file is a complete scan of its devices, so what it no longer lists is "
                "fixed. Formats that cannot prove it (CSV exports) fix nothing without it."
            )
        ),
    ] = False,
) -> Any:
    """Import one uploaded report in the request's transaction; a bad file changes nothing.

    A report that does not say which device it describes (a Wazuh agent's vulnerability export
    from ``GET /vulnerability/{agent_id}``, a syscollector dump without ``metadata.agent``) needs
    the ``device`` field; without it its records are skipped and listed under ``skipped``.
    """
    summary = _import_upload(
        session, principal, file, format, device_group, device, complete, dry_run=False
    )
    return session.get(ImportRun, summary.import_id)


@router.post(
    "/api/v1/imports/check",
    dependencies=[require(Right.ADMIN)],  # type: ignore[list-item]
)
def check_report(  # noqa: PLR0917 - one argument per form field
    session: SessionDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The report file.")],
    format: Annotated[str | None, Form(description="Format name; detected when empty.")] = None,
    device_group: Annotated[str | None, Form(description="Put every device in this group.")] = None,
    device: Annotated[DeviceName | None, Form(description="As for an import.")] = None,
    complete: Annotated[bool, Form(description="As for an import.")] = False,
) -> dict[str, Any]:
    """A dry run: read and digest the report and answer what an import would add, update, fix
    and skip (with reasons), changing nothing. A file an import would refuse answers 422."""
    summary = _import_upload(
        session, principal, file, format, device_group, device, complete, dry_run=True
    )
    return {**summary.as_dict(), "import_id": None, "dry_run": True}


def _import_upload(  # noqa: PLR0917 - the form's fields
    session: Session,
    principal: Principal,
    file: UploadFile,
    format: str | None,
    device_group: str | None,
    device: str | None,
    complete: bool,
    *,
    dry_run: bool,
) -> ImportSummary:
    name = Path(file.filename or "upload").name
    with tempfile.TemporaryDirectory(prefix="remedium-upload-") as folder:
        path = Path(folder) / name
        with path.open("wb") as target:
            shutil.copyfileobj(file.file, target, 1 << 20)
        # A dry run writes in a savepoint it then rolls back: the request's work is untouched.
        savepoint = session.begin_nested() if dry_run else None
        try:
            return import_report(
                session,
                path,
                format=format or None,
                device_group=device_group or None,
                device_name=device,
                imported_by=principal.name,
                filename=name,
                actor=principal,
                complete=complete,
                derive=not dry_run,
            )
        except ReportError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
        finally:
            if savepoint is not None:
                savepoint.rollback()


@router.get(
    "/api/v1/imports",
    response_model=Page[ImportRunOut],
    dependencies=[require(Right.ADMIN)],  # type: ignore[list-item]
)
def list_imports(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_LIMIT,
) -> Any:
    """Imports, newest first."""
    limit = clamp_limit(limit)
    total = session.scalar(select(func.count()).select_from(ImportRun)) or 0
    rows = session.scalars(
        select(ImportRun).order_by(ImportRun.id.desc()).offset(offset).limit(limit)
    ).all()
    return make_page([ImportRunOut.model_validate(r) for r in rows], total, offset, limit)
