"""``_xmlstream.iterreads`` (the CycloneDX XML reader's parse) fails as ``iterparse`` fails: the
same error for the same document, whichever of the checks, the field limit or a syntax error
comes first."""

from __future__ import annotations

from io import BytesIO

import pytest

from remedium.importers.formats._xmlstream import Element, iterparse, iterreads
from remedium.importers.records import ReportError
from remedium.settings import get_settings

_BOM = b'<bom xmlns="http://cyclonedx.org/schema/bom/1.4">'
_ITEMS = b"<components><component><name>a</name></component><component/></components>"
_PROLOG = b"<!--" + b"<" * 1000 + b"-->"  # 1 KB of comment, "<" so the field limit allows it

_DOCUMENTS = {
    "valid": _BOM + _ITEMS + b"</bom>",
    "doctype": b"<!DOCTYPE bom>" + _BOM + _ITEMS + b"</bom>",
    "doctype, malformed before any item ends": b"<!DOCTYPE bom>" + _BOM + b"<components><x></y>",
    "doctype, malformed after an item": b"<!DOCTYPE bom>" + _BOM + _ITEMS + b"<x></y></bom>",
    "doctype, truncated": b"<!DOCTYPE bom>" + _BOM + b"<components>",
    "entities": b'<!DOCTYPE bom [<!ENTITY a "a">]>' + _BOM + b"<metadata>&a;</metadata></bom>",
    "another root": b"<sbom><a>1</a></sbom>",
    "another root, malformed": b"<sbom><a>1</b></sbom>",
    "another root, an item then malformed": b"<sbom><component/><a></b></sbom>",
    "another root holding a bom": b"<sbom>" + _BOM + _ITEMS + b"</bom></sbom>",
    "another root, truncated": b"<sbom><a>",
    "an item as the root": b"<component><name>a</name></component>",
    "not XML": b"hello",
    "truncated": _BOM + _ITEMS[:-20],
    "malformed among items": _BOM + _ITEMS[:-13] + b"<component></x></components></bom>",
    "a long prolog, then a bom": _PROLOG * 5000 + _BOM + _ITEMS + b"</bom>",
    "a long prolog, then another root": _PROLOG * 5000 + b"<sbom><component/></sbom>",
    "a long prolog, then another root, malformed": _PROLOG * 5000 + b"<sbom><a></b></sbom>",
    "a long field": _BOM + _ITEMS[:-13] + b"<component>" + b"x" * 40_000 + b"</component></bom>",
    "a long field in another root": b"<sbom><a>" + b"x" * 40_000 + b"</a></sbom>",
    "a long field after a doctype": b"<!DOCTYPE bom>" + _BOM + b"<name>" + b"x" * 40_000,
}


def _check_root(element: Element) -> None:
    if element.tag.rsplit("}", 1)[-1] != "bom":
        raise ReportError("the root is not a bom", filename="f.xml")


_ARGUMENTS = {
    "tags": ("metadata", "component", "vulnerability"),
    "any_dtd": True,
    "refused": "refused ({kind})",
    "malformed": "malformed",
    "check_root": _check_root,
    "blank_text": False,
}


def _outcome(read: object) -> str:
    try:
        list(read)  # type: ignore[call-overload]
    except ReportError as error:
        return f"{error} @ {error.where}"
    return "read"


@pytest.mark.parametrize("name", list(_DOCUMENTS))
def test_iterreads_fails_as_iterparse_fails(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIUM_MAX_FIELD_MB", "0.03")
    get_settings.cache_clear()
    try:
        document = b'<?xml version="1.0"?>\n' + _DOCUMENTS[name]
        expected = _outcome(
            iterparse(BytesIO(document), "f.xml", events=("end",), **_ARGUMENTS)  # type: ignore[arg-type]
        )
        got = _outcome(iterreads(BytesIO(document), "f.xml", root_tag="bom", **_ARGUMENTS))  # type: ignore[arg-type]
    finally:
        get_settings.cache_clear()
    assert got == expected
    assert (expected == "read") == (name in ("valid", "a long prolog, then a bom"))


def test_iterreads_hands_over_the_tree_after_each_read() -> None:
    components = b"".join(b"<component><name>p%d</name></component>" % n for n in range(5000))
    document = _BOM + b"<components>" + components + b"</components></bom>"
    seen: list[int] = []
    done = []
    for root, complete in iterreads(
        BytesIO(document), "f.xml", root_tag="bom", tags=("component",)
    ):
        holder = root[0]
        count = len(holder) if complete else len(holder) - 1
        seen.extend(int(holder[i][0].text[1:]) for i in range(count))
        del holder[:count]
        done.append(complete)
    assert seen == list(range(5000))
    assert done[-1]
    assert not any(done[:-1])
    assert len(done) > 3  # one hand-over a read, not one at the end
