"""Limits on what a report may make the server hold: decompressed size, compression ratio, and
the size of one text field, checked while the file is read (never after it is in memory).

- :class:`FieldGuard` wraps the report stream (:func:`open_report`) and every zip member a
  parser opens. It tracks how many bytes have passed since the last byte that ends a field in the
  file's syntax: ``<``/``>`` for XML, an unescaped ``"`` for JSON, a line break for CSV and text.
  A run longer than ``REMEDIUM_MAX_FIELD_MB`` is one text field (or a gap of whitespace) that the
  parser would otherwise build whole: the read fails with a :class:`ReportError` naming the limit.
  The XML reader also counts bytes between parser events (``_xmlstream.walk``), which covers
  CDATA sections and comments.
- :func:`check_zip` refuses an archive whose members declare more than
  ``REMEDIUM_MAX_DECOMPRESSED_MB`` in all, or more than ``REMEDIUM_MAX_COMPRESSION_RATIO`` times
  the archive's size; :class:`DecompressionBudget` counts the bytes really read from members
  (declared sizes can lie) against the same two limits.

A refused report changes nothing: the import's transaction rolls back (no ``import_run`` row).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from remedium.importers.records import ReportError

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """The three settings this module checks reports against."""

    max_field_mb: float
    max_decompressed_mb: float
    max_compression_ratio: float

    def as_argument(self) -> str:
        """The limits as one command-line argument (``repr`` keeps every float exact)."""
        return ",".join(repr(float(value)) for value in self._values())

    @classmethod
    def from_argument(cls, argument: str) -> Limits:
        """The limits :meth:`as_argument` wrote."""
        field, decompressed, ratio = (float(value) for value in argument.split(","))
        return cls(field, decompressed, ratio)

    def _values(self) -> tuple[float, float, float]:
        return self.max_field_mb, self.max_decompressed_mb, self.max_compression_ratio


_handed: Limits | None = None


def current() -> Limits:
    """The limits in force: those handed to this process by :func:`hand_over` (a parser
    process, ``importers/worker.py``), else the settings'.

    A parser process is handed them on its command line, so it does not load the settings
    (pydantic and the settings model: about 0.07 s of its start, which every large import waits
    for; docs/imports.md, "How it stays fast")."""
    if _handed is not None:
        return _handed
    from remedium.settings import get_settings  # noqa: PLC0415 - not in a parser process

    settings = get_settings()
    return Limits(
        settings.max_field_mb, settings.max_decompressed_mb, settings.max_compression_ratio
    )


def hand_over(limits: Limits) -> None:
    """Use ``limits`` in this process from now on (a parser process, at its start)."""
    global _handed  # noqa: PLW0603 - set once, at the start of a parser process
    _handed = limits


_JSON_END = re.compile(rb'(?<!\\)"')
_BACKSLASH = ord("\\")
_XML_END = re.compile(rb"[<>]")
_TEXT_END = re.compile(rb"[\r\n]")


def max_field_bytes() -> int:
    """``REMEDIUM_MAX_FIELD_MB`` in bytes."""
    return int(current().max_field_mb * MB)


def field_too_large(filename: str, where: str = "") -> ReportError:
    """The error of a text field beyond the limit."""
    limit = current().max_field_mb
    return ReportError(
        f"a single text field (or run of whitespace) is larger than the limit of {limit:g} MB "
        "(REMEDIUM_MAX_FIELD_MB); the report was not imported",
        where=where,
        filename=filename,
    )


def syntax_of(head: bytes) -> str:
    """``json``, ``xml`` or ``text`` from the first bytes of a file."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return "json"
    if start == b"<":
        return "xml"
    return "text"


class FieldGuard(io.RawIOBase):
    """A read-only stream over ``raw`` that refuses runs longer than ``limit`` bytes without a
    field boundary of ``syntax`` (see the module). Seeking starts a new run."""

    def __init__(self, raw: IO[bytes], syntax: str, filename: str, limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._filename = filename
        self._limit = limit
        self._run = 0
        self._position = 0
        self._escaped = False
        self._json = syntax == "json"
        self._end = {"json": _JSON_END, "xml": _XML_END}.get(syntax, _TEXT_END)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._run = 0
        self._escaped = False
        self._position = self._raw.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self._position += size
        if size:
            self._check(data)
        return size

    def _last_end(self, data: bytes) -> int:
        if self._json:
            # The last quote not right after a backslash (``_JSON_END``, from the end): found
            # by ``rfind``, not by a regular expression over a reversed copy of the block.
            found = data.rfind(b'"')
            while found > 0 and data[found - 1] == _BACKSLASH:
                found = data.rfind(b'"', 0, found)
            return found
        return (
            max(data.rfind(b"<"), data.rfind(b">"))
            if self._end is _XML_END
            else max(data.rfind(b"\n"), data.rfind(b"\r"))
        )

    def _check(self, data: bytes) -> None:
        # A quote escaped by the previous chunk's last byte does not end a JSON string.
        skip = 1 if self._json and self._escaped and data[:1] == b'"' else 0
        self._escaped = data[-1:] == b"\\"
        first = self._end.search(data, skip)
        if first is None:
            self._run += len(data)
            if self._run > self._limit:
                raise field_too_large(self._filename, f"byte {self._position}")
            return
        if self._run + first.start() > self._limit:
            raise field_too_large(self._filename, f"byte {self._position - len(data)}")
        if len(data) > self._limit:
            # A chunk larger than the limit: look for a boundary in every half-limit window.
            step = max(1, self._limit // 2)
            for start in range(first.start(), len(data) - step, step):
                if self._end.search(data, start, start + step) is None:
                    raise field_too_large(self._filename, f"byte {self._position}")
        self._run = len(data) - 1 - self._last_end(data)


def guard(stream: IO[bytes], head: bytes, filename: str) -> IO[bytes]:
    """``stream`` behind a :class:`FieldGuard` for the syntax ``head`` shows."""
    raw = FieldGuard(stream, syntax_of(head), filename, max_field_bytes())
    return io.BufferedReader(raw, buffer_size=256 * 1024)


# --- compressed reports ------------------------------------------------------------------------


def _too_large(filename: str) -> ReportError:
    limit = current().max_decompressed_mb
    return ReportError(
        f"the archive decompresses to more than the limit of {limit:g} MB "
        "(REMEDIUM_MAX_DECOMPRESSED_MB); the report was not imported",
        filename=filename,
    )


def _too_compressed(filename: str, ratio: float) -> ReportError:
    limit = current().max_compression_ratio
    return ReportError(
        f"the archive is compressed {ratio:,.0f} to 1, beyond the limit of {limit:g} to 1 "
        "(REMEDIUM_MAX_COMPRESSION_RATIO): refused as a possible zip bomb; "
        "the report was not imported",
        filename=filename,
    )


class DecompressionBudget:
    """How many decompressed bytes an archive of ``archive_size`` bytes may still yield."""

    def __init__(self, archive_size: int, filename: str) -> None:
        settings = current()
        self.archive_size = max(archive_size, 1)
        self.filename = filename
        self.limit = min(
            int(settings.max_decompressed_mb * MB),
            int(settings.max_compression_ratio * self.archive_size),
        )
        self.used = 0

    def refusal(self, total: int) -> ReportError:
        """The error for ``total`` decompressed bytes."""
        if total > current().max_decompressed_mb * MB:
            return _too_large(self.filename)
        return _too_compressed(self.filename, total / self.archive_size)

    def check_declared(self, sizes: list[int]) -> None:
        """Refuse before reading when the members' declared sizes pass a limit."""
        total = sum(sizes)
        if total > self.limit:
            raise self.refusal(total)

    def spend(self, size: int) -> None:
        """Count ``size`` decompressed bytes; refuse past the limit."""
        self.used += size
        if self.used > self.limit:
            raise self.refusal(self.used)


class BudgetedStream(io.RawIOBase):
    """A zip member's stream that spends its bytes from a :class:`DecompressionBudget`."""

    def __init__(self, raw: IO[bytes], budget: DecompressionBudget) -> None:
        super().__init__()
        self._raw = raw
        self._budget = budget

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        size = len(data)
        self._budget.spend(size)
        buffer[:size] = data
        return size


def open_member(
    raw: IO[bytes], budget: DecompressionBudget, syntax: str, filename: str
) -> IO[bytes]:
    """A zip member's stream, counted against ``budget`` and behind a :class:`FieldGuard`."""
    counted = io.BufferedReader(BudgetedStream(raw, budget), buffer_size=256 * 1024)
    return io.BufferedReader(
        FieldGuard(counted, syntax, filename, max_field_bytes()), buffer_size=256 * 1024
    )


def archive_budget(stream: IO[bytes], declared: list[int], filename: str) -> DecompressionBudget:
    """The budget of the archive read from ``stream`` (seekable), after checking ``declared``."""
    position = stream.tell()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    budget = DecompressionBudget(size, filename)
    budget.check_declared(declared)
    return budget


def open_report(path: Path) -> IO[bytes]:
    """Open a report file for parsing, behind the field-size guard."""
    stream = path.open("rb")
    head = stream.read(64 * 1024)
    stream.seek(0)
    if head.startswith(b"PK"):
        return stream  # a zip: its parser guards each member it opens (open_member)
    return guard(stream, head, path.name)
