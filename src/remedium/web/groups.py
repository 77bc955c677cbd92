"""The device-group filter that applies to every page ("Device groups (3/6)").

The selection comes from ``?groups=`` (repeated or comma-separated ids; ``all`` or an empty
selection clears it) and is remembered in a cookie, so it follows the user from page to page. It
can only narrow what the user may see: it is intersected with the principal's scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COOKIE_NAME = "remedium_groups"
QUERY_PARAM = "groups"


@dataclass(frozen=True, slots=True)
class GroupOption:
    """One device group the user may pick, and whether it is picked."""

    id: int
    name: str
    selected: bool


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """The groups the user may see and the ones the page is narrowed to."""

    options: list[GroupOption]
    # None when every visible group is shown (no narrowing).
    selected_ids: frozenset[int] | None

    @property
    def selected_count(self) -> int:
        """How many groups the page shows."""
        if self.selected_ids is None:
            return len(self.options)
        return len(self.selected_ids)

    @property
    def label(self) -> str:
        """The filter button's text, as Defender words it."""
        return f"Device groups ({self.selected_count}/{len(self.options)})"

    @property
    def is_narrowed(self) -> bool:
        """True when the page shows fewer groups than the user may see."""
        return self.selected_ids is not None


def parse_group_ids(values: Iterable[str]) -> frozenset[int]:
    """Group ids from query or cookie values; anything that is not a number is ignored."""
    ids: set[int] = set()
    for value in values:
        for part in value.split(","):
            if part.strip().isdigit():
                ids.add(int(part.strip()))
    return frozenset(ids)


@dataclass(frozen=True, slots=True)
class GroupSelection:
    """The resolved filter and what the response must do to the cookie."""

    filter: GroupFilter
    # The cookie value to store, "" to delete the cookie, or None to leave it alone.
    cookie: str | None


def resolve_selection(
    visible: Sequence[tuple[int, str]],
    query_values: Sequence[str],
    cookie_value: str | None,
) -> GroupSelection:
    """Decide which of the ``visible`` ``(id, name)`` groups the page shows.

    The query wins over the cookie (and replaces it); a selection that covers every visible
    group, or none of them, means no narrowing.
    """
    visible_ids = frozenset(group_id for group_id, _ in visible)
    cookie: str | None = None
    if query_values:
        wanted = parse_group_ids(query_values) & visible_ids
        cookie = ",".join(str(i) for i in sorted(wanted)) if wanted != visible_ids else ""
    elif cookie_value:
        wanted = parse_group_ids([cookie_value]) & visible_ids
    else:
        wanted = frozenset()
    selected = None if not wanted or wanted == visible_ids else wanted
    if selected is None and cookie:
        cookie = ""
    options = [
        GroupOption(group_id, name, selected is None or group_id in selected)
        for group_id, name in sorted(visible, key=lambda g: g[1].lower())
    ]
    return GroupSelection(GroupFilter(options, selected), cookie)
