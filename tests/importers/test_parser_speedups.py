"""The fast readers of the Trivy and Grype parsers give exactly what the exact readers give.

A report that can be read again from the start is read by ``json_fast_values`` (items built by
the json module's C decoder); where it gives up, the ijson reader takes over from the same
record (``fast_or_exact``). These tests hold the two side by side: on hand-written layouts that
are easy to get wrong (ijson's prefixes, values cut by the reading window, numbers and escapes
the two decoders read apart), on the fixtures and on the real files of the corpus. Pure: no
database.

Corpus counts below were written down from reading the files with plain ``json``: Trivy, the
``Results[].Vulnerabilities[]`` entries with a ``VulnerabilityID`` (in k8s reports, under every
resource of both sections); Grype, the ``matches[]`` with a ``vulnerability.id``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from remedium.importers.formats import _fastjson, grype, trivy
from remedium.importers.formats._common import (
    SEVERITY_SPELLINGS,
    FactsFilter,
    json_values,
    record_builder,
    severity,
)
from remedium.importers.formats._fastjson import GiveUp, fast_or_exact, json_fast_values
from remedium.importers.records import (
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)
from remedium.importers.registry import get_parser

FIXTURES = Path(__file__).parent / "fixtures"


# -- json_fast_values against json_values --------------------------------------------------

_TRIVY = list(trivy._TARGETS)

# (document, targets, walk): layouts where a reader that guessed structure would go wrong.
LAYOUTS: list[tuple[str, list[str], list[str]]] = [
    # An ordinary report, keys in Trivy's order, with white space of every kind.
    (
        '{\n\t"SchemaVersion": 2, "ArtifactName" : "img", "Metadata": {"OS": {"Family": "alpine"}},'
        '\r\n "Results": [ {"Target": "t (alpine 3.10)", "Class": "os-pkgs", "Type": "alpine",'
        ' "Packages": [{"Name": "musl"}], "Vulnerabilities": [ {"VulnerabilityID": "CVE-1",'
        ' "CVSS": {"nvd": {"V3Score": 9.8}}}, {"VulnerabilityID": "CVE-2"} ] } ] }\n',
        _TRIVY,
        [],
    ),
    # ijson names a map key "item" like an array step, and joins dotted keys as they are.
    (
        '{"Results": {"item": {"Target": "a", "Vulnerabilities": {"item": {"x": 1}}}},'
        ' "Results.item.Target": "b", "Results.item.Vulnerabilities": [{"y": 2}, 3],'
        ' "Results.item": {"Type": "t", "Secrets.item": {"RuleID": "r"}}, "": {"Results": [1]}}',
        _TRIVY,
        [],
    ),
    # Duplicate keys (each occurrence is read), scalars and arrays where objects are expected,
    # empty containers, a result that is not an object.
    (
        '{"Results": [{"Target": "a", "Target": "b", "Vulnerabilities": [1, "s", null, true,'
        ' [], {}, [{"VulnerabilityID": "CVE-3"}]], "Vulnerabilities": [], "Type": {"x": [1]}},'
        ' 7, [], {}], "Results": [{"Licenses": [{"Name": "MIT"}]}], "SchemaVersion": 3}',
        _TRIVY,
        [],
    ),
    # Numbers at the edges ijson still reads, escapes and text beyond ASCII.
    (
        '{"Results": [{"Target": "\\u00e9t\\u00E9 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t'
        ' \u2028 \U0001f600 \u00e9",'
        ' "Vulnerabilities": [{"a": 9223372036854775807, "b": -9223372036854775807, "c": -0.0,'
        ' "d": 1.5e-400, "e": 1.7976931348623157e308, "f": 0, "g": -0, "h": 1E5, "i": 2.5e+3,'
        ' "j": "\\u0000", "k": "\\u20ac\\u0041"}]}]}',
        _TRIVY,
        [],
    ),
    # A Kubernetes report read one section at a time, the other walked past item by item.
    (
        '{"ClusterName": "c", "Vulnerabilities": [{"Namespace": "n", "Results": []}, 2],'
        ' "Misconfigurations": [{"Namespace": "m"}, [1, 2]]}',
        ["Vulnerabilities.item"],
        ["Misconfigurations"],
    ),
    # A legacy report: a bare list, every item a target.
    (
        '[{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": "CVE-9"}]}, 1, "s", null]',
        ["item"],
        [],
    ),
    # Grype: the matches, then source and distro after them.
    (
        '{"matches": [{"vulnerability": {"id": "CVE-1", "cvss": [{"metrics": {"baseScore": 7}}]},'
        ' "artifact": {"name": "a"}}, {}], "source": {"type": "image"}, "distro": {"name": "d"}}',
        ["matches.item"],
        [],
    ),
    # Bare numbers, which only the next character shows complete, where the window may cut.
    (
        '{"SchemaVersion": 20240101, "Results": [{"Class": 98765432, "Target": -12.5e3,'
        ' "Vulnerabilities": [1234567, -0.000125, 31415926535897932]}], "CreatedAt": 1e22}',
        _TRIVY,
        [],
    ),
    ("[]", ["item"], []),
    ("  {}  ", _TRIVY, []),
    ('"just a string"', _TRIVY, []),
]


def _exact(document: bytes, targets: list[str]) -> list[tuple[str, Any]]:
    return list(json_values(io.BytesIO(document), targets, "layout.json"))


@pytest.fixture(params=["default window", "tiny window"])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with the reader's usual blocks, and with blocks of a few characters, so that
    every value (and every multi-byte character) is cut by the window somewhere."""
    if request.param == "tiny window":
        monkeypatch.setattr(_fastjson, "_FAST_BLOCK", 3)
        monkeypatch.setattr(_fastjson, "_FAST_AHEAD", 2)


@pytest.mark.usefixtures("window")
@pytest.mark.parametrize(("document", "targets", "walk"), LAYOUTS)
def test_fast_values_are_the_values_json_values_yields(
    document: str, targets: list[str], walk: list[str]
) -> None:
    data = document.encode()
    fast = list(json_fast_values(io.BytesIO(data), targets, walk=walk))
    assert fast == _exact(data, targets)


def test_the_layouts_hold_values_at_odd_prefixes() -> None:
    # Guards the test above against layouts that yield nothing (where any reader would pass).
    data = LAYOUTS[1][0].encode()
    prefixes = [prefix for prefix, _value in _exact(data, _TRIVY)]
    assert prefixes == [
        "Results.item.Target",
        "Results.item.Vulnerabilities.item",
        "Results.item.Target",
        "Results.item.Vulnerabilities.item",
        "Results.item.Vulnerabilities.item",
        "Results.item.Type",
        "Results.item.Secrets.item",
    ]


def test_fast_values_start_where_asked() -> None:
    data = b"garbage before" + LAYOUTS[6][0].encode()
    stream = io.BytesIO(data)
    fast = list(json_fast_values(stream, ["matches.item"], start=len(b"garbage before")))
    assert fast == _exact(LAYOUTS[6][0].encode(), ["matches.item"])
    assert len(fast) == 2


@pytest.mark.usefixtures("window")
@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b'{"Results": [{"Target": NaN}]}', "not JSON; ijson refuses it"),
        (b'{"Results": [{"Target": -Infinity}]}', "not JSON; ijson refuses it"),
        (b'{"Results": [{"Target": 1e400}]}', "ijson: floating point overflow"),
        (b'{"Results": [{"Target": 9223372036854775808}]}', "ijson: integer overflow"),
        (b'{"Results": [{"Target": -9223372036854775808}]}', "ijson: integer overflow"),
        (b'{"Results": [{"Target": "\\ud800"}]}', "ijson reads a lone surrogate as ?"),
        (b'{"Results": [{"Target": "\\uDC00"}]}', "ijson fails to decode it"),
        (b'{"Results": [{"Target": "\\ud83d\\ude00"}]}', "a pair: refused all the same"),
        (b'{"Results": [{"Target": "a"\x0b}]}', "ijson takes a vertical tab for white space"),
        (b'{"Results": [1,]}', "malformed"),
        (b'{"Results": [1;2]}', "malformed"),
        (b'{"Results": [{"Target": "a"} {"Target": "b"}]}', "malformed"),
        (b'{"Results" [1]}', "malformed"),
        (b'{"Results": [1] x', "malformed"),
        (b'{"Results": [{"Target": "a"}]}{}', "data after the document"),
        (b'\xef\xbb\xbf{"Results": []}', "a byte order mark"),
        (b'{"Results": [{"Target": "\xff"}]}', "not UTF-8"),
        (b'{"Results": [{"Target": "cut', "cut off"),
        (b"", "empty"),
        (b"   ", "empty"),
    ],
)
def test_fast_values_give_up_where_the_readers_could_differ(document: bytes, why: str) -> None:
    with pytest.raises(GiveUp):
        list(json_fast_values(io.BytesIO(document), _TRIVY))


def test_giving_up_is_needed_where_the_json_module_reads_otherwise() -> None:
    # What ijson makes of input the json module reads without complaint.
    assert _exact(b'{"Results": [{"Target": "\\ud800"}]}', _TRIVY) == [("Results.item.Target", "?")]
    for document in (b'{"Results": [{"Target": 1e400}]}', b'{"Results": [{"Target": NaN}]}'):
        with pytest.raises(ReportError, match="malformed JSON"):
            _exact(document, _TRIVY)
    assert json.loads(b'{"a": 1e400, "b": NaN, "c": 9223372036854775808}')  # read, not refused


def test_malformed_json_gives_up_without_reading_the_rest_of_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_fastjson, "_FAST_BLOCK", 64)
    monkeypatch.setattr(_fastjson, "_FAST_AHEAD", 16)
    item = b'{"VulnerabilityID": "CVE-1", "Title": "' + b"t" * 40 + b'"}'
    document = b'{"Results": [{"Vulnerabilities": [' + item + b', {"x": oops}'
    document += b", " + b", ".join([item] * 2000) + b"]}]}"
    stream = io.BytesIO(document)
    with pytest.raises(GiveUp, match="malformed"):
        list(json_fast_values(stream, _TRIVY))
    assert stream.tell() < 1024  # not the 160 kB after the fault


def test_a_value_larger_than_the_limit_is_left_to_the_exact_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_fastjson, "_FAST_BLOCK", 4)
    monkeypatch.setattr(_fastjson, "_FAST_VALUE_LIMIT", 16)
    document = b'{"Results": [{"Target": "' + b"x" * 64 + b'"}]}'
    with pytest.raises(GiveUp, match="too large"):
        list(json_fast_values(io.BytesIO(document), _TRIVY))


# -- fast_or_exact ---------------------------------------------------------------------------


def test_fast_or_exact_goes_on_from_the_first_record_the_fast_reader_did_not_give() -> None:
    def fast() -> Iterator[int]:
        yield from (0, 1, 2)
        raise GiveUp("stop")

    started: list[bool] = []

    def exact() -> Iterator[int]:
        started.append(True)
        return iter(range(6))

    assert list(fast_or_exact(fast(), exact)) == [0, 1, 2, 3, 4, 5]
    assert started == [True]
    started.clear()
    assert list(fast_or_exact(iter([7, 8]), exact)) == [7, 8]
    assert started == []  # not read when the fast reader finishes


def test_fast_or_exact_lets_other_errors_through() -> None:
    def fast() -> Iterator[int]:
        yield 1
        raise ReportError("broken", filename="f.json")

    with pytest.raises(ReportError, match="broken"):
        list(fast_or_exact(fast(), lambda: iter(range(3))))


# -- record_builder, severity spellings, facts filter ------------------------------------------

SAMPLES: list[tuple[type[Any], tuple[Any, ...], dict[str, Any]]] = [
    (
        FindingRecord,
        ("dev", "CVE-2024-1"),
        {"vendor": "debian", "cvss_v3_score": 9.8, "description": "d", "vex_state": "x"},
    ),
    (SoftwareRecord, ("dev", "v", "p", "1.0"), {"purl": "pkg:deb/debian/p@1.0"}),
    (VulnerabilityRecord, ("CVE-1",), {"cwe_ids": ("CWE-79",), "epss": 0.5}),
    (DeviceRecord, ("dev", "name"), {"tags": ("a",), "is_aad_joined": True}),
    (SkippedRecord, ("why",), {"where": "here"}),
    (ConfigurationResultRecord, ("dev", "c", True), {}),
    (ConfigurationCheckRecord, ("c", "n", "OS"), {"benchmarks": ("cis",)}),
]


@pytest.mark.parametrize(("record_type", "args", "kwargs"), SAMPLES)
def test_record_builder_builds_the_record_the_constructor_builds(
    record_type: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    build = record_builder(record_type)
    assert build is not record_type  # the fast path is taken for the frozen records
    for made, usual in (
        (build(*args, **kwargs), record_type(*args, **kwargs)),
        (build(*args), record_type(*args)),
    ):
        assert type(made) is record_type
        assert made == usual
        assert hash(made) == hash(usual)
        assert dataclasses.astuple(made) == dataclasses.astuple(usual)
        assert pickle.loads(pickle.dumps(made)) == usual
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.__setattr__(dataclasses.fields(record_type)[0].name, "changed")


def test_record_builder_keeps_types_it_cannot_mirror() -> None:
    @dataclasses.dataclass(slots=True)
    class Unfrozen:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    for kind in (Unfrozen, NoSlots, Checked):
        assert record_builder(kind) is kind


def test_severity_spellings_give_what_severity_gives() -> None:
    assert SEVERITY_SPELLINGS["HIGH"] == "High"
    assert SEVERITY_SPELLINGS["Negligible"] == "Low"
    assert SEVERITY_SPELLINGS["UNKNOWN"] == ""
    for spelling, rating in SEVERITY_SPELLINGS.items():
        assert severity(spelling) == rating


def test_facts_filter_keeps_the_first_of_a_run_of_equal_facts() -> None:
    facts = FactsFilter()
    assert facts.new("CVE-1", None)  # a first sighting, whatever the facts are
    assert not facts.new("CVE-1", None)
    assert facts.new("CVE-1", ("v", None))
    assert not facts.new("CVE-1", ("v", None))
    assert facts.new("CVE-2", ("v", None))
    assert facts.new("CVE-1", None)


# -- the parsers: fast readers against exact ones ------------------------------------------


class _Pipe:
    """An upload that cannot seek: the parsers read it event by event only."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def _parse(fmt: str, data: bytes, *, pipe: bool = False) -> list[ImportRecord] | str:
    stream: Any = _Pipe(data) if pipe else io.BytesIO(data)
    try:
        _info, records = get_parser(fmt).parse(stream, "report.json")
        return list(records)
    except ReportError as exc:
        return f"ReportError: {exc}"


def _fast_values_then_give_up(after: int) -> Callable[..., Iterator[tuple[str, Any]]]:
    """json_fast_values that gives up after ``after`` values (0: at once)."""
    real = _fastjson.json_fast_values

    def fast_values(*args: Any, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        values = real(*args, **kwargs)
        for count, value in enumerate(values):
            if count == after:
                raise GiveUp("test")
            yield value
        if after >= 0:
            raise GiveUp("test")

    return fast_values


def _exactly(fmt: str, data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[ImportRecord] | str:
    """The records (or error) of the exact readers alone."""
    with monkeypatch.context() as patch:
        patch.setattr(
            trivy if fmt == "trivy" else grype, "json_fast_values", _fast_values_then_give_up(0)
        )
        return _parse(fmt, data)


def _corpus_files(corpus: Path, folder: str) -> list[Path]:
    return sorted((corpus / folder).rglob("*.json"))


def _hand_written(fmt: str) -> list[bytes]:
    """Fixtures and layouts the corpus lacks: odd prefixes, a legacy list, a k8s report."""
    if fmt == "grype":
        return [
            (FIXTURES / "grype" / "directory.json").read_bytes(),
            LAYOUTS[6][0].encode(),
        ]
    return [
        (FIXTURES / "trivy" / "image.json").read_bytes(),
        (FIXTURES / "trivy" / "truncated.json").read_bytes(),
        LAYOUTS[0][0].encode(),
        b'{"SchemaVersion": 2, ' + LAYOUTS[1][0].encode()[1:],
        b'{"SchemaVersion": 2, ' + LAYOUTS[2][0].encode()[1:],
        b'{"ClusterName": "c", "Vulnerabilities": [{"Namespace": "n", "Kind": "Pod", "Name": "p",'
        b' "Results": [{"Type": "debian", "Vulnerabilities": [{"VulnerabilityID": "CVE-1",'
        b' "Severity": "high"}]}]}], "Misconfigurations": [{"Namespace": "n", "Kind": "Pod",'
        b' "Name": "p", "Results": [{"Misconfigurations": [{"ID": "KSV001",'
        b' "Status": "FAIL"}]}]}]}',
        _CLUSTER_MISCONFIGURATIONS_FIRST,
        _CLUSTER_OF_ONE_SECTION,
        LAYOUTS[5][0].encode(),
    ]


_POD = b'"Namespace": "n", "Kind": "Pod", "Name": "p"'
_CLUSTER_VULNERABILITY = (
    b'"Vulnerabilities": [{' + _POD + b', "Results": [{"Type": "debian", "Vulnerabilities": '
    b'[{"VulnerabilityID": "CVE-1", "PkgName": "zlib", "Severity": "high"}]}]}]'
)
_CLUSTER_MISCONFIGURATION = (
    b'"Misconfigurations": [{' + _POD + b', "Results": [{"Misconfigurations": [{"ID": "KSV001",'
    b' "Status": "FAIL"}]}]}]'
)
_CLUSTER_MISCONFIGURATIONS_FIRST = (
    b'{"ClusterName": "c", ' + _CLUSTER_MISCONFIGURATION + b", " + _CLUSTER_VULNERABILITY + b"}"
)
# What ``trivy k8s --scanners vuln`` writes: the other section is there, empty.
_CLUSTER_OF_ONE_SECTION = (
    b'{"ClusterName": "c", ' + _CLUSTER_VULNERABILITY + b', "Misconfigurations": []}'
)


def test_a_cluster_report_is_read_once_when_its_second_section_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[object] = []
    real = trivy.json_fast_values

    def counted(*args: Any, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        passes.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(trivy, "json_fast_values", counted)
    one = _parse("trivy", _CLUSTER_OF_ONE_SECTION)
    assert isinstance(one, list)
    assert [type(r).__name__ for r in one].count("FindingRecord") == 1
    assert len(passes) == 1
    passes.clear()
    both = _parse("trivy", _CLUSTER_MISCONFIGURATIONS_FIRST)
    assert isinstance(both, list)
    kinds = [type(r).__name__ for r in both]
    assert kinds.count("FindingRecord") == 1
    assert kinds.count("ConfigurationResultRecord") == 1
    assert len(passes) == 2  # the second section has resources: it gets its own pass


@pytest.mark.parametrize("fmt", ["trivy", "grype"])
def test_fast_and_exact_readers_give_the_same_records_on_hand_written_reports(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for data in _hand_written(fmt):
        fast = _parse(fmt, data)
        assert fast == _exactly(fmt, data, monkeypatch)
        if fmt == "trivy":
            piped = _parse(fmt, data, pipe=True)  # the event-by-event reader
            if data == _CLUSTER_MISCONFIGURATIONS_FIRST:
                # It reads the sections in file order; a file, section by section.
                assert isinstance(fast, list)
                assert isinstance(piped, list)
                assert sorted(map(repr, fast)) == sorted(map(repr, piped))
            else:
                assert fast == piped


@pytest.mark.parametrize("fmt", ["trivy", "grype"])
def test_giving_up_midway_goes_on_with_the_same_records(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _hand_written(fmt)[0]
    expected = _parse(fmt, data)
    assert isinstance(expected, list)
    assert len(expected) >= 5
    for after in range(12):
        with monkeypatch.context() as patch:
            module = trivy if fmt == "trivy" else grype
            patch.setattr(module, "json_fast_values", _fast_values_then_give_up(after))
            assert _parse(fmt, data) == expected, f"gave up after {after} values"


def test_a_truncated_report_is_refused_by_the_exact_reader_with_its_place() -> None:
    message = _parse("trivy", (FIXTURES / "trivy" / "truncated.json").read_bytes())
    assert isinstance(message, str)
    assert "Results[].Vulnerabilities[]: malformed JSON" in message


def test_a_report_the_fast_reader_refuses_midway_keeps_every_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lone surrogate in the last finding: the fast reader gives up there, the exact one goes on.
    report = json.loads((FIXTURES / "trivy" / "image.json").read_bytes())
    report["Results"][0]["Vulnerabilities"][-1]["Title"] = "odd \\ud800 title"
    data = json.dumps(report).replace("\\\\ud800", "\\ud800").encode()
    with pytest.raises(GiveUp):
        list(json_fast_values(io.BytesIO(data), _TRIVY))
    records = _parse("trivy", data)
    assert records == _exactly("trivy", data, monkeypatch)
    assert isinstance(records, list)
    titles = [r.title for r in records if isinstance(r, FindingRecord)]
    assert titles[-1] == "odd ? title"  # what ijson reads


# -- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["trivy", "grype"])
def test_the_fast_reader_reads_every_corpus_report_whole(corpus: Path, folder: str) -> None:
    """The real files never make the fast reader give up (else it would only cost time)."""
    for path in _corpus_files(corpus, folder):
        data = path.read_bytes()
        targets = ["item"] if data.lstrip()[:1] == b"[" else _TRIVY
        if folder == "grype":
            targets = ["matches.item"]
        if data.strip() in (b"null", b""):
            continue
        assert list(json_fast_values(io.BytesIO(data), targets)) == _exact(data, targets), path


@pytest.mark.parametrize("folder", ["trivy", "grype"])
def test_fast_and_exact_readers_give_the_same_records_on_the_corpus(
    corpus: Path, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in _corpus_files(corpus, folder):
        data = path.read_bytes()
        fast = _parse(folder, data)
        assert fast == _exactly(folder, data, monkeypatch), path
        if folder == "trivy":
            assert fast == _parse(folder, data, pipe=True), path


@pytest.mark.parametrize(
    ("name", "findings"),
    [
        ("trivy/trivy_img_alpine-310.json", 4),
        ("trivy/dd_trivy_kubernetes.json", 10),
        ("trivy/dd_trivy_legacy_many_vulns.json", 93),
        ("trivy/dd_trivy_misconfigurations_and_secrets.json", 2),
        ("grype/dd_grype_many_vulns.json", 1509),
        ("grype/dd_grype_issue_9618.json", 35),
    ],
)
def test_corpus_reports_give_their_findings_through_the_fast_reader(
    corpus: Path, name: str, findings: int
) -> None:
    records = _parse(name.split("/", maxsplit=1)[0], (corpus / name).read_bytes())
    assert isinstance(records, list)
    assert sum(type(r) is FindingRecord for r in records) == findings


def test_records_fields_are_in_the_order_the_parsers_give_them() -> None:
    # The Trivy, Grype and CycloneDX loops build their records positionally (keywords cost a
    # third to a half more a record).
    assert [field.name for field in dataclasses.fields(FindingRecord)][:14] == [
        "device_ref",
        "vulnerability_id",
        "vendor",
        "product",
        "installed_version",
        "fixed_version",
        "purl",
        "severity",
        "cvss_v3_vector",
        "cvss_v3_score",
        "title",
        "description",
        "vex_state",
        "vex_justification",
    ]
    assert [field.name for field in dataclasses.fields(SoftwareRecord)][:9] == [
        "device_ref",
        "vendor",
        "product",
        "version",
        "display_name",
        "display_vendor",
        "purl",
        "cpe",
        "is_operating_system",
    ]
    assert [field.name for field in dataclasses.fields(VulnerabilityRecord)][:5] == [
        "vulnerability_id",
        "description",
        "severity",
        "cvss_v3_vector",
        "cvss_v3_score",
    ]
