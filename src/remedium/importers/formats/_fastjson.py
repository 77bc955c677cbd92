"""The fast JSON reader of the largest reports (Trivy, Grype): items built by the json module's
C decoder from a sliding window of the file, instead of event by event.

:func:`json_fast_values` gives the same values as ``_common.json_values`` (the exact, ijson
reader) for the layouts it understands, and raises :class:`GiveUp` where the two could differ
(a surrogate escape, a value too large for the window, anything malformed); :func:`fast_or_exact`
then goes on with the exact reader from the first record the fast one did not give.
"""

from __future__ import annotations

import codecs
import collections
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from json.scanner import make_scanner
from typing import IO, Annotated, Any, TypedDict, TypeVar, Union

import msgspec


class GiveUp(Exception):  # noqa: N818 - a signal between a parser's readers, not an error
    """A fast reader met a layout only the exact (event by event) reader handles."""


_Record = TypeVar("_Record")


def fast_or_exact(
    fast: Iterator[_Record], exact: Callable[[], Iterator[_Record]]
) -> Iterator[_Record]:
    """The records of ``fast``; if it gives up (:class:`GiveUp`), the records of ``exact()``
    from the first one ``fast`` did not give.

    For a fast reader that yields what the exact one does, in the same order, as far as it
    goes: the exact reader then reads the report again from the start, skips what was already
    given, and goes on (or raises the :class:`ReportError` it raises for malformed JSON).
    """
    given = 0
    try:
        for record in fast:
            yield record
            given += 1
    except GiveUp:
        yield from itertools.islice(exact(), given, None)


# -- the fast JSON reader -------------------------------------------------------------------
#
# ijson builds a report's items in C, but the json module's C decoder builds them two to three
# times faster. json_fast_values() walks the outer structure of a document itself (the objects
# and arrays on the way to the wanted values, a few per item) and hands each wanted value to the
# json decoder whole, reading the stream block by block, so memory stays flat. Where the two
# decoders could read the same bytes differently it gives up (GiveUp) rather than guess, and
# fast_or_exact() lets the ijson reader take over: it also names the fault of malformed JSON.

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# A \u escape of a UTF-16 surrogate: yajl (ijson) and the json module decode lone ones apart.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_VALUE_START = frozenset('{["-0123456789tfn')

_FAST_BLOCK = 1 << 20
_RUN_CHARS = 1 << 20  # the text a run of items is cut from
_SEPARATOR_AHEAD = 512
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
# From the end of an item (after its "}") to the first key of the next one.
_SEPARATOR = re.compile(r'[ \t\n\r]*,[ \t\n\r]*\{[ \t\n\r]*"[^"\\]{1,64}"')
_FAST_AHEAD = 256 << 10  # text kept ahead of a value, so that few are cut off by the window
_FAST_VALUE_LIMIT = 64 << 20  # a larger single value is left to the exact reader
_INT64 = 1 << 63


def _int64(digits: str) -> int:
    value = int(digits)
    if -_INT64 < value < _INT64:
        return value
    raise GiveUp("an integer beyond 64 bits (ijson refuses it)")


def _finite(digits: str) -> float:
    value = float(digits)
    if value - value == 0.0:  # inf - inf is nan
        return value
    raise GiveUp("a number beyond a double's range (ijson refuses it)")


def _constant(name: str) -> Any:
    raise GiveUp(f"{name} is not JSON (ijson refuses it)")


class _CheckedNumbers(dict[str, Any]):
    """The numbers checked so far, by spelling: a report repeats few (scores, severities), and
    a repeat then costs the decoder a lookup in C instead of a call of the check."""

    def __init__(self, check: Callable[[str], Any]) -> None:
        super().__init__()
        self._check = check

    def __missing__(self, digits: str) -> Any:
        value = self._check(digits)
        if len(self) < 4096:
            self[digits] = value
        return value


_DECODER = json.JSONDecoder(
    parse_float=_CheckedNumbers(_finite).__getitem__,
    parse_int=_CheckedNumbers(_int64).__getitem__,
    parse_constant=_constant,
)
# scan(text, index) -> (value, end): the json module's C decoder, numbers checked as above.
_SCAN = make_scanner(_DECODER)  # type: ignore[arg-type]  # a JSONDecoder is its context


def json_fast_values(
    stream: IO[bytes],
    targets: Iterable[str],
    walk: Iterable[str] = (),
    start: int | None = None,
    *,
    runs: Mapping[str, msgspec.json.Decoder[Any]] | None = None,
    keys: set[str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """What :func:`json_values` yields (``(prefix, value)`` for every value at one of
    ``targets``, in file order, as ijson names prefixes), built by the json module's C decoder.

    The objects and arrays on the way to a target are walked here; every other value is decoded
    whole and dropped, except the containers at a ``walk`` prefix, walked so that a large list
    outside the targets is decoded one item at a time. Reads from ``start`` (seeking there when
    iteration begins) or from where the stream stands. Raises :class:`GiveUp` on malformed JSON
    and on input ijson would read otherwise (NaN, numbers ijson refuses, surrogate escapes): use
    it through :func:`fast_or_exact` with a reader built on ijson.

    ``runs`` maps target prefixes of array items (``"matches.item"``) to a msgspec decoder of
    a list of them: those items are then decoded a run at a time, each holding only what the
    decoder's types declare (see "Runs of items" below). The keys of the document's top-level
    object are added to ``keys`` as they are read.
    """
    wanted = frozenset(targets)
    # Only a container at a prefix that a target continues can hold a target (ijson prefixes
    # are joined with dots, whatever the keys hold).
    inner = {target[:i] for target in wanted for i, c in enumerate(target) if c == "."}
    reader = _FastJson(stream, start, runs or {}, set() if keys is None else keys)
    return reader.values(wanted, frozenset(inner | set(walk)))


class _FastJson:
    """The reader behind :func:`json_fast_values`: a window of decoded text over the stream."""

    def __init__(
        self,
        stream: IO[bytes],
        start: int | None,
        runs: Mapping[str, msgspec.json.Decoder[Any]],
        keys: set[str],
    ) -> None:
        self._stream = stream
        self._keys = keys
        self._start = start
        self._runs = runs
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._pos = 0
        self._base = 0  # characters dropped from the window so far
        self._plain_until = -1  # where a run that failed to decode ends (read item by item)
        self._eof = False

    def values(
        self, targets: frozenset[str], containers: frozenset[str]
    ) -> Iterator[tuple[str, Any]]:
        if self._start is not None:
            self._stream.seek(self._start)
        yield from self._walk("", True, targets, containers)
        if self._next_char():
            raise GiveUp("data after the JSON document")

    def _walk(
        self, prefix: str, root: bool, targets: frozenset[str], containers: frozenset[str]
    ) -> Iterator[tuple[str, Any]]:
        """The target values inside the value at ``prefix`` (a container to walk), or itself."""
        first = self._next_char()
        if first not in _VALUE_START:
            raise GiveUp("malformed JSON")
        if prefix in targets:
            yield prefix, self._value()
            return
        if first not in "{[" or not (root or prefix in containers):
            self._value()
            return
        self._pos += 1
        end = "}" if first == "{" else "]"
        if self._next_char() == end:
            self._pos += 1
            return
        item = "item" if root else f"{prefix}.item"
        if first == "[" and item in self._runs:
            items = self._items_in_runs(item, self._runs[item])
            if item in targets:
                yield from items
            else:  # a large list passed over: its items in runs too, dropped
                collections.deque(items, maxlen=0)
            return
        while True:
            if first == "{":
                if self._next_char() != '"':
                    raise GiveUp("malformed JSON")
                key = self._value()
                if self._next_char() != ":":
                    raise GiveUp("malformed JSON")
                self._pos += 1
                if root:
                    self._keys.add(key)
                child = key if root else f"{prefix}.{key}"
            else:
                child = item
            if child in targets:
                if self._next_char() not in _VALUE_START:
                    raise GiveUp("malformed JSON")
                yield child, self._value()
            elif child in containers or f"{child}.item" in self._runs:
                yield from self._walk(child, False, targets, containers)
            else:
                if self._next_char() not in _VALUE_START:
                    raise GiveUp("malformed JSON")
                self._value()
            after = self._next_char()
            self._pos += 1
            if after == end:
                return
            if after != ",":
                raise GiveUp("malformed JSON")

    def _next_char(self) -> str:
        """The next character that is not JSON white space ("" at the end of the stream)."""
        while True:
            text, pos = self._text, self._pos
            if pos < len(text) and text[pos] not in " \t\n\r":
                return text[pos]
            pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]  # "*" always matches
            self._pos = pos
            if pos < len(text):
                return text[pos]
            if not self._read(0):
                return ""

    def _value(self) -> Any:
        """Decode the value at the current position, reading on while it is cut off."""
        if len(self._text) - self._pos < _FAST_AHEAD:
            self._read(0)
        while True:
            text, pos = self._text, self._pos
            try:
                value, end = _SCAN(text, pos)
            except (StopIteration, json.JSONDecodeError) as exc:
                # Cut off by the end of the window (the fault is at its very end, or in a
                # string that has not ended yet): read on. Anything else is malformed JSON.
                at = exc.value if isinstance(exc, StopIteration) else exc.pos
                cut = at >= len(text) - 8 or str(exc).startswith("Unterminated string")
                if not (cut and self._read(len(text) - pos)):
                    raise GiveUp("malformed JSON") from None
                continue
            except (ValueError, RecursionError):  # over 4300 digits, or nested too deep
                raise GiveUp("a value the fast reader does not read") from None
            # A number near the end of the window may go on in the next block ("1.", "1e+").
            if len(text) - end <= 2 and self._read(len(text) - pos):
                continue
            self._pos = end
            return value

    def _read(self, at_least: int) -> bool:
        """Append the next block to the window (dropping what was read); False at the end,
        the window then unchanged."""
        if self._eof:
            return False
        if at_least > _FAST_VALUE_LIMIT:
            raise GiveUp("a value too large for the fast reader")
        data = self._stream.read(max(_FAST_BLOCK, at_least))
        try:
            chunk = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise GiveUp("not UTF-8") from None
        if not data:
            self._eof = True
            return False
        kept = self._text[self._pos :]
        if _SURROGATE_ESCAPE.search(kept[-3:] + chunk[:3]) or _SURROGATE_ESCAPE.search(chunk):
            raise GiveUp("a surrogate escape")
        self._base += self._pos
        self._text, self._pos = kept + chunk, 0
        return True

    # -- runs of items ------------------------------------------------------------------
    #
    # The json module builds every item whole; a report's parser reads a few fields of it.
    # msgspec decodes into typed dicts (TypedDict) that declare only those fields and skips
    # the rest in C, checking its syntax: several times faster on real reports, whose items
    # carry descriptions, references, locations and licences nobody reads. msgspec decodes a
    # whole document, not the next value of a stream, so a run of items is cut out of the
    # window at a separator between two items, found by a plain text search: the first items
    # are read one by one, and the text between two of them (``},{"vulnerability"``, or
    # with the report's indentation) is the separator looked for. A cut at the wrong place (a
    # nested object that happens to look the same) cannot decode: a balanced run that starts
    # at an item ends after one. Whatever msgspec refuses (a cut in the wrong place, a value of
    # another type than declared, a number beyond what ijson reads) is read item by item as
    # before, by the json module, which gives up where the readers could differ.

    def _items_in_runs(
        self, item: str, decoder: msgspec.json.Decoder[Any]
    ) -> Iterator[tuple[str, Any]]:
        """The items of the array just opened (not empty), a run at a time where possible."""
        separator = ""
        while True:
            if self._next_char() not in _VALUE_START:
                raise GiveUp("malformed JSON")
            if separator and self._base + self._pos >= self._plain_until:
                run = self._run(separator, decoder)
                if run is not None:
                    for value in run:
                        yield item, value
                    self._next_char()  # the comma the separator began with
                    self._pos += 1
                    continue
            value = self._value()
            yield item, value
            if type(value) is dict:
                separator = self._separator()
            after = self._next_char()
            self._pos += 1
            if after == "]":
                return
            if after != ",":
                raise GiveUp("malformed JSON")

    def _separator(self) -> str:
        """The text from the end of an object item to the first key of the next item ("" when
        another kind of value follows)."""
        if len(self._text) - self._pos < _SEPARATOR_AHEAD:
            self._read(0)
        found = _SEPARATOR.match(self._text, self._pos)
        return "}" + found.group() if found else ""

    def _run(self, separator: str, decoder: msgspec.json.Decoder[Any]) -> list[Any] | None:
        """The items from the current one to the last one the window holds whole (at least one
        separator ahead), decoded by ``decoder``; ``None`` to read on item by item."""
        while len(self._text) - self._pos < _RUN_CHARS and self._read(0):
            pass
        text, pos = self._text, self._pos
        cut = text.rfind(separator, pos, pos + _RUN_CHARS)
        for _attempt in range(2):
            if cut <= pos:
                return None
            try:
                run: list[Any] = decoder.decode("[" + text[pos : cut + 1] + "]")
            except msgspec.MsgspecError as exc:
                # Past the end of the array (its "]" closed the run early: msgspec names the
                # byte after it), try once more before it; else read item by item to the cut.
                ended = _TRAILING.search(str(exc))
                if ended is None:
                    self._plain_until = self._base + cut + 1
                    return None
                cut = text.rfind(separator, pos, min(cut, pos + int(ended.group(1))))
                continue
            self._pos = cut + 1
            return run
        return None


def stream_contains(stream: IO[bytes], needle: bytes, block: int = 8 << 20) -> bool:
    """True when the bytes of a seekable ``stream`` contain ``needle``; rewinds to the start.

    A byte search runs at memory speed: far cheaper than a JSON pass that finds nothing.
    """
    stream.seek(0)
    keep = len(needle) - 1  # a needle cut by a block boundary starts in the last bytes kept
    tail = b""
    try:
        while chunk := stream.read(block):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-keep:] if keep else b""
        return False
    finally:
        stream.seek(0)


# -- the types of runs (see "Runs of items") ------------------------------------------------

# An integer ijson reads (it refuses any beyond 64 bits, and -2**63); msgspec refuses the rest,
# and the run is then read item by item.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63) + 1, le=2**63 - 1)]


class Opaque(TypedDict, total=False):
    """A JSON object whose content a parser never reads (``text()`` of it is ""): decoded as
    an empty dict, its content skipped."""


# A value a parser reads through ``text()``: a scalar, or an object or array read as "". The
# content of an array is decoded whole (as the json module decodes it).
Text = Union[str, Int64, float, bool, None, Opaque, list[Any]]  # noqa: UP007 - msgspec reads it at run time
