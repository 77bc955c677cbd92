"""Small helpers shared by the dependency and cloud scanner parsers (Dependency-Check,
Dependency-Track, AWS Inspector2, Clair, Twistlock, Nexpose, pip-audit, govulncheck, npm audit,
Snyk, Dependabot, Tenable.io): ids, CWE spelling, CVSS v3 vectors, scores, the facts record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO, Protocol

from univers import versions as uv

from remedium.importers.formats._common import text
from remedium.importers.formats._xmlstream import peek
from remedium.importers.records import ReportError, VulnerabilityRecord

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.IGNORECASE)
_CWE = re.compile(r"^(?:CWE-)?(\d+)$", re.IGNORECASE)


def is_cve(value: str) -> bool:
    """True for a CVE id (``CVE-2021-44228``)."""
    return bool(_CVE.match(value.strip()))


def cve_or_own(own: str, aliases: Iterable[object]) -> str:
    """The CVE among ``own`` and its ``aliases``, else ``own``: remedium keys weaknesses on CVEs."""
    if is_cve(own):
        return own.strip().upper()
    for alias in aliases:
        value = text(alias)
        if is_cve(value):
            return value.upper()
    return own.strip()


def cwe_ids(values: Iterable[object]) -> tuple[str, ...]:
    """CWE ids spelled ``CWE-<n>``, in report order without repeats (``79``, ``"CWE-79"``,
    ``"cwe-79"`` all give ``CWE-79``; anything else, e.g. ``NVD-CWE-Other``, is dropped)."""
    found: dict[str, None] = {}
    for value in values:
        match = _CWE.match(text(value))
        if match:
            found[f"CWE-{int(match.group(1))}"] = None
    return tuple(found)


def score(value: object) -> float | None:
    """A CVSS score or probability as a float (``None`` when absent or not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def cvss3_vector(value: object) -> str:
    """A CVSS v3 vector string as written (``CVSS:3.x/...``); "" for anything else, e.g. v2 or
    v4 vectors, or a v3 vector without its ``CVSS:3.x/`` prefix, whose version is unknown."""
    vector = text(value)
    return vector if vector.upper().startswith("CVSS:3") else ""


# CVSS v3 metrics as Dependency-Check writes them, spelled out (NETWORK) or abbreviated (N).
_V3_METRICS = (
    (
        "AV",
        "attackVector",
        {"NETWORK": "N", "ADJACENT_NETWORK": "A", "ADJACENT": "A", "LOCAL": "L", "PHYSICAL": "P"},
    ),
    ("AC", "attackComplexity", {"LOW": "L", "HIGH": "H"}),
    ("PR", "privilegesRequired", {"NONE": "N", "LOW": "L", "HIGH": "H"}),
    ("UI", "userInteraction", {"NONE": "N", "REQUIRED": "R"}),
    ("S", "scope", {"UNCHANGED": "U", "CHANGED": "C"}),
    ("C", "confidentialityImpact", {"NONE": "N", "LOW": "L", "HIGH": "H"}),
    ("I", "integrityImpact", {"NONE": "N", "LOW": "L", "HIGH": "H"}),
    ("A", "availabilityImpact", {"NONE": "N", "LOW": "L", "HIGH": "H"}),
)


def cvss3_from_metrics(metrics: dict[str, str]) -> str:
    """The CVSS v3 vector of a report that spells out the base metrics (Dependency-Check's
    ``cvssV3``/``cvssv3``), or "" when a metric or the CVSS version is missing: without its
    version a vector would be a guess."""
    version = metrics.get("version", "").strip()
    if not version.startswith("3"):
        return ""
    parts = [f"CVSS:{version}"]
    for short, name, words in _V3_METRICS:
        raw = metrics.get(name, "").strip().upper()
        value = words.get(raw, raw if raw in words.values() else "")
        if not value:
            return ""
        parts.append(f"{short}:{value}")
    return "/".join(parts)


def facts(
    vulnerability_id: str,
    *,
    description: str = "",
    severity: str = "",
    cvss_v3_vector: str = "",
    cvss_v4_vector: str = "",
    epss: float | None = None,
    epss_percentile: float | None = None,
    cwes: tuple[str, ...] = (),
) -> VulnerabilityRecord | None:
    """The report's facts about a vulnerability, or ``None`` when it gives none."""
    if not (description or severity or cvss_v3_vector or cvss_v4_vector or cwes) and epss is None:
        return None
    return VulnerabilityRecord(
        vulnerability_id=vulnerability_id,
        description=description or None,
        severity=severity or None,
        cvss_v3_vector=cvss_v3_vector or None,
        cvss_v4_vector=cvss_v4_vector or None,
        epss=epss,
        epss_percentile=epss_percentile,
        cwe_ids=cwes,
    )


_VERSION_KINDS: dict[str, type[uv.Version]] = {
    "pypi": uv.PypiVersion,
    "npm": uv.SemverVersion,
    "golang": uv.GolangVersion,
    "maven": uv.MavenVersion,
}


def fix_for_installed(installed: str, candidates: Iterable[str], ecosystem: str) -> str:
    """The fixed version that belongs to the installed version's range: the lowest candidate
    above ``installed`` (a tool lists one fix per affected range: Django ``2.2.25, 3.1.14,
    3.2.10`` for 3.2.9 gives 3.2.10). "" when none is above it, or versions cannot be read;
    a single candidate is kept when the installed version cannot be read."""
    listed = [c.strip() for c in candidates if c and c.strip()]
    kind = _VERSION_KINDS.get(ecosystem, uv.MavenVersion)
    current = _version(kind, installed)
    if current is None:
        return listed[0] if len(listed) == 1 else ""
    above = []
    for candidate in listed:
        parsed = _version(kind, candidate)
        if parsed is not None and parsed > current:
            above.append((parsed, candidate))
    return min(above, key=lambda pair: pair[0])[1] if above else ""


def _version(kind: type[uv.Version], value: str) -> uv.Version | None:
    value = value.strip()
    if kind is uv.GolangVersion and value and not value.startswith("v"):
        value = "v" + value
    try:
        return kind(value) if value else None
    except Exception:  # univers raises several error types for versions it cannot read
        return None


class _Sniffer(Protocol):
    name: str

    def sniff(self, head: bytes, filename: str) -> bool: ...


def require(parser: _Sniffer, stream: IO[bytes], filename: str, what: str) -> IO[bytes]:
    """``stream`` from its start, once its head looks like ``parser``'s format; else the
    :class:`ReportError` that a file given with ``--format`` but of another kind deserves
    (rather than "nothing imported" and silence)."""
    head, replay = peek(stream)
    if not parser.sniff(head, filename):
        raise ReportError(f"not {what}", filename=filename)
    return replay
