"""The pure recommendation rules: version order, names, remediation types and tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from remedium.recommendations import engine

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("9.0", "10.0"),
        ("120.0.6099.9", "120.0.6099.71"),
        ("1.2", "1.2.1"),
        ("1.0rc1", "1.0"),
        ("1.0-beta.2", "1.0"),
        ("1.0alpha", "1.0beta"),
        ("1.0a1", "1.0b1"),
        ("1.1.1", "1.1.1a"),
        ("1.1.1a", "1.1.1b"),
        ("3.0.0-dev", "3.0.0-rc.1"),
        ("2:1.2", "2:1.10"),
    ],
)
def test_versions_order_like_vendors_number_them(older: str, newer: str) -> None:
    assert engine.compare_versions(older, newer) == -1
    assert engine.compare_versions(newer, older) == 1


def test_trailing_zeros_do_not_make_a_version_newer() -> None:
    assert engine.compare_versions("1.2", "1.2.0") == 0
    assert engine.compare_versions("1.2.0.0", "1.2") == 0


def test_recommended_version_is_the_highest_fixed_version() -> None:
    assert engine.highest_version(["120.0.6099.9", None, "120.0.6099.71", ""]) == "120.0.6099.71"
    assert engine.highest_version([None, ""]) == ""


def _facts(**changes: object) -> engine.SoftwareFacts:
    values: dict[str, object] = {
        "display_name": "Chrome",
        "display_vendor": "Google",
        "end_of_support_on": None,
        "has_eos_version_installed": False,
        "has_unpatchable_cve": False,
        "fixed_versions": ("120.0.6099.71", "119.0.1"),
        "internet_facing_exposed": False,
    }
    values.update(changes)
    return engine.SoftwareFacts(**values)  # type: ignore[arg-type]


def test_update_names_the_product_and_the_version_that_fixes_everything() -> None:
    advice = engine.software_advice(_facts(), AS_OF)
    assert advice.name == "Update Google Chrome to version 120.0.6099.71"
    assert advice.remediation_type == "Update"
    assert advice.tags == ()


def test_end_of_support_means_upgrade() -> None:
    advice = engine.software_advice(
        _facts(end_of_support_on=datetime(2025, 1, 1, tzinfo=UTC)), AS_OF
    )
    assert advice.name == "Upgrade Google Chrome to a supported version"
    assert advice.remediation_type == "Upgrade"
    assert "EOS software" in advice.tags
    upcoming = engine.software_advice(
        _facts(end_of_support_on=datetime(2027, 1, 1, tzinfo=UTC)), AS_OF
    )
    assert upcoming.remediation_type == "Update"
    assert upcoming.tags == ("Upcoming EOS software",)
    versions = engine.software_advice(_facts(has_eos_version_installed=True), AS_OF)
    assert versions.remediation_type == "Upgrade"
    assert versions.tags == ("EOS versions",)


def test_no_published_fix_is_attention_required_not_uninstall() -> None:
    advice = engine.software_advice(
        _facts(has_unpatchable_cve=True, fixed_versions=(None,), internet_facing_exposed=True),
        AS_OF,
    )
    assert advice.name == "No security update available for Google Chrome"
    assert advice.remediation_type == "AttentionRequired"
    assert advice.recommended_version == ""
    assert advice.tags == ("No security update", "internetFacing")


def test_some_fixes_published_means_update_to_them() -> None:
    advice = engine.software_advice(
        _facts(has_unpatchable_cve=True, fixed_versions=("120.0.6099.71", None)), AS_OF
    )
    assert advice.name == "Update Google Chrome to version 120.0.6099.71"
    assert advice.remediation_type == "Update"
    assert advice.tags == ("No security update",)


def test_vendor_is_not_repeated_when_the_product_name_has_it() -> None:
    advice = engine.software_advice(
        _facts(display_name="Microsoft Edge", display_vendor="Microsoft"), AS_OF
    )
    assert advice.name.startswith("Update Microsoft Edge to version")


def test_recommendation_ids_follow_defender() -> None:
    assert engine.software_recommendation_id("google-_-chrome") == "va-_-google-_-chrome"
    assert engine.configuration_recommendation_id("scid-2000") == "sca-_-scid-2000"
