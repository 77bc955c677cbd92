"""Bounded ``IN (...)`` lists and typed Core tables, for the import's set-based statements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table

IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


T = TypeVar("T")


def table_of(model: type[Any]) -> Table:
    """The Core table of a mapped class (typed, for set-based statements)."""
    table: Table = model.__table__
    return table


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chunk_pairs(
    first: Sequence[T], second: Sequence[T], size: int = IN_CHUNK
) -> Iterator[tuple[Sequence[T], Sequence[T]]]:
    """Every (slice of ``first``, slice of ``second``), for two ``IN`` lists of bounded length."""
    for left in chunks(first, size):
        for right in chunks(second, size):
            yield left, right
