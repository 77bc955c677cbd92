"""A page of results, the shape every list query and list endpoint returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 25


class Page(BaseModel, Generic[T]):
    """One page of a longer list: ``items`` from ``offset``, out of ``total`` matching rows."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    total: int
    offset: int
    limit: int


def clamp_limit(limit: int) -> int:
    """Keep a page size between 1 and :data:`MAX_LIMIT` (queries are not an unbounded dump)."""
    return max(1, min(int(limit), MAX_LIMIT))


def make_page(items: Sequence[T], total: int, offset: int, limit: int) -> Page[T]:
    """Build a :class:`Page` from already-fetched rows."""
    return Page[T](items=list(items), total=total, offset=offset, limit=limit)
