"""Runs of items: the fast reader decodes runs of a report's items with msgspec into the shapes
a parser reads (``_fastjson``: "Runs of items"), and must give what the exact reader gives.

``test_parser_speedups`` holds the readers side by side on the fixtures and the corpus (with
runs, since the parsers ask for them); these tests hold the places where runs could go wrong: a
separator that also appears inside an item, an item of another shape than declared, numbers
ijson refuses, indented reports, and runs actually being used (else the comparisons above would
only test the item-by-item reader). Pure: no database.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remedium.importers.formats import _fastjson, grype, trivy
from remedium.importers.formats._fastjson import GiveUp, json_fast_values
from remedium.importers.records import FindingRecord, ImportRecord, ReportError
from remedium.importers.registry import get_parser


class _Counted:
    """Counts the runs the fast reader decodes and the ones it had to read item by item."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoded = self.refused = 0
        real = _fastjson._FastJson._run

        def run(reader: Any, separator: str, decoder: Any) -> list[Any] | None:
            found = real(reader, separator, decoder)
            if found is not None:
                self.decoded += 1
            elif reader._plain_until > reader._base + reader._pos:
                self.refused += 1
            return found

        monkeypatch.setattr(_fastjson._FastJson, "_run", run)


def _parse(fmt: str, data: bytes) -> list[ImportRecord] | str:
    try:
        _info, records = get_parser(fmt).parse(io.BytesIO(data), "report.json")
        return list(records)
    except ReportError as exc:
        return f"ReportError: {exc}"


def _exactly(fmt: str, data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[ImportRecord] | str:
    """The records of the exact (ijson) reader alone."""

    def give_up(*_args: Any, **_kwargs: Any) -> Iterator[tuple[str, Any]]:
        raise GiveUp("test")
        yield  # pragma: no cover - a generator

    with monkeypatch.context() as patch:
        patch.setattr(trivy if fmt == "trivy" else grype, "json_fast_values", give_up)
        return _parse(fmt, data)


def _match(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "vulnerability": {
            "id": f"CVE-2024-{1000 + index}",
            "severity": "High",
            "description": f"issue {index}",
            "cvss": [{"version": "3.1", "vector": "CVSS:3.1/AV:N", "metrics": {"baseScore": 7.5}}],
            "fix": {"versions": [f"1.{index}"], "state": "fixed"},
            "urls": ["https://example.test/a"],
        },
        "relatedVulnerabilities": [{"id": f"CVE-2024-{1000 + index}", "dataSource": "nvd"}],
        "artifact": {
            "name": f"pkg{index % 7}",
            "version": f"1.{index}",
            "type": "deb",
            "purl": f"pkg:deb/debian/pkg{index % 7}@1.{index}",
            "locations": [{"path": "/var/lib/dpkg/status", "layerID": "sha256:ab"}],
            "cpes": [{"Part": "a", "Vendor": "v"}],
            "licenses": ["MIT"],
        },
        **extra,
    }


def _grype(
    matches: list[dict[str, Any]], indent: int | None = None, compact: bool = False
) -> bytes:
    report = {
        "matches": matches,
        "source": {"type": "image", "target": {"userInput": "img:1"}},
        "distro": {"name": "debian", "version": "12"},
        "descriptor": {"name": "grype", "timestamp": "2026-11-01T00:00:00Z"},
    }
    return json.dumps(report, indent=indent, separators=(",", ":") if compact else None).encode()


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of a few items, so that a small report is read in many runs."""
    monkeypatch.setattr(_fastjson, "_RUN_CHARS", 2048)


@pytest.mark.usefixtures("small_runs")
@pytest.mark.parametrize("indent", [None, 1, 2])
def test_runs_give_the_records_of_the_exact_reader(
    indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _grype([_match(i) for i in range(60)], indent)
    counted = _Counted(monkeypatch)
    records = _parse("grype", data)
    assert records == _exactly("grype", data, monkeypatch)
    assert isinstance(records, list)
    assert sum(type(r) is FindingRecord for r in records) == 60
    assert counted.decoded >= 5  # read in runs, whatever the indentation
    assert counted.refused == 0


@pytest.mark.usefixtures("small_runs")
def test_an_item_of_another_shape_is_read_item_by_item_and_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    matches = [_match(i) for i in range(40)]
    matches[17]["artifact"] = None  # declared an object: msgspec refuses the run
    matches[23]["vulnerability"]["cvss"] = "7.5"  # declared a list
    matches[31]["artifact"]["version"] = {"epoch": 1}  # read as "" either way
    data = _grype(matches)
    counted = _Counted(monkeypatch)
    records = _parse("grype", data)
    assert records == _exactly("grype", data, monkeypatch)
    assert isinstance(records, list)
    assert sum(type(r) is FindingRecord for r in records) == 40
    assert counted.refused >= 2
    assert counted.decoded >= 3  # runs go on after the refused ones


@pytest.mark.usefixtures("small_runs")
def test_a_separator_inside_an_item_does_not_cut_a_run_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every match holds a nested list of objects whose text between two entries is the
    # separator between two matches (``},{"vulnerability"``): a cut there cannot decode.
    nested = [{"vulnerability": {"id": "not-this"}}, {"vulnerability": {"id": "nor-this"}}]
    matches = [_match(i, matchDetails=nested) for i in range(50)]
    data = _grype(matches, compact=True)
    assert data.count(b'},{"vulnerability"') == 49 + 50  # between matches, and inside each
    counted = _Counted(monkeypatch)
    records = _parse("grype", data)
    assert records == _exactly("grype", data, monkeypatch)
    assert isinstance(records, list)
    ids = [r.vulnerability_id for r in records if type(r) is FindingRecord]
    assert ids == [f"CVE-2024-{1000 + i}" for i in range(50)]
    assert counted.decoded >= 3


@pytest.mark.usefixtures("small_runs")
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("9223372036854775808", "beyond 64 bits: ijson refuses it"),
        ("-9223372036854775808", "ijson refuses it too"),
        ("1e400", "beyond a double"),
    ],
)
def test_a_number_ijson_refuses_in_a_read_field_makes_the_fast_reader_give_up(
    value: str, why: str
) -> None:
    data = _grype([_match(i) for i in range(30)]).replace(b'"baseScore": 7.5', b'"baseScore": 1', 1)
    data = data.replace(b'"baseScore": 7.5', f'"baseScore": {value}'.encode(), 1)
    with pytest.raises(GiveUp):
        list(json_fast_values(io.BytesIO(data), ["matches.item"], runs=grype._MATCH_RUNS))


@pytest.mark.usefixtures("small_runs")
def test_a_field_no_parser_reads_is_skipped_by_runs() -> None:
    # The content of fields a parser does not read is checked for JSON syntax only: a number
    # beyond 64 bits there no longer stops the fast reader (docs/imports.md).
    matches = [_match(i) for i in range(30)]
    matches[20]["vulnerability"]["fix"]["state"] = "BIG"  # after the first run began
    data = _grype(matches).replace(b'"BIG"', b"92233720368547758080")
    values = list(json_fast_values(io.BytesIO(data), ["matches.item"], runs=grype._MATCH_RUNS))
    assert len(values) == 30
    assert "state" not in values[5][1]["vulnerability"]["fix"]  # skipped, not kept
    matches[25]["vulnerability"]["urls"] = ["BROKEN"]
    broken = _grype(matches).replace(b'"BIG"', b"1").replace(b'["BROKEN"]', b"[1,]")
    with pytest.raises(GiveUp):  # malformed JSON anywhere is still refused
        list(json_fast_values(io.BytesIO(broken), ["matches.item"], runs=grype._MATCH_RUNS))


def _trivy_vulnerability(index: int) -> dict[str, Any]:
    return {
        "VulnerabilityID": f"CVE-2023-{2000 + index}",
        "VendorIDs": ["DSA-1"],
        "PkgID": f"lib{index % 5}@1.0",
        "PkgName": f"lib{index % 5}",
        "PkgIdentifier": {"PURL": f"pkg:deb/debian/lib{index % 5}@1.0", "UID": "ab"},
        "InstalledVersion": "1.0",
        "FixedVersion": "1.1" if index % 3 else "",
        "Layer": {"DiffID": "sha256:cd"},
        "SeveritySource": "nvd",
        "DataSource": {"ID": "debian", "Name": "Debian Security Tracker"},
        "Title": f"title {index}",
        "Description": f"description {index}",
        "Severity": ["LOW", "MEDIUM", "HIGH", "CRITICAL"][index % 4],
        "CweIDs": ["CWE-79"],
        "VendorSeverity": {"nvd": 3},
        "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N", "V3Score": 7.5, "V2Score": 5}},
        "References": ["https://example.test/r"],
        "PublishedDate": "2023-01-01T00:00:00Z",
        "LastModifiedDate": "2023-02-01T00:00:00Z",
    }


def _trivy_result(start: int, count: int) -> dict[str, Any]:
    return {
        "Target": "img (debian 12.1)",
        "Class": "os-pkgs",
        "Type": "debian",
        "Packages": [{"Name": f"lib{i}", "Version": "1.0", "Licenses": ["MIT"]} for i in range(9)],
        "Vulnerabilities": [_trivy_vulnerability(start + i) for i in range(count)],
    }


@pytest.mark.parametrize("indent", [None, 2])
def test_trivy_reports_of_each_layout_are_read_in_runs_with_the_same_records(
    indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fastjson, "_RUN_CHARS", 16384)  # a few workloads, many findings
    image = {
        "SchemaVersion": 2,
        "ArtifactName": "img:1",
        "ArtifactType": "container_image",
        "Results": [_trivy_result(0, 40), _trivy_result(40, 25)],
    }
    resources = [
        {
            "Namespace": "ns",
            "Kind": "Deployment",
            "Name": f"app{i}",
            "Results": [_trivy_result(i, 6)],
        }
        for i in range(30)
    ]
    cluster = {"ClusterName": "c1", "Vulnerabilities": resources, "Misconfigurations": []}
    newer = {"ClusterName": "c1", "Resources": resources}
    for report in (image, cluster, newer):
        data = json.dumps(report, indent=indent).encode()
        counted = _Counted(monkeypatch)
        records = _parse("trivy", data)
        assert records == _exactly("trivy", data, monkeypatch)
        assert isinstance(records, list)
        assert sum(type(r) is FindingRecord for r in records) in (65, 180)
        assert counted.decoded >= 3
        assert counted.refused == 0


def test_runs_hold_only_the_declared_fields() -> None:
    data = _grype([_match(i) for i in range(5)])
    values = [
        v for _p, v in json_fast_values(io.BytesIO(data), ["matches.item"], runs=grype._MATCH_RUNS)
    ]
    # The first item is read whole (the separator is learnt from it), the rest in a run.
    assert "licenses" in values[0]["artifact"]
    assert values[3]["artifact"] == {
        "name": "pkg3",
        "version": "1.3",
        "type": "deb",
        "purl": "pkg:deb/debian/pkg3@1.3",
        "locations": [{"path": "/var/lib/dpkg/status"}],
        "cpes": [{}],
    }


@pytest.mark.parametrize(
    "name",
    [
        "grype/dd_grype_many_vulns.json",
        "trivy/dd_trivy_issue_9333.json",  # runs of a result's vulnerabilities
    ],
)
def test_corpus_reports_are_read_in_runs(
    corpus: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (corpus / name).read_bytes()
    counted = _Counted(monkeypatch)
    records = _parse(name.split("/", maxsplit=1)[0], data)
    assert isinstance(records, list)
    assert counted.decoded >= 1
    assert counted.refused == 0
