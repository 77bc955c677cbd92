"""Streaming reading of scanners' CSV exports, shared by the Nessus, OpenVAS and Qualys CSV parsers.

An export is recognised by its header row: a :class:`Layout` names the columns that identify it
(``markers``) and the columns a parser needs (``required``); names are compared case-insensitively.
Some exports put metadata rows before the header (Qualys), some separate values with ``;``
(Tenable.io). Rows are read one at a time with the ``csv`` module over a text wrapper of the
binary stream, so memory stays flat however large the file is; quoted cells may span lines, and
errors name the line a row starts on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from remedium.importers.formats._xmlstream import peek
from remedium.importers.limits import field_too_large, max_field_bytes
from remedium.importers.records import ReportError

# Exports hold a whole plugin output in one cell; csv's default limit (128 KiB) is too small:
# the limit is REMEDIUM_MAX_FIELD_MB (importers/limits.py).
_DELIMITERS = (",", ";")  # Tenable.io writes ';'-separated exports
_LIST_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class Layout:
    """One export layout: the columns that identify its header row and those a parser needs."""

    name: str
    markers: tuple[str, ...]
    # Each entry is a column the parser needs, given as the names it may have.
    required: tuple[tuple[str, ...], ...]

    def matches(self, columns: set[str]) -> bool:
        """True when ``columns`` (lower case) hold every marker column."""
        return all(marker.lower() in columns for marker in self.markers)

    def missing(self, columns: set[str]) -> list[str]:
        """The required columns (``a or b`` for alternatives) absent from ``columns``."""
        return [
            " or ".join(names)
            for names in self.required
            if not any(name.lower() in columns for name in names)
        ]


class Header:
    """A header row: the position of each column by its lower-case name (the first one wins)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.width = len(names)
        self.positions: dict[str, int] = {}
        for position, name in enumerate(names):
            self.positions.setdefault(name.strip().lower(), position)

    def has(self, *names: str) -> bool:
        """True when one of ``names`` is a column."""
        return any(name.lower() in self.positions for name in names)


class Row:
    """One data row of an export, read by column name."""

    __slots__ = ("_header", "_values", "line")

    def __init__(self, header: Header, values: list[str], line: int) -> None:
        self._header = header
        self._values = values
        self.line = line  # the line of the file the row starts on

    def get(self, *names: str) -> str:
        """The first non-empty value among the columns ``names`` (stripped), else ""."""
        for name in names:
            position = self._header.positions.get(name.lower())
            if position is not None:
                value = self._values[position].strip()
                if value:
                    return value
        return ""


# A CSV export cannot prove it is whole: one with a header and no row is refused (a cut file).
HEADER_ONLY = "a header and no rows: the export is empty or cut short; nothing imported"


def split_list(cell: str) -> list[str]:
    """The distinct items of a cell listing several (CVE ids, CPEs, IPs), in order.

    Exports separate them with commas, semicolons, spaces or line breaks.
    """
    return list(dict.fromkeys(item for item in _LIST_SEPARATORS.split(cell) if item))


@dataclass(frozen=True, slots=True)
class LayoutMatch:
    """Where a layout's header row was found: its delimiter and the metadata rows before it."""

    layout: Layout
    delimiter: str
    index: int  # rows before the header (metadata)


def _head_rows(text: str, delimiter: str, limit: int) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for values in csv.reader(io.StringIO(text), delimiter=delimiter):
            rows.append(values)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass  # the head is cut inside a cell: the rows read so far are what sniffing needs
    return rows


def _columns(values: Sequence[str]) -> set[str]:
    return {value.strip().lower() for value in values}


def find_layout(
    head: bytes, layouts: Sequence[Layout], *, search_rows: int = 1
) -> LayoutMatch | None:
    """The layout whose header row is among the first ``search_rows`` rows of ``head``."""
    text = head.decode("utf-8-sig", "replace")
    for delimiter in _DELIMITERS:
        for index, values in enumerate(_head_rows(text, delimiter, search_rows)):
            columns = _columns(values)
            for layout in layouts:
                if layout.matches(columns):
                    return LayoutMatch(layout, delimiter, index)
    return None


def _closest(
    head: bytes, layouts: Sequence[Layout], search_rows: int
) -> tuple[Layout, int, set[str]]:
    """The layout sharing most columns with one of the first rows: (layout, row, its columns)."""
    text = head.decode("utf-8-sig", "replace")
    best: tuple[Layout, int, set[str]] = (layouts[0], 0, set())
    most = 0
    for delimiter in _DELIMITERS:
        for index, values in enumerate(_head_rows(text, delimiter, search_rows)):
            columns = _columns(values)
            for layout in layouts:
                names = {name.lower() for name in layout.markers}
                names |= {name.lower() for choice in layout.required for name in choice}
                if len(names & columns) > most:
                    most = len(names & columns)
                    best = (layout, index, columns)
    return best


class CsvExport:
    """A CSV export opened at its header row; :meth:`rows` streams the data rows after it.

    Opening reads the metadata rows (``preamble``) and the header row, and refuses the file with
    a :class:`ReportError` when no known layout's header is found or required columns are missing.
    """

    def __init__(
        self,
        stream: IO[bytes],
        filename: str,
        layouts: Sequence[Layout],
        *,
        what: str,
        search_rows: int = 1,
    ) -> None:
        self.filename = filename
        head, replay = peek(stream)
        if not head.strip(b"\xef\xbb\xbf \t\r\n"):
            raise ReportError("the file is empty", filename=filename)
        found = find_layout(head, layouts, search_rows=search_rows)
        if found is None:
            raise self._not_recognised(head, layouts, what, search_rows)
        # One cell, even quoted across lines, is capped while it is read (importers/limits.py).
        csv.field_size_limit(max_field_bytes())
        self._text = io.TextIOWrapper(replay, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._text, delimiter=found.delimiter)
        self.layout = found.layout
        self.preamble: list[list[str]] = []
        for _ in range(found.index):
            values, _line = self._next()
            self.preamble.append(values or [])
        values, line = self._next()
        self.header = Header(values or [])
        missing = found.layout.missing(set(self.header.positions))
        if missing:
            raise ReportError(
                f"the {found.layout.name} header row lacks the column(s) {', '.join(missing)}",
                where=f"line {line}",
                filename=filename,
            )

    def _not_recognised(
        self, head: bytes, layouts: Sequence[Layout], what: str, search_rows: int
    ) -> ReportError:
        layout, index, columns = _closest(head, layouts, search_rows)
        if not columns:
            known = "; ".join(f"{lay.name}: {', '.join(lay.markers)}" for lay in layouts)
            return ReportError(
                f"not a {what}: no header row with the columns of a known layout ({known})",
                filename=self.filename,
            )
        lacking = [name for name in layout.markers if name.lower() not in columns]
        lacking += [name for name in layout.missing(columns) if name not in lacking]
        return ReportError(
            f"not a {what}: the header row lacks the {layout.name} column(s) {', '.join(lacking)}",
            where=f"row {index + 1}",
            filename=self.filename,
        )

    def _next(self) -> tuple[list[str] | None, int]:
        """The next row and the line it starts on; ``None`` at the end of the file."""
        line = self._reader.line_num + 1
        try:
            return next(self._reader), line
        except StopIteration:
            return None, line
        except (csv.Error, UnicodeDecodeError) as exc:
            if "field limit" in str(exc):
                raise field_too_large(self.filename, f"line {line}") from None
            raise ReportError(
                f"unreadable CSV ({exc})", where=f"line {line}", filename=self.filename
            ) from None

    def rows(self) -> Iterator[Row]:
        """The data rows after the header; blank rows are passed over.

        A row with another number of values than the header has columns refuses the file: its
        values cannot be told apart.
        """
        header = self.header
        given = 0
        while True:
            values, line = self._next()
            if values is None:
                if not given:
                    raise ReportError(HEADER_ONLY, where=f"line {line}", filename=self.filename)
                return
            if not any(value.strip() for value in values):
                continue
            if len(values) != header.width:
                raise ReportError(
                    f"{len(values)} values for {header.width} columns",
                    where=f"line {line}",
                    filename=self.filename,
                )
            given += 1
            yield Row(header, values, line)
