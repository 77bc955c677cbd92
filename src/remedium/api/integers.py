"""No integer input outside 32 bits reaches a route: such requests answer 422 before routing.

Every id, offset and count the API takes is stored or compared as an integer column (SQLite's
64-bit INTEGER, PostgreSQL's 32-bit INTEGER); Python's ``int`` has no bound, so
``?offset=9223372036854775808`` or ``/devices/99999999999999999999`` reached the database and
failed there (500). This ASGI middleware checks, for every request:

- each query parameter and each path segment that is a whole number (``-12``, ``+7``, ``42``);
- each number in a JSON body (``Content-Type: application/json``, up to :data:`MAX_CHECKED_BODY`);
- each value of an ``application/x-www-form-urlencoded`` body.

A whole number outside ``[-2**31, 2**31 - 1]`` answers FastAPI's validation error (422, with the
offending location), or on the Defender-compatible API (``/api/`` outside ``/api/v1``) Microsoft's
error body (400, ``BadRequest``). Negative values where they mean nothing (offsets, limits) are
refused by each route's own ``ge=`` bounds.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Ids and counts are INTEGER columns (32 bits on PostgreSQL); none of them nears 2**31.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# Larger JSON bodies are uploads (reports), read by streaming parsers that bound what they keep.
MAX_CHECKED_BODY = 4 * 1024 * 1024
_WHOLE = re.compile(r"\s*[+-]?\d+\s*")


class OutOfRangeError(ValueError):
    """A whole number outside 32 bits, at ``location``."""

    def __init__(self, location: list[str | int], text: str) -> None:
        super().__init__(text)
        self.location = location
        self.text = text


def out_of_range(text: str) -> bool:
    """True when ``text`` is a whole number that does not fit in a signed 32-bit integer."""
    if not _WHOLE.fullmatch(text):
        return False
    digits = text.strip().lstrip("+-").lstrip("0")
    if len(digits) > 19:
        return True
    return not INT_MIN <= int(text) <= INT_MAX


def _check_pairs(pairs: list[tuple[str, str]], where: str) -> None:
    for name, value in pairs:
        if out_of_range(value):
            raise OutOfRangeError([where, name], value)


def _check_json(body: bytes) -> None:
    def parse_int(text: str) -> int:
        if out_of_range(text):
            raise OutOfRangeError(["body"], text)
        return int(text)

    try:
        json.loads(body, parse_int=parse_int)
    except OutOfRangeError:
        raise
    except (ValueError, RecursionError):
        return  # not JSON: the route answers its own error


def _refusal(scope: Scope, error: OutOfRangeError) -> JSONResponse:
    message = f"Input should be between {INT_MIN} and {INT_MAX}"
    path: str = scope["path"]
    if path.startswith("/api/") and not path.startswith("/api/v1/"):
        name = error.location[-1]
        return JSONResponse(
            {
                "error": {
                    "code": "BadRequest",
                    "message": f"The value of {name} is out of range: {message.lower()}.",
                    "target": str(uuid.uuid4()),
                }
            },
            status_code=400,
        )
    detail: dict[str, Any] = {
        "type": "int_out_of_range",
        "loc": error.location,
        "msg": message,
        "input": error.text[:40],
    }
    return JSONResponse({"detail": [detail]}, status_code=422)


class IntegerBoundsMiddleware:
    """Refuses requests that carry a whole number outside 32 bits (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            query = scope.get("query_string", b"").decode("latin-1")
            _check_pairs(parse_qsl(query, keep_blank_values=True), "query")
            segments = [unquote(part) for part in scope["path"].split("/") if part]
            _check_pairs([(str(i), part) for i, part in enumerate(segments)], "path")
        except OutOfRangeError as error:
            await _refusal(scope, error)(scope, receive, send)
            return
        content_type = ""
        length = 0
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value.decode("latin-1").lower()
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        json_body = content_type.startswith("application/json")
        form_body = content_type.startswith("application/x-www-form-urlencoded")
        if not (json_body or form_body) or length > MAX_CHECKED_BODY:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False) or len(body) > MAX_CHECKED_BODY:
                break
        try:
            if len(body) <= MAX_CHECKED_BODY:
                if json_body:
                    _check_json(body)
                else:
                    _check_pairs(parse_qsl(body.decode("latin-1"), keep_blank_values=True), "body")
        except OutOfRangeError as error:
            await _refusal(scope, error)(scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
