"""The device-group filter: what the query and the cookie select, never beyond the scope."""

from __future__ import annotations

from remedium.web.groups import parse_group_ids, resolve_selection

VISIBLE = [(1, "Servers"), (2, "workstations"), (3, "Finance")]


def test_query_selects_groups_and_is_remembered_in_the_cookie() -> None:
    selection = resolve_selection(VISIBLE, ["3", "1"], None)
    assert selection.filter.selected_ids == frozenset({1, 3})
    assert selection.filter.label == "Device groups (2/3)"
    assert selection.cookie == "1,3"
    # Options are listed by name, case-insensitively, with their check state.
    assert [(o.name, o.selected) for o in selection.filter.options] == [
        ("Finance", True),
        ("Servers", True),
        ("workstations", False),
    ]


def test_cookie_applies_when_the_query_is_silent() -> None:
    selection = resolve_selection(VISIBLE, [], "2")
    assert selection.filter.selected_ids == frozenset({2})
    assert selection.cookie is None


def test_all_none_or_everything_clears_the_filter() -> None:
    for query in (["all"], [""], ["1,2,3"]):
        selection = resolve_selection(VISIBLE, query, "2")
        assert selection.filter.selected_ids is None
        assert selection.filter.label == "Device groups (3/3)"
        assert selection.cookie == ""


def test_groups_outside_the_visible_ones_are_ignored() -> None:
    selection = resolve_selection(VISIBLE[:1], ["2", "3"], None)
    assert selection.filter.selected_ids is None
    assert selection.filter.label == "Device groups (1/1)"
    assert parse_group_ids(["1, 2", "x", "-4"]) == frozenset({1, 2})
