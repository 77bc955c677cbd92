"""The plain items a CycloneDX BOM is read into, JSON or XML, and the rules both encodings share.

``cyclonedx.py`` (JSON) and ``_cyclonedx_xml.py`` (XML) each read a component or a vulnerability
into the tuples below, deciding a vulnerability's id, rating and CWEs with the functions here;
``cyclonedx.py`` maps the tuples to records once for both. Items are plain tuples, not dicts nor
named tuples: a BOM may carry hundreds of thousands of them, and a tuple is the cheapest to build.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    UNRATED,
    severity,
    severity_from_score,
    text,
)

# (id, severity, CVSS v3 vector, score, description, VEX state, VEX justification,
#  the bom-refs it affects, CWE ids): every string stripped, "" when absent.
Vulnerability: TypeAlias = tuple[
    str, str, str, float | None, str, str, str, tuple[str, ...], tuple[str, ...]
]

# (type, bom-ref, group, name, version, purl, cpe, nested components, the vulnerabilities it
#  holds itself: the 1.0-1.3 extension): every string stripped, "" when absent.
Component: TypeAlias = tuple[
    str, str, str, str, str, str, str, tuple["Component", ...], tuple[Vulnerability, ...]
]

# ("metadata", the header: the JSON document's own keys, and SUBJECT) | ("component", Component)
# | ("vulnerability", Vulnerability), in the order of the document.
Item: TypeAlias = tuple[str, Any]
# The header's key for the BOM's subject (the metadata's component) read as a Component, or None.
SUBJECT = "_subject"

# A rating as the BOM writes it: (score, severity, method, vector), JSON values or XML texts.
RawRating: TypeAlias = tuple[Any, Any, Any, Any]

_ORDER = {"": 0, "Low": 1, "Medium": 2, "High": 3, "Critical": 4}


def str_of(value: object) -> str:
    """``text(value)``, with the common case (a string) first: once per field of every item."""
    return value.strip() if type(value) is str else text(value)


def _severity(value: object) -> str:
    """``severity(value)``, with the spellings scanners write looked up at once."""
    found = SEVERITY_SPELLINGS.get(value) if type(value) is str else None
    return found if found is not None else severity(value)


def vulnerability_id(own: str, reference_ids: Iterable[str]) -> str:
    """The vulnerability's id, or the CVE it references when the id is a vendor's own (the
    references are read only then)."""
    if own.upper().startswith("CVE-"):
        return own
    for ref_id in reference_ids:
        if ref_id.upper().startswith("CVE-"):
            return ref_id
    return own


def cwe_ids(values: Iterable[object]) -> tuple[str, ...]:
    """CWE ids of a vulnerability (``cwes``: numbers in CycloneDX 1.4+ and the 1.0 extension)."""
    found: list[str] = []
    for raw in values:
        value = str_of(raw).upper().removeprefix("CWE-")
        if value.isdigit() and f"CWE-{value}" not in found:
            found.append(f"CWE-{value}")
    return tuple(found)


_NO_RATING: tuple[str, str, float | None] = ("", "", None)


def rating(ratings: Iterable[RawRating]) -> tuple[str, str, float | None]:
    """(severity, CVSS v3 vector, score): the v3 rating when present, else the worst rating."""
    best = _NO_RATING
    unknown = False
    for raw_score, raw_severity, raw_method, raw_vector in ratings:
        try:
            score = float(raw_score) if raw_score not in (None, "") else None
        except (TypeError, ValueError):
            score = None
        method = str_of(raw_method).upper()
        vector = str_of(raw_vector)
        sev = _severity(raw_severity) or (
            severity_from_score(score) if method.startswith("CVSSV3") else ""
        )
        if method.startswith("CVSSV3"):
            if vector and not vector.startswith("CVSS:"):
                vector = ("CVSS:3.1/" if method == "CVSSV31" else "CVSS:3.0/") + vector
            return sev, vector, score
        if _ORDER[sev] > _ORDER[best[0]]:
            best = (sev, "", None)
        elif not best[0] and str_of(raw_severity).lower() == "unknown":
            unknown = True
    if not best[0] and unknown:
        return UNRATED, "", None  # CycloneDX's own "unknown", kept (docs/formats.md)
    return best
