"""No request body larger than ``REMEDIUM_MAX_UPLOAD_MB``: 413, with the limit in the message.

A declared ``Content-Length`` above the limit is refused before any byte is read; a body sent
without one (chunked) is counted as it arrives and refused when it passes the limit. API calls get
``{"detail": ...}``; pages (the import form) a short HTML page with the same sentence.
"""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remedium.settings import get_settings

MB = 1024 * 1024


def too_large_message() -> str:
    """The sentence every refusal says."""
    limit = get_settings().max_upload_mb
    return (
        f"The upload is larger than the limit of {limit:g} MB (REMEDIUM_MAX_UPLOAD_MB); "
        "nothing was imported."
    )


class UploadTooLarge(Exception):  # noqa: N818 - named for what happened
    """Raised from ``receive`` when a chunked body passes the limit."""


def _refusal(scope: Scope) -> Response:
    path: str = scope["path"]
    accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
    if path.startswith("/api/") or ("text/html" not in accept and "json" in accept):
        return JSONResponse({"detail": too_large_message()}, status_code=413)
    body = (
        "<!doctype html><title>Upload too large · remedium</title>"
        f'<main><h1>Upload too large</h1><p role="alert">{html.escape(too_large_message())}</p>'
        '<p><a href="/imports">Back to imports</a></p></main>'
    )
    return HTMLResponse(body, status_code=413)


class UploadLimitMiddleware:
    """Refuses request bodies above ``REMEDIUM_MAX_UPLOAD_MB`` (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = int(get_settings().max_upload_mb * MB)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _refusal(scope)(scope, receive, send)
                return
        received = 0
        exceeded = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise UploadTooLarge
            return message

        async def watch(message: Message) -> None:
            # Whatever the app answers once the body was cut off (a parse error, say), the
            # client gets the 413 below instead.
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, counted, watch)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await _refusal(scope)(scope, receive, send)
