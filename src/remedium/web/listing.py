"""Reading a list page's sort, direction and page number from the query string."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class ListState:
    """Where a list page stands: sort key, direction, 1-based page number and SQL offset."""

    sort: str
    descending: bool
    number: int
    offset: int
    limit: int = PAGE_SIZE


def list_state(
    sort: str | None,
    direction: str | None,
    page: str | None,
    *,
    allowed: Sequence[str],
    default_sort: str,
    default_descending: bool = True,
    limit: int = PAGE_SIZE,
) -> ListState:
    """A list state from raw query values; anything unknown falls back to the defaults.

    Pages are forgiving where the API is strict: a hand-edited URL shows the default list
    instead of an error.
    """
    key = sort if sort is not None and sort in allowed else default_sort
    if direction in ("asc", "desc"):
        descending = direction == "desc"
    else:
        descending = default_descending if key == default_sort else key not in _TEXT_SORTS
    number = int(page) if page and page.isdigit() and int(page) > 0 else 1
    return ListState(key, descending, number, (number - 1) * limit, limit)


# Text columns read best A to Z when first clicked; numbers read best largest first.
_TEXT_SORTS = frozenset(
    {"name", "related_component", "category", "remediation_type", "id", "vendor", "os_platform"}
)


def clean(value: str | None) -> str | None:
    """A query value with blanks treated as absent."""
    if value is None:
        return None
    value = value.strip()
    return value or None
