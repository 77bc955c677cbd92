"""Replies encoded straight to JSON bytes, for the Defender collections that run to megabytes.

For a route that returns a dict, FastAPI validates it against the route's response model
(``dict[str, Any]``) and has pydantic write the JSON: for a page of 10,000 machines (5.5 MB)
that took longer than reading the page. These replies are already plain dicts of JSON types, so
they are written once by orjson, which gives the same bytes as pydantic's ``dump_json``
(compact separators, UTF-8 unescaped, the same spelling of floats, ``null`` for NaN and
infinities; tests/defender/test_fast_collections.py checks it) several times faster.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(body: dict[str, Any]) -> Response:
    """``body`` as an ``application/json`` reply, encoded once."""
    return Response(orjson.dumps(body), media_type="application/json")
