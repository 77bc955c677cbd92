"""No integer input outside 32 bits reaches a route: such requests answer 422 before the route runs.

Every id, offset and count the API takes is stored or compared as an integer column (SQLite's
64-bit INTEGER, PostgreSQL's 32-bit INTEGER); Python's ``int`` has no bound, so
``?offset=9223372036854775808`` or ``/devices/99999999999999999999`` reached the database and
failed there (500). This ASGI middleware finds the route a request is for and checks the inputs
that route declares as integers (``int``, ``int | None``, ``list[int]``, in its own signature or
its dependencies'):

- its integer query parameters, path parameters and form fields;
- each number in a JSON body (``Content-Type: application/json``, up to :data:`MAX_CHECKED_BODY`),
  for routes that take a body.

Text is never checked: a search for ``12345678901`` or a Defender machine id made of digits
reaches its route. A whole number outside ``[-2**31, 2**31 - 1]`` answers FastAPI's validation
error (422, with the offending location), or on the Defender-compatible API (``/api/`` outside
``/api/v1``) Microsoft's error body (400, ``BadRequest``). Negative values where they mean nothing
(offsets, limits) are refused by each route's own ``ge=`` bounds.
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remedium.common.int32 import INT_MAX, INT_MIN, out_of_range

# Larger JSON bodies are uploads (reports), read by streaming parsers that bound what they keep.
MAX_CHECKED_BODY = 4 * 1024 * 1024


class OutOfRangeError(ValueError):
    """A whole number outside 32 bits, at ``location``."""

    def __init__(self, location: list[str | int], text: str) -> None:
        super().__init__(text)
        self.location = location
        self.text = text


def _check_pairs(pairs: list[tuple[str, str]], where: str) -> None:
    for name, value in pairs:
        if out_of_range(value):
            raise OutOfRangeError([where, name], value)


def _is_int(annotation: Any) -> bool:
    """``int``, or a union, ``Annotated`` or list of it."""
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_int(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return any(_is_int(arg) for arg in typing.get_args(annotation))
    return False


def _int_names(fields: Iterable[Any]) -> frozenset[str]:
    return frozenset(f.alias for f in fields if _is_int(f.field_info.annotation))


@dataclass(frozen=True)
class _Declared:
    """The integer inputs one route declares, with the route to match requests against."""

    route: Any
    query: frozenset[str]
    path: frozenset[str]
    form: frozenset[str]
    json_body: bool


def _declared(route: Any) -> _Declared:
    query: set[str] = set()
    path: set[str] = set()
    form: set[str] = set()
    json_body = False
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        stack.extend(dependant.dependencies)
        query |= _int_names(dependant.query_params)
        path |= _int_names(dependant.path_params)
        form |= _int_names(dependant.body_params)
        json_body = json_body or bool(dependant.body_params)
    return _Declared(route, frozenset(query), frozenset(path), frozenset(form), json_body)


def _flatten(routes: Iterable[Any]) -> Iterator[Any]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's included router: its routes with their prefixes
            yield from _flatten(contexts())
        elif getattr(route, "dependant", None) is not None:
            yield route


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


ROUTE_CACHE_ENTRIES = 4096


class IntegerBoundsMiddleware:
    """Refuses requests whose declared integer inputs fall outside 32 bits (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[_Declared] | None = None
        # (method, root path, path) -> the route and its path parameters: walking every route
        # for every request cost about 4 % of a page view under load. Bounded: paths carry ids.
        self._found: dict[tuple[str, str, str], tuple[_Declared, dict[str, Any]] | None] = {}

    def _route_for(self, scope: Scope) -> tuple[_Declared, dict[str, Any]] | None:
        key = (scope.get("method", ""), scope.get("root_path", ""), scope.get("path", ""))
        if key in self._found:
            return self._found[key]
        if self._routes is None:  # routes are all included before the first request
            self._routes = [_declared(route) for route in _flatten(scope["app"].routes)]
        found = None
        for declared in self._routes:
            match, child = declared.route.matches(scope)
            if match is Match.FULL:
                found = declared, child.get("path_params", {})
                break
        if len(self._found) >= ROUTE_CACHE_ENTRIES:
            self._found.clear()
        self._found[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "app" not in scope:
            await self.app(scope, receive, send)
            return
        found = self._route_for(scope)
        if found is None:  # the router answers 404 or 405
            await self.app(scope, receive, send)
            return
        declared, path_params = found
        try:
            query = scope.get("query_string", b"").decode("latin-1")
            pairs = parse_qsl(query, keep_blank_values=True)
            _check_pairs([p for p in pairs if p[0] in declared.query], "query")
            path = [(k, str(v)) for k, v in path_params.items() if k in declared.path]
            _check_pairs(path, "path")
        except OutOfRangeError as error:
            await _refusal(scope, error)(scope, receive, send)
            return
        await self._check_body(declared, scope, receive, send)

    async def _check_body(
        self, declared: _Declared, scope: Scope, receive: Receive, send: Send
    ) -> None:
        content_type = ""
        length = 0
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value.decode("latin-1").lower()
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        json_body = declared.json_body and content_type.startswith("application/json")
        form_body = bool(declared.form) and content_type.startswith(
            "application/x-www-form-urlencoded"
        )
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
                    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
                    _check_pairs([p for p in pairs if p[0] in declared.form], "body")
        except OutOfRangeError as error:
            await _refusal(scope, error)(scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
