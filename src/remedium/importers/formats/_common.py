"""Helpers shared by the JSON and XML scanner parsers: streaming JSON, severities, package URLs.

The JSON reader is built on ``ijson`` so a parser holds one record of the report at a time, never
the whole document: memory stays flat however large the file is. The largest reports (Trivy,
Grype) are read by ``_fastjson.json_fast_values`` first, which builds their items with the json
module's faster decoder and hands over to the ijson reader where the two could differ.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any, TypeVar, cast
from urllib.parse import unquote

import ijson

from remedium.importers.records import ReportError

_SEVERITIES = {
    "critical": "Critical",
    "high": "High",
    "important": "High",  # Red Hat's word for High
    "medium": "Medium",
    "moderate": "Medium",
    "low": "Low",
    # Scanners rate some weaknesses below Low; remedium's scale (Microsoft's) stops at Low.
    "negligible": "Low",
    "info": "Low",
    "informational": "Low",
}


# A source's own word for a vulnerability it cannot rate, kept as written (intel.models.UNRATED).
UNRATED = "Unknown"


def severity(value: object) -> str:
    """A source's severity spelled the remedium way (Low/Medium/High/Critical), or "" if unknown."""
    if not isinstance(value, str):
        return ""
    return _SEVERITIES.get(value.strip().lower(), "")


# severity() of the spellings scanners actually write ("HIGH", "High", "high", "UNKNOWN"), for
# the per-finding loops: one dict lookup of the raw string instead of strip(), lower() and a
# call. Built by severity() itself, so a hit gives what severity() gives; a miss (" high ",
# "Moderate?") must still go through severity().
SEVERITY_SPELLINGS: dict[str, str] = {
    spelling: severity(spelling)
    for word in (*_SEVERITIES, "unknown", "none", "")
    for spelling in (word, word.upper(), word.title())
}


def severity_from_score(score: float | None) -> str:
    """The CVSS v3 qualitative rating of a base score (used when a source gives only a score)."""
    if score is None or score <= 0:
        return ""
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    return "Low"


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime; ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Go writes nanoseconds; Python reads at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def text(value: object) -> str:
    """A JSON scalar as a stripped string ("" for null, objects and arrays)."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def as_dict(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (odd files must not crash parsers)."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """``value`` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def purl_vendor_product(purl: str) -> tuple[str, str, str]:
    """(vendor, product, version) of a package URL: vendor is the namespace, else the ecosystem.

    ``pkg:deb/debian/openssl@1.1`` gives ("debian", "openssl", "1.1"); ``pkg:npm/lodash@4`` gives
    ("npm", "lodash", "4"); ``pkg:maven/org.apache/log4j@2`` gives ("org.apache", "log4j", "2").
    """
    if not purl.startswith("pkg:"):
        return "", "", ""
    body = purl[4:].split("#", 1)[0].split("?", 1)[0]
    body, _, version = body.partition("@")
    parts = [unquote(p) for p in body.strip("/").split("/") if p]
    if len(parts) < 2:
        return "", "", ""
    ecosystem, name = parts[0].lower(), parts[-1]
    namespace = "/".join(parts[1:-1])
    return (namespace or ecosystem).lower(), name, unquote(version)


@lru_cache(maxsize=65536)
def purl_vendor(purl: str) -> str:
    """The vendor of :func:`purl_vendor_product`, cached: a package's purl repeats on every
    finding of the package, and parsing it costs more than the rest of a finding."""
    return purl_vendor_product(purl)[0]


def ecosystem_vendor(ecosystem: str) -> str:
    """The vendor remedium records for a package ecosystem name ("PyPI" -> "pypi")."""
    return ecosystem.strip().lower().split(":", 1)[0]


# -- streaming JSON -------------------------------------------------------------------------


def json_values(
    stream: IO[bytes], targets: Iterable[str], filename: str, markers: Iterable[str] = ()
) -> Iterator[tuple[str, Any]]:
    """Yield ``(prefix, value)`` for every value at one of the ``targets`` prefixes, in file order.

    Prefixes are ijson's (``Results.item.Vulnerabilities.item``). Only the target values are
    built, one at a time, so memory stays flat. Malformed JSON raises :class:`ReportError`
    naming the JSON path where reading stopped. A container opening at one of the ``markers``
    prefixes yields ``(prefix, None)``, so a parser can tell an empty list from a missing one.
    """
    wanted = frozenset(targets)
    marked = frozenset(markers)
    seen_any = False
    builder: ijson.common.ObjectBuilder | None = None
    building = ""
    depth = 0
    last_prefix = ""
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            last_prefix = prefix
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
            if prefix in marked and event in ("start_map", "start_array"):
                yield prefix, None
            if prefix in wanted and event != "map_key":
                if event in ("start_map", "start_array"):
                    builder = ijson.common.ObjectBuilder()
                    builder.event(event, value)
                    building, depth = prefix, 1
                elif event not in ("end_map", "end_array"):
                    yield prefix, value
    except ijson.common.JSONError as exc:
        if not seen_any:
            raise ReportError("the file is empty or not JSON", filename=filename) from None
        where = last_prefix.replace(".item", "[]") or "top level"
        raise ReportError(f"malformed JSON ({exc})", where=where, filename=filename) from None


def json_items(stream: IO[bytes], prefix: str, filename: str) -> Iterator[Any]:
    """Every value at ``prefix``, built in C (about three times faster than :func:`json_values`).

    For the one large list of a report whose items need no context from around them.
    """
    index = -1
    try:
        for index, value in enumerate(ijson.items(stream, prefix, use_float=True)):  # noqa: B007
            yield value
    except ijson.common.JSONError as exc:
        where = f"{prefix.replace('.item', '[]')} after item {index}" if index >= 0 else prefix
        raise ReportError(f"malformed JSON ({exc})", where=where, filename=filename) from None


_Built = TypeVar("_Built")


def record_builder(record_type: type[_Built]) -> type[_Built]:
    """A faster constructor of a frozen, slotted record dataclass, called exactly like it.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
    costs about three times a plain attribute store: for a record built a million times per
    report, more than the rest of the parser's work on it. The builder is an unfrozen dataclass
    with the same fields, defaults and slots (so the same memory layout), whose instances take
    ``record_type`` as their class once built: the result *is* a ``record_type``, equal to and
    pickled like one built the usual way. A record type this cannot mirror (not frozen, not
    slotted, with a ``__post_init__``, init-less or keyword-only fields) is returned as it is.
    """
    params = getattr(record_type, "__dataclass_params__", None)
    if (
        params is None
        or not params.frozen
        or "__slots__" not in vars(record_type)
        or hasattr(record_type, "__post_init__")
    ):
        return record_type
    fields: list[tuple[str, Any, Any]] = []
    for field in dataclasses.fields(record_type):  # type: ignore[arg-type]
        if not field.init or field.kw_only is True:
            return record_type
        if field.default is not dataclasses.MISSING:
            spec = dataclasses.field(default=field.default)
        elif field.default_factory is not dataclasses.MISSING:
            spec = dataclasses.field(default_factory=field.default_factory)
        else:
            spec = dataclasses.field()
        fields.append((field.name, field.type, spec))

    def become_record(self: object) -> None:
        self.__class__ = record_type  # same slots, so Python allows the switch

    builder = dataclasses.make_dataclass(
        f"_{record_type.__name__}Builder",
        fields,
        slots=True,
        weakref_slot="__weakref__" in vars(record_type)["__slots__"],
        eq=False,
        namespace={"__post_init__": become_record},
    )
    return cast(type[_Built], builder)


def json_first(stream: IO[bytes], prefix: str, filename: str) -> Any:
    """The first value at ``prefix`` (read in C without building anything else), or ``None``."""
    try:
        for value in ijson.items(stream, prefix, use_float=True):
            return value
    except ijson.common.JSONError as exc:
        raise ReportError(f"malformed JSON ({exc})", filename=filename) from None
    return None


def json_head_keys(head: bytes) -> set[str]:
    """Top-level keys seen in the first bytes of a JSON document (for sniffing; may be partial)."""
    keys: set[str] = set()
    try:
        for prefix, event, value in ijson.parse(head):
            if prefix == "" and event == "map_key":
                keys.add(str(value))
    except ijson.common.JSONError:
        pass  # the head is cut mid-document: the keys read so far are what sniffing needs
    return keys


def json_prefix_keys(head: bytes, prefix: str) -> set[str]:
    """Keys of the objects at ``prefix`` seen in the first bytes of a JSON document."""
    keys: set[str] = set()
    try:
        for at, event, value in ijson.parse(head):
            if at == prefix and event == "map_key":
                keys.add(str(value))
    except ijson.common.JSONError:
        pass  # a cut head: what was read is enough to decide
    return keys


def looks_like_json(head: bytes) -> bool:
    """True when the first non-blank byte opens a JSON object or array."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped[:1] in (b"{", b"[")


class _Replay:
    """A byte stream that gives back the bytes already peeked at before reading on."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def peek_first_byte(stream: IO[bytes]) -> tuple[bytes, IO[bytes]]:
    """The first significant byte of ``stream`` and a stream that still starts at the beginning.

    Works on streams that cannot seek (uploads piped through), unlike ``seek(0)``.
    """
    head = stream.read(4096)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    replay: IO[bytes] = _Replay(head, stream)  # type: ignore[assignment]
    return first, replay


def seekable(stream: IO[bytes]) -> IO[bytes]:
    """``stream`` itself when it can seek, else a spooled copy (on disk past 8 MiB) that can."""
    try:
        if stream.seekable():
            return stream
    except AttributeError:
        pass
    copy = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
    shutil.copyfileobj(stream, copy)
    copy.seek(0)
    return copy


_FACTS_REMEMBERED = 50_000  # vulnerability facts remembered per report to skip repeats
_ABSENT = object()


class FactsFilter:
    """Tells whether a vulnerability's facts repeat the last facts given for it.

    A report repeats a vulnerability's facts on every package and workload it affects; writing
    the same facts again changes nothing, so only the first of a run of equal ones is kept.
    Parsers pass the raw fields the facts are built from, so a repeat costs no record.
    Bounded: past the limit it forgets, which only costs a repeat.
    """

    def __init__(self) -> None:
        self.last: dict[str, object] = {}

    def new(self, vulnerability_id: str, raw: object) -> bool:
        """True when ``raw`` differs from the last facts kept for ``vulnerability_id``."""
        last = self.last
        # One lookup, not ``in`` then ``[]``: this runs per finding. The sentinel equals nothing.
        if last.get(vulnerability_id, _ABSENT) == raw:
            return False
        if len(last) >= _FACTS_REMEMBERED:
            last.clear()
        last[vulnerability_id] = raw
        return True
