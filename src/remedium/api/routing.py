"""Reads to a streaming standby, writes to the primary, read-your-writes for the writer.

With ``REMEDIUM_DATABASE_READ_URL`` set, a ``GET``/``HEAD`` request's session (``SessionDep``)
runs on the standby, unless the same browser or API client wrote within the last
``REMEDIUM_READ_YOUR_WRITES_SECONDS``: every successful write answers with a short-lived cookie
``remedium_wrote`` and while it lasts that client's reads go to the primary, so its next page
shows what it just did. Writes, sign-in and the authentication look-up (which records when a
session or token was last used) always use the primary. Without the setting nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine

from remedium.settings import get_settings

WROTE_COOKIE = "remedium_wrote"
READ_METHODS = frozenset({"GET", "HEAD"})
# Pages that write although they are read with GET (the sign-in form may create its key).
PRIMARY_PATHS = frozenset({"/signin", "/signout"})


def read_engine(request: Request) -> Engine | None:
    """The standby this request may read from, or ``None`` (use the primary)."""
    standby: Engine | None = getattr(request.app.state, "read_engine", None)
    if standby is None or not getattr(request.state, "reads_from_standby", False):
        return None
    return standby


def _recent_writer(request: Request) -> bool:
    try:
        until = float(request.cookies.get(WROTE_COOKIE, "0"))
    except ValueError:
        return False
    return until > time.time()


def install_read_routing(app: FastAPI) -> None:
    """Decide per request where its session reads; mark the clients that just wrote."""
    if getattr(app.state, "read_engine", None) is None:
        return
    settings = get_settings()
    window = settings.read_your_writes_seconds

    @app.middleware("http")
    async def _route_reads(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        reading = request.method in READ_METHODS
        request.state.reads_from_standby = (
            reading and request.url.path not in PRIMARY_PATHS and not _recent_writer(request)
        )
        response = await call_next(request)
        if not reading and response.status_code < 400:
            response.set_cookie(
                WROTE_COOKIE,
                f"{time.time() + window:.0f}",
                max_age=int(window) + 1,
                httponly=True,
                samesite="lax",
                secure=settings.secure_cookies,
            )
        return response
