"""Recommendation rules as pure functions over plain data (docs/scoring.md).

The recompute (``recommendations.service``) works set-based in SQL; what SQL cannot do well, it
asks this module about: comparing version strings, and turning a product's facts into the
recommendation's name, remediation type and tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

SOFTWARE_PREFIX = "va-_-"
CONFIGURATION_PREFIX = "sca-_-"

# Pre-release words rank below the release they lead to ("1.0rc1" < "1.0"), in this order.
_PRE_RELEASE = {"dev": -5, "alpha": -4, "a": -4, "beta": -3, "b": -3, "pre": -2, "rc": -1}
_TOKEN = re.compile(r"\d+|[a-z]+")
# Defender's severities, least severe first; a severity's rank is its place here (0: none).
SEVERITY_RANK = {"Low": 1, "Medium": 2, "High": 3, "Critical": 4}


def software_recommendation_id(product_key: str) -> str:
    """Defender's id of the software recommendation for a product: ``va-_-google-_-chrome``."""
    return SOFTWARE_PREFIX + product_key


def configuration_recommendation_id(configuration_id: str) -> str:
    """Defender's id of the configuration recommendation for a check: ``sca-_-scid-2000``."""
    return CONFIGURATION_PREFIX + configuration_id


@lru_cache(maxsize=65536)
def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders version strings the way vendors number releases.

    Numeric segments compare as numbers (``10`` > ``9``); a pre-release word (``rc``, ``beta``,
    ``alpha``, ``dev``) ranks below the release it precedes; other letters rank above numbers of
    the same position (``1.0a`` sorting after ``1.0`` is how OpenSSL-style letters behave).
    Missing trailing segments count as zero, so ``1.2`` equals ``1.2.0``.
    """
    parts: list[tuple[int, int | str]] = []
    tokens = _TOKEN.findall(version.lower())
    for index, token in enumerate(tokens):
        followed_by_number = index + 1 < len(tokens) and tokens[index + 1].isdigit()
        if token.isdigit():
            parts.append((1, int(token)))
        elif token in _PRE_RELEASE and (len(token) > 1 or followed_by_number):
            # "1.0a1" is an alpha, but OpenSSL's "1.1.1a" is a later patch letter.
            parts.append((0, _PRE_RELEASE[token]))
        else:
            parts.append((2, token))
    # Drop trailing zeros so that 1.2 == 1.2.0 (a pre-release word is not a zero).
    while parts and parts[-1] == (1, 0):
        parts.pop()
    return tuple(parts)


def _padded(key: tuple[tuple[int, int | str], ...], length: int) -> list[tuple[int, int | str]]:
    # A missing segment behaves like ".0": below letters, above pre-release words.
    return list(key) + [(1, 0)] * (length - len(key))


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` is older than, the same as, or newer than ``right``."""
    a, b = version_key(left), version_key(right)
    length = max(len(a), len(b))
    pa, pb = _padded(a, length), _padded(b, length)
    for x, y in zip(pa, pb, strict=True):
        if x == y:
            continue
        if x[0] != y[0]:
            return -1 if x[0] < y[0] else 1
        return -1 if x[1] < y[1] else 1  # type: ignore[operator]
    return 0


def highest_version(versions: Iterable[str | None]) -> str:
    """The newest of ``versions`` (empty and missing ones ignored); ``""`` when there is none.

    The lowest version that fixes every vulnerability of a product is the highest of their
    individual fixed versions.
    """
    best = ""
    for version in versions:
        if not version:
            continue
        if not best or compare_versions(version, best) > 0:
            best = version
    return best


def severity_of_rank(rank: int) -> str:
    """The severity of a :data:`SEVERITY_RANK` rank; ``""`` for 0 (none known)."""
    for severity, value in SEVERITY_RANK.items():
        if value == rank:
            return severity
    return ""


# A product with weaknesses and no published fix: nothing to install, IT looks into it.
ATTENTION_REQUIRED = "AttentionRequired"


@dataclass(frozen=True, slots=True)
class SoftwareFacts:
    """What the recompute knows about one product with open weaknesses."""

    display_name: str
    display_vendor: str
    end_of_support_on: datetime | None
    has_eos_version_installed: bool
    has_unpatchable_cve: bool
    fixed_versions: tuple[str | None, ...]
    internet_facing_exposed: bool


@dataclass(frozen=True, slots=True)
class SoftwareAdvice:
    """The derived fields of a software recommendation."""

    name: str
    remediation_type: str
    recommended_version: str
    tags: tuple[str, ...]


def is_end_of_support(end_of_support_on: datetime | None, as_of: datetime) -> bool:
    """True when the vendor's support for the whole product has ended by ``as_of``."""
    return end_of_support_on is not None and end_of_support_on <= as_of


def software_advice(facts: SoftwareFacts, as_of: datetime) -> SoftwareAdvice:
    """Name, remediation type, recommended version and tags of a software recommendation.

    An unsupported product (or an installed unsupported version) is to be upgraded: updating
    within the old line fixes nothing for long. Otherwise, when no vulnerability has a published
    fix, there is no security update to install: the recommendation says so ("No security update
    available", remediation type ``AttentionRequired``, as Defender words it) and never advises
    removing software only because its vendor has not shipped a fix yet. Otherwise: update to
    the lowest version that fixes every vulnerability with a fix (those without one are tagged
    "No security update").
    """
    product = facts.display_name
    # A package path names its owner already (github.com/gogo/protobuf): no vendor before it.
    if (
        facts.display_vendor
        and "/" not in product
        and not product.lower().startswith(facts.display_vendor.lower())
    ):
        product = f"{facts.display_vendor} {product}"
    eos_software = is_end_of_support(facts.end_of_support_on, as_of)
    recommended = highest_version(facts.fixed_versions)
    if eos_software or facts.has_eos_version_installed:
        remediation_type = "Upgrade"
        name = f"Upgrade {product} to a supported version"
    elif not recommended:
        remediation_type = ATTENTION_REQUIRED
        name = f"No security update available for {product}"
    else:
        remediation_type = "Update"
        name = f"Update {product} to version {recommended}" if recommended else f"Update {product}"
    tags: list[str] = []
    if eos_software:
        tags.append("EOS software")
    elif facts.end_of_support_on is not None:
        tags.append("Upcoming EOS software")
    if facts.has_eos_version_installed:
        tags.append("EOS versions")
    if facts.has_unpatchable_cve:
        tags.append("No security update")
    if facts.internet_facing_exposed:
        tags.append("internetFacing")
    return SoftwareAdvice(name, remediation_type, recommended, tuple(tags))


def configuration_tags(*, internet_facing_exposed: bool) -> tuple[str, ...]:
    """Tags of a configuration recommendation."""
    return ("internetFacing",) if internet_facing_exposed else ()
