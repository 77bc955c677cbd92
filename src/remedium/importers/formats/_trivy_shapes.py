"""What of a Trivy report ``trivy.py`` reads, as types: the fast reader decodes runs of
vulnerabilities, packages, results and cluster resources into these and skips the rest
(references, data sources, vendor severities, layers...) in C.

Every key the parser reads must be declared here, with the shape it reads it in: a field of
another shape than declared makes the run be read whole, item by item (``_fastjson``: "Runs of
items"), so a declaration can cost time but never a value. Fields read as a whole object
(``PkgIdentifier``: its truthiness decides between it and ``Identifier``) are ``Any``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import msgspec

from remedium.importers.formats._fastjson import Int64, Text


class _Cvss(TypedDict, total=False):
    V3Vector: Text
    V3Score: Text


# A source's entry of ``CVSS``: read when it is an object, passed over otherwise.
_CvssEntry = _Cvss | str | Int64 | float | bool | list[Any] | None


class Vulnerability(TypedDict, total=False):
    VulnerabilityID: Text
    CVSS: dict[str, _CvssEntry]
    SeveritySource: Text
    PkgIdentifier: Any
    Identifier: Any
    Severity: Text
    PkgName: Text
    InstalledVersion: Text
    FixedVersion: Text
    Title: Text
    Description: Text
    PkgPath: Text
    PublishedDate: Text
    LastModifiedDate: Text
    CweIDs: Text


class Package(TypedDict, total=False):
    Name: Text
    Version: Text
    PkgIdentifier: Any
    Identifier: Any


class Misconfiguration(TypedDict, total=False):
    ID: Text
    AVDID: Text
    Title: Text
    Type: Text
    Description: Text
    Resolution: Text
    Status: Text


class Secret(TypedDict, total=False):
    RuleID: Text


class Result(TypedDict, total=False):
    Target: Text
    Class: Text
    Type: Text
    Packages: list[Package]
    Vulnerabilities: list[Vulnerability]
    Misconfigurations: list[Misconfiguration]
    Secrets: list[Secret]


class Resource(TypedDict, total=False):
    """A workload of a ``trivy k8s`` report."""

    Namespace: Text
    Kind: Text
    Name: Text
    Results: list[Result]


_VULNERABILITIES = msgspec.json.Decoder(list[Vulnerability])
_PACKAGES = msgspec.json.Decoder(list[Package])
_RESOURCES = msgspec.json.Decoder(list[Resource])

# The runs of each report layout (``json_fast_values(..., runs=...)``).
ARTIFACT_RUNS: dict[str, msgspec.json.Decoder[Any]] = {
    "Results.item.Vulnerabilities.item": _VULNERABILITIES,
    "Results.item.Packages.item": _PACKAGES,
}
K8S_RUNS: dict[str, msgspec.json.Decoder[Any]] = {
    f"{section}.item": _RESOURCES
    for section in ("Vulnerabilities", "Misconfigurations", "Resources", "Findings")
}
LEGACY_RUNS: dict[str, msgspec.json.Decoder[Any]] = {"item": msgspec.json.Decoder(list[Result])}


class Sections:
    """The resources of one section of a cluster report, from a fast pass that also reads the
    other section's resources (dropped) to learn whether it has any, and notes the report's
    top-level keys (``keys``, given to the reader)."""

    def __init__(self, section: str) -> None:
        self.wanted = f"{section}.item"
        self.other_has_items = False
        self.keys: set[str] = set()

    def values(self, found: Iterator[tuple[str, Any]]) -> Iterator[Any]:
        wanted = self.wanted
        for prefix, value in found:
            if prefix == wanted:
                yield value
            else:
                self.other_has_items = True
