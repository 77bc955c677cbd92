"""The export assessment APIs of the Defender-compatible API.

JSON, paged with ``pageIndex``/``pageSize`` and ``@odata.nextLink``:
``/api/machines/SoftwareVulnerabilitiesByMachine``, ``SoftwareVulnerabilityChangesByMachine``
(``sinceTime``), ``SoftwareInventoryByMachine``, ``SecureConfigurationsAssessmentByMachine``.
Via files: ``SoftwareVulnerabilitiesExport``, ``SoftwareInventoryExport`` and
``SecureConfigurationsAssessmentExport`` answer ``exportFiles``: links to gzip JSON-lines
files that remedium serves itself (``/api/exports/...``), signed with the server's key,
expiring (``sasValidHours``, 1 to 6) and bound to the caller, whose device groups are read
again when a file is downloaded. Pages and files are written while rows are read (streamed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remedium.api.deps import PrincipalDep, ScopeDep, SessionDep
from remedium.auth.models import User
from remedium.auth.principal import Right, Scope
from remedium.auth.service import principal_for, secret_key
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.db.session import session_factory
from remedium.defender.api import ODataRoute, ResourceNotFoundError, _context, defender_router
from remedium.defender.api import get_registrar as _registrar
from remedium.defender.export_rows import (
    CONFIGURATIONS,
    FILE_EXPORTS,
    INVENTORY,
    VULNERABILITIES,
    Export,
    vulnerability_item,
)
from remedium.defender.odata import ODataError
from remedium.defender.schemas import odata_datetime
from remedium.inventory.models import Device
from remedium.settings import get_settings

router = defender_router()
_get = _registrar(router)
# The file downloads carry their own signature instead of a token (like Microsoft's SAS links).
downloads = APIRouter(
    prefix="/api/exports", tags=["Defender-compatible API"], route_class=ODataRoute
)

DEFAULT_PAGE_SIZE = 50_000
MAX_PAGE_SIZE = 200_000
MAX_PAGE_INDEX = 1_000_000
MAX_TOP = 200_000
# Devices per export file: a file never splits a device.
DEVICES_PER_FILE = 20_000
READ_BATCH = 2_000


# --- JSON pages ---------------------------------------------------------------------------------


def _bounded(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ODataError(f"The {name} value '{text}' is not a whole number.") from None
    if not low <= value <= high:
        raise ODataError(f"The {name} value {value} must be between {low} and {high}.")
    return value


def _since(text: str | None) -> datetime:
    if not text:
        raise ODataError("sinceTime is required, e.g. sinceTime=2024-05-19T18:35:49Z.")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ODataError(f"The sinceTime value '{text}' is not a date and time.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _stream_page(
    engine: Engine,
    request: Request,
    export: Export,
    scope: Scope,
    *,
    since: datetime | None,
    page_index: int,
    page_size: int,
    top: int | None,
) -> StreamingResponse:
    limit = top if top is not None else page_size
    offset = 0 if top is not None else (page_index - 1) * page_size
    entity = "DeltaAssetVulnerability" if since is not None else export.entity
    context = _context(request, f"Collection(microsoft.windowsDefenderATP.api.{entity})")
    next_link = str(request.url.include_query_params(pageIndex=page_index + 1))

    def body() -> Iterator[bytes]:
        yield (json.dumps({"@odata.context": context})[:-1] + ', "value": [').encode()
        session = session_factory(engine)()
        written = 0
        more = False
        try:
            statement = export.statement(scope, since).offset(offset).limit(limit + 1)
            result = session.execute(statement.execution_options(yield_per=READ_BATCH))
            chunk: list[str] = []
            for row in result:
                if written == limit:
                    more = top is None  # a client $top ends the result
                    break
                item = (
                    vulnerability_item(row, since=since)
                    if export is VULNERABILITIES
                    else export.item(row)
                )
                chunk.append(("," if written else "") + json.dumps(item))
                written += 1
                # Each yield crosses a thread: send rows in batches, not one by one.
                if len(chunk) >= READ_BATCH:
                    yield "".join(chunk).encode()
                    chunk.clear()
            if chunk:
                yield "".join(chunk).encode()
        finally:
            session.close()
        tail = f', "@odata.nextLink": {json.dumps(next_link)}' if more else ""
        yield ("]" + tail + "}").encode()

    return StreamingResponse(body(), media_type="application/json")


PageIndexParam = Annotated[str | None, Query(alias="pageIndex")]
PageSizeParam = Annotated[str | None, Query(alias="pageSize")]
TopParam = Annotated[str | None, Query(alias="$top")]


def _page_response(
    request: Request,
    session: Session,
    scope: Scope,
    export: Export,
    *,
    page_index: str | None,
    page_size: str | None,
    top: str | None,
    since: datetime | None = None,
) -> StreamingResponse:
    index = _bounded("pageIndex", page_index, 1, 1, MAX_PAGE_INDEX)
    size = _bounded("pageSize", page_size, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    top_value = None if top in (None, "") else _bounded("$top", top, 0, 0, MAX_TOP)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    return _stream_page(
        engine, request, export, scope, since=since, page_index=index, page_size=size, top=top_value
    )


@_get("/machines/SoftwareVulnerabilitiesByMachine", "/Machines/SoftwareVulnerabilitiesByMachine")
def software_vulnerabilities_by_machine(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    page_index: PageIndexParam = None,
    page_size: PageSizeParam = None,
    top: TopParam = None,
) -> StreamingResponse:
    """Every open (device, product version, CVE) in scope, paged."""
    return _page_response(
        request,
        session,
        scope,
        VULNERABILITIES,
        page_index=page_index,
        page_size=page_size,
        top=top,
    )


@_get(
    "/machines/SoftwareVulnerabilityChangesByMachine",
    "/Machines/SoftwareVulnerabilityChangesByMachine",
)
def software_vulnerability_changes_by_machine(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    since_time: Annotated[str | None, Query(alias="sinceTime")] = None,
    page_index: PageIndexParam = None,
    page_size: PageSizeParam = None,
    top: TopParam = None,
) -> StreamingResponse:
    """What changed since ``sinceTime``: weaknesses New, Fixed, or Updated (CVE facts)."""
    since = _since(since_time)
    return _page_response(
        request,
        session,
        scope,
        VULNERABILITIES,
        page_index=page_index,
        page_size=page_size,
        top=top,
        since=since,
    )


@_get("/machines/SoftwareInventoryByMachine", "/Machines/SoftwareInventoryByMachine")
def software_inventory_by_machine(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    page_index: PageIndexParam = None,
    page_size: PageSizeParam = None,
    top: TopParam = None,
) -> StreamingResponse:
    """Every installed (device, product, version) in scope, paged."""
    return _page_response(
        request, session, scope, INVENTORY, page_index=page_index, page_size=page_size, top=top
    )


@_get(
    "/machines/SecureConfigurationsAssessmentByMachine",
    "/Machines/SecureConfigurationsAssessmentByMachine",
)
def secure_configurations_by_machine(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    page_index: PageIndexParam = None,
    page_size: PageSizeParam = None,
    top: TopParam = None,
) -> StreamingResponse:
    """Every (device, configuration check) assessed in scope, paged."""
    return _page_response(
        request, session, scope, CONFIGURATIONS, page_index=page_index, page_size=page_size, top=top
    )


# --- files --------------------------------------------------------------------------------------


def _signature(
    key: str, kind: str, *, part: int, low: int, high: int, user: int, expires: int
) -> str:
    message = f"{kind}|{part}|{low}|{high}|{user}|{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _boundaries(session: Session, scope: Scope) -> list[tuple[int, int]]:
    """Device id ranges of the files: DEVICES_PER_FILE devices in scope each."""
    in_groups = in_scope(Device.device_group_id, scope)
    total = int(session.scalar(select(func.count(Device.id)).where(in_groups)) or 0)
    if total == 0:
        return [(0, 0)]
    ranges = []
    for start in range(0, total, DEVICES_PER_FILE):
        low = session.scalar(
            select(Device.id).where(in_groups).order_by(Device.id).offset(start).limit(1)
        )
        end = min(start + DEVICES_PER_FILE, total) - 1
        high = session.scalar(
            select(Device.id).where(in_groups).order_by(Device.id).offset(end).limit(1)
        )
        ranges.append((int(low or 0), int(high or 0)))
    return ranges


def _export_files(
    request: Request,
    session: Session,
    principal: PrincipalDep,
    kind: str,
    valid_hours: str | None,
) -> dict[str, Any]:
    if principal.user_id is None:
        raise HTTPException(403, "Exports are made for a user or a user's token.")
    hours = _bounded("sasValidHours", valid_hours, 1, 1, 6)
    expires = int(time.time()) + hours * 3600
    key = secret_key(session, get_settings().secret_key)
    base = str(request.base_url).rstrip("/")
    files = []
    for part, (low, high) in enumerate(_boundaries(session, principal.scope)):
        signature = _signature(
            key, kind, part=part, low=low, high=high, user=principal.user_id, expires=expires
        )
        query = urlencode(
            {"lo": low, "hi": high, "u": principal.user_id, "se": expires, "sig": signature}
        )
        files.append(f"{base}/api/exports/{kind}/part-{part:05d}.json.gz?{query}")
    return {
        "@odata.context": _context(request, "microsoft.windowsDefenderATP.api.ExportFilesResponse"),
        "exportFiles": files,
        "generatedTime": odata_datetime(utcnow().replace(microsecond=0)),
    }


SasParam = Annotated[str | None, Query(alias="sasValidHours")]


@_get("/machines/SoftwareVulnerabilitiesExport", "/Machines/SoftwareVulnerabilitiesExport")
def software_vulnerabilities_export(
    request: Request, *, session: SessionDep, principal: PrincipalDep, hours: SasParam = None
) -> dict[str, Any]:
    """Download links of the software vulnerabilities assessment (gzip JSON lines)."""
    return _export_files(request, session, principal, "SoftwareVulnerabilities", hours)


@_get("/machines/SoftwareInventoryExport", "/Machines/SoftwareInventoryExport")
def software_inventory_export(
    request: Request, *, session: SessionDep, principal: PrincipalDep, hours: SasParam = None
) -> dict[str, Any]:
    """Download links of the software inventory assessment (gzip JSON lines)."""
    return _export_files(request, session, principal, "SoftwareInventory", hours)


@_get(
    "/machines/SecureConfigurationsAssessmentExport",
    "/Machines/SecureConfigurationsAssessmentExport",
)
def secure_configurations_export(
    request: Request, *, session: SessionDep, principal: PrincipalDep, hours: SasParam = None
) -> dict[str, Any]:
    """Download links of the secure configuration assessment (gzip JSON lines)."""
    return _export_files(request, session, principal, "SecureConfigurationsAssessment", hours)


def _gzip_lines(
    engine: Engine, export: Export, scope: Scope, low: int, high: int
) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip member
    session = session_factory(engine)()
    try:
        statement = export.statement(scope, None).where(Device.id >= low, Device.id <= high)
        buffer: list[bytes] = []
        for row in session.execute(statement.execution_options(yield_per=READ_BATCH)):
            buffer.append(json.dumps(export.item(row)).encode() + b"\n")
            if len(buffer) >= READ_BATCH:
                chunk = compressor.compress(b"".join(buffer))
                buffer.clear()
                if chunk:
                    yield chunk
        yield compressor.compress(b"".join(buffer)) + compressor.flush()
    finally:
        session.close()


@downloads.get("/{kind}/{part_name}", include_in_schema=False, response_model=None)
def download_export_file(
    request: Request,
    kind: str,
    part_name: str,
    *,
    lo: Annotated[int, Query(ge=0, le=2**62)],
    hi: Annotated[int, Query(ge=0, le=2**62)],
    u: Annotated[int, Query(ge=1, le=2**31)],
    se: Annotated[int, Query(ge=0, le=2**40)],
    sig: Annotated[str, Query(min_length=64, max_length=64)],
) -> StreamingResponse | JSONResponse:
    """One export file, if its link is genuine and unexpired and its user may still read."""
    export = FILE_EXPORTS.get(kind)
    if export is None or not part_name.startswith("part-") or not part_name.endswith(".json.gz"):
        raise ResourceNotFoundError("No such export file")
    try:
        part = int(part_name.removeprefix("part-").removesuffix(".json.gz"))
    except ValueError:
        raise ResourceNotFoundError("No such export file") from None
    engine: Engine = request.app.state.engine
    with session_factory(engine)() as session:
        key = secret_key(session, get_settings().secret_key)
        session.commit()
        expected = _signature(key, kind, part=part, low=lo, high=hi, user=u, expires=se)
        if not hmac.compare_digest(expected, sig):
            return _forbidden("The link's signature is wrong.")
        if se < time.time():
            return _forbidden("The link has expired; ask for the export again.")
        user = session.get(User, u)
        if user is None or not user.active:
            return _forbidden("The link's user can no longer read exports.")
        principal = principal_for(user)
        if not principal.has(Right.VIEW):
            return _forbidden("The link's user can no longer read exports.")
        scope = principal.scope
    return StreamingResponse(
        _gzip_lines(engine, export, scope, lo, hi),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{part_name}"'},
    )


def _forbidden(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "Forbidden", "message": message, "target": ""}}, status_code=403
    )
