"""Streaming JSON reading shared by the Wazuh parser and the intelligence feeds.

``ijson`` reads events; only the objects the caller asks for (by their path) are built, one at a
time, so memory stays flat whatever the size of the surrounding array.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson
from ijson.common import ObjectBuilder

from remedium.importers.records import ReportError


def objects(
    stream: IO[bytes], filename: str, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, value)`` for every value whose ijson path (``a.b.item``) ``wanted`` accepts.

    Scalars are yielded too. Values nested inside a wanted value are not reported separately.
    Broken JSON raises :class:`ReportError` naming the path reached.
    """
    builder: ObjectBuilder | None = None
    building = ""
    depth = 0
    prefix = ""
    seen_any = False
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            seen_any = True
            if builder is not None:
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                if depth == 0:
                    yield building, builder.value
                    builder = None
                continue
            if event in ("map_key", "end_map", "end_array") or not wanted(prefix):
                continue
            if event in ("start_map", "start_array"):
                builder, building, depth = ObjectBuilder(), prefix, 1
                builder.event(event, value)
            else:
                yield prefix, value
    except ijson.JSONError as exc:
        reason = _reason(exc)
        if not seen_any:
            raise ReportError(f"empty or not JSON ({reason})", filename=filename) from None
        raise ReportError(
            f"broken JSON ({reason})", where=f"at {prefix or 'top level'}", filename=filename
        ) from None


def _reason(exc: Exception) -> str:
    # yajl's messages span lines with a caret drawing; the first line is the reason.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", first)
