"""Streaming exports of list pages: CSV (and JSON lines), read in chunks while they are sent.

A list page's export reads the same query function as the page, with the page's filters, sort
and scope, but in chunks of :data:`CHUNK` rows from a session of its own: the request's session is
closed before a streamed body is sent, and the whole list is never held in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import StreamingResponse

from remedium.api.deps import get_engine_from_app
from remedium.db.session import session_factory

CHUNK = 500
# The most rows one export holds; a larger list is cut there (its last line says so).
MAX_ROWS = 200_000

Fetch = Callable[[Session, int, int], Sequence[Sequence[Any]]]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        return round(value, 4)
    return value


def _rows(request: Request, fetch: Fetch) -> Iterator[Sequence[Any]]:
    """Every row ``fetch(session, offset, limit)`` gives, chunk after chunk, on a fresh session."""
    with session_factory(get_engine_from_app(request))() as session:
        offset = 0
        while offset < MAX_ROWS:
            rows = fetch(session, offset, min(CHUNK, MAX_ROWS - offset))
            yield from rows
            if len(rows) < CHUNK:
                return
            offset += len(rows)
            session.expunge_all()


def _stamp(name: str, extension: str) -> str:
    return f"{name}-{date.today().isoformat()}.{extension}"


def csv_response(
    request: Request, name: str, header: Sequence[str], fetch: Fetch
) -> StreamingResponse:
    """``header`` then the rows of ``fetch``, as a CSV file download named ``name-DATE.csv``."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in _rows(request, fetch):
            writer.writerow([_cell(v) for v in row])
            if buffer.tell() > 16_384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_stamp(name, "csv")}"'},
    )


def jsonl_response(
    request: Request, name: str, header: Sequence[str], fetch: Fetch
) -> StreamingResponse:
    """The rows of ``fetch`` as JSON lines (one object per row, keys from ``header``)."""

    def lines() -> Iterator[str]:
        for row in _rows(request, fetch):
            record = {
                key: value.isoformat() if isinstance(value, datetime | date) else value
                for key, value in zip(header, row, strict=True)
            }
            yield json.dumps(record, ensure_ascii=False, default=str) + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{_stamp(name, "jsonl")}"'},
    )


def fields_of(item: Any, fields: Sequence[str]) -> list[Any]:
    """The values of ``fields`` of one view (a pydantic model or any object)."""
    return [getattr(item, name) for name in fields]


def export_url(path: str, query: str) -> str:
    """The export link of a list page: ``path`` with the page's query, less its page number."""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=False) if k not in ("p",)]
    return path + (f"?{urlencode(params)}" if params else "")
