"""The XML reading shared by the XML parsers (``_xmlstream``) and CycloneDX's XML reader: what is
refused, and that the tree the parser builds in C is pruned as it is read (memory the standard
``tracemalloc`` does not see)."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest

from remedium.importers.formats import _cyclonedx_xml
from remedium.importers.formats._xmlstream import walk
from remedium.importers.formats.cyclonedx import CycloneDxParser
from remedium.importers.formats.nessus import NessusParser
from remedium.importers.records import FindingRecord, ReportError, SoftwareRecord
from remedium.settings import get_settings

HEAD = b'<?xml version="1.0"?>\n'


def _walked(data: bytes) -> list[tuple[str, str]]:
    return [
        (event, (element.text or "").strip())
        for event, element in walk(BytesIO(data), "f.xml", end_tags=frozenset({"a"}))
    ]


@pytest.mark.parametrize(
    "doctype",
    [
        b'<!DOCTYPE r [<!ENTITY e "x">]>',
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    ],
    ids=["internal", "external", "parameter"],
)
def test_documents_declaring_entities_are_refused(doctype: bytes) -> None:
    with pytest.raises(ReportError, match=r"declares entities .*\(EntitiesForbidden\)"):
        _walked(HEAD + doctype + b"<r><a>x</a></r>")
    # Also when no wanted element comes at all (the check runs at the end).
    with pytest.raises(ReportError, match="declares entities"):
        _walked(HEAD + doctype + b"<r><b>x</b></r>")


def test_a_doctype_without_entities_is_read_and_its_external_dtd_never_loaded() -> None:
    internal = HEAD + b"<!DOCTYPE r [<!ELEMENT r ANY>]><r><a>x</a></r>"
    external = HEAD + b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd"><r><a>y</a></r>'
    assert _walked(internal) == [("end", "x")]
    assert _walked(external) == [("end", "y")]


def test_comments_cdata_and_encodings_read_as_before() -> None:
    assert _walked(b"<r><a>fo<!-- c -->o<![CDATA[<b>]]><?pi x?></a></r>") == [("end", "foo<b>")]
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><r><a>\u00e9</a></r>'.encode("latin-1")
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><r><a>\u00e9</a></r>'.encode("utf-16")
    assert _walked(latin) == _walked(utf16) == [("end", "\u00e9")]


@pytest.mark.parametrize(
    "data",
    [b"<r><a>x</b></r>", b"<r><a>x</a>", b'<r a="1" a="2"/>', b"<r>&undefined;</r>", b"<r/>x"],
    ids=["mismatched", "truncated", "duplicate-attribute", "undefined-entity", "junk-after"],
)
def test_malformed_xml_names_the_cause_and_the_place(data: bytes) -> None:
    with pytest.raises(
        ReportError, match=r"f\.xml: line \d+, column \d+: not well-formed XML \(.+\)"
    ):
        _walked(data)


def _nessus(hosts: int, items: int) -> bytes:
    item = (
        '<ReportItem port="443" severity="2" pluginID="{n}" pluginName="p">'
        "<cve>CVE-2024-{n:05d}</cve><description>" + "x" * 200 + "</description></ReportItem>"
    )
    body = "".join(
        f'<ReportHost name="h{h}"><HostProperties><tag name="host-ip">10.0.0.{h % 250}</tag>'
        "</HostProperties><Unused><deep>"
        + "u" * 50
        + "</deep></Unused>"
        + "".join(item.format(n=i) for i in range(items))
        + "</ReportHost>"
        for h in range(hosts)
    )
    head = '<?xml version="1.0"?><NessusClientData_v2><Policy><x/></Policy><Report name="r">'
    return f"{head}{body}</Report></NessusClientData_v2>".encode()


def _tree_size(element: Any) -> int:
    return sum(1 for _ in element.getroottree().getroot().iter())


def _largest_tree(data: bytes) -> tuple[int, int]:
    """(elements yielded, the most elements the parser held at a time)."""
    yielded = largest = 0
    for _event, element in walk(
        BytesIO(data),
        "big.nessus",
        end_tags=frozenset({"HostProperties", "ReportItem"}),
        start_tags=frozenset({"ReportHost"}),
    ):
        yielded += 1
        largest = max(largest, _tree_size(element))
    return yielded, largest


def test_walk_memory_stays_flat_as_the_file_grows() -> None:
    # The parser reads 32 KB at a time and builds that much ahead of the events: what it holds
    # is the open path and one read's worth, whatever the file's size.
    small_yielded, small = _largest_tree(_nessus(100, 20))  # ~0.6 MB, 2,600 elements
    big_yielded, big = _largest_tree(_nessus(1000, 20))  # ~6 MB, 26,000 elements
    assert (small_yielded, big_yielded) == (2200, 22000)
    assert big < small * 1.2 + 20, (small, big)
    assert big < 1000, big


def test_nessus_reads_every_host_of_a_large_file() -> None:
    _info, records = NessusParser().parse(BytesIO(_nessus(200, 20)), "big.nessus")
    assert sum(1 for r in records if isinstance(r, FindingRecord)) == 4000


def _bom(components: int) -> bytes:
    component = (
        '<component type="library"><name>p{n}</name><version>1.{n}</version>'
        "<licenses><license><name>MIT</name></license></licenses>"
        '<v:vulnerabilities><v:vulnerability ref="r{n}"><v:id>CVE-2024-{n:05d}</v:id>'
        "<v:ratings><v:rating><v:score><v:base>7.5</v:base></v:score>"
        "<v:severity>High</v:severity><v:method>CVSSv3</v:method>"
        "<v:vector>AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H</v:vector></v:rating></v:ratings>"
        "</v:vulnerability></v:vulnerabilities></component>"
    )
    return (
        '<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.2" '
        'xmlns:v="http://cyclonedx.org/schema/ext/vulnerability/1.0" serialNumber="urn:x">'
        '<metadata><component type="container"><name>img</name></component></metadata>'
        "<components>"
        + "".join(component.format(n=n) for n in range(components))
        + "</components></bom>"
    ).encode()


def test_cyclonedx_xml_keeps_only_the_open_component_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    read = _cyclonedx_xml._xml_component

    def measured(element: Any) -> dict[str, Any]:
        sizes.append(_tree_size(element))
        return read(element)

    monkeypatch.setattr(_cyclonedx_xml, "_xml_component", measured)
    _info, records = CycloneDxParser().parse(BytesIO(_bom(5000)), "bom.xml")
    listed = list(records)
    findings = [r for r in listed if isinstance(r, FindingRecord)]
    assert len(findings) == 5000
    assert {f.product for f in findings[:2]} == {"p0", "p1"}
    assert (findings[0].severity, findings[0].cvss_v3_vector) == (
        "High",
        "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    )
    assert sum(1 for r in listed if isinstance(r, SoftwareRecord)) == 5000
    # 5,000 components of 17 elements each (2.4 MB) were read; the parser holds the open path
    # and at most one 32 KB read's worth ahead (about 70 components) at a time.
    assert max(sizes) < 1500, max(sizes)
    assert max(sizes[-2000:]) < 1500


def _records(data: bytes) -> Iterator[object]:
    _info, records = CycloneDxParser().parse(BytesIO(data), "bom.xml")
    return records


def test_cyclonedx_xml_refuses_any_doctype_and_names_a_wrong_root() -> None:
    bom = _bom(1)
    with pytest.raises(ReportError, match=r"refused unsafe XML \(DTDForbidden\)"):
        list(_records(bom.replace(b"?><bom", b"?><!DOCTYPE bom><bom", 1)))
    with pytest.raises(ReportError, match=r"root element is <sbom>"):
        list(_records(b"<sbom><components/></sbom>"))
    with pytest.raises(ReportError, match=r"bom\.xml: line \d+, column \d+: malformed XML"):
        list(_records(bom[:-20]))


def _field_limit(monkeypatch: pytest.MonkeyPatch, megabytes: float) -> None:
    monkeypatch.setenv("REMEDIUM_MAX_FIELD_MB", str(megabytes))
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("limit", "refused"), [(8, True), (16, False)], ids=["default-8MB", "raised-16MB"]
)
def test_one_text_of_11_mb_against_the_field_limit(
    monkeypatch: pytest.MonkeyPatch, limit: float, refused: bool
) -> None:
    # Above libxml2's own 10 MB a text is read when REMEDIUM_MAX_FIELD_MB allows it.
    _field_limit(monkeypatch, limit)
    try:
        data = b"<r><a>" + b"x" * 11_000_000 + b"</a></r>"
        if refused:
            with pytest.raises(ReportError, match="REMEDIUM_MAX_FIELD_MB"):
                _walked(data)
        else:
            assert [len(text) for _event, text in _walked(data)] == [11_000_000]
    finally:
        get_settings.cache_clear()
