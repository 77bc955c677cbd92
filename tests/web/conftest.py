"""Fixtures of the page tests: the "pages" scenario of ``tests.support.orgs``."""

from __future__ import annotations

import pytest

from tests.support.orgs.pages import Org


@pytest.fixture
def org(scenario: object) -> Org:
    """The "pages" organisation (the test is marked ``@pytest.mark.scenario("pages")``): built
    once, committed, copied for the test; the history shows exposure falling over time."""
    assert isinstance(scenario, Org), "mark the test @pytest.mark.scenario('pages')"
    return scenario
