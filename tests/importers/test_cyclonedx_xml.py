"""CycloneDX's XML reader (``_cyclonedx_xml``): which elements are items, what each carries, and
that the tree stays small across several lists."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest

from remedium.importers.formats import _cyclonedx_xml
from remedium.importers.formats.cyclonedx import CycloneDxParser
from remedium.importers.records import (
    FindingRecord,
    SkippedRecord,
    SoftwareRecord,
)

_NESTED = b"""<?xml version="1.0"?>
<!-- a comment -->
<bom xmlns="http://cyclonedx.org/schema/bom/1.4"
     xmlns:v="http://cyclonedx.org/schema/ext/vulnerability/1.0" serialNumber="urn:s">
 <metadata><component type="container" bom-ref="img"><name>img</name></component></metadata>
 <components>
  <component type="library" bom-ref="a"><name> a </name><name>second</name><version>1</version>
   <components><component bom-ref="b"><name>b</name>
    <v:vulnerabilities><v:vulnerability><v:id>CVE-2020-1</v:id>
     <v:ratings><v:rating><v:score><v:base>7.5</v:base></v:score><v:method>CVSSv3</v:method>
     </v:rating></v:ratings></v:vulnerability></v:vulnerabilities>
   </component></components>
   <v:vulnerabilities><v:vulnerability><v:id>CVE-2020-2</v:id></v:vulnerability></v:vulnerabilities>
   <v:vulnerabilities><v:vulnerability><v:id>CVE-2020-3</v:id></v:vulnerability></v:vulnerabilities>
  </component>
  <vulnerability><id>CVE-2020-9</id></vulnerability>
 </components>
 <vulnerabilities>
  <vulnerability><id>CVE-2021-1</id><affects><target><ref>b</ref></target></affects>
   <vulnerabilities><vulnerability><id>CVE-2021-9</id></vulnerability></vulnerabilities>
  </vulnerability>
  <component><name>not-an-item</name></component>
 </vulnerabilities>
</bom>"""


def _records(data: bytes) -> list[Any]:
    _info, records = CycloneDxParser().parse(BytesIO(data), "bom.xml")
    return list(records)


def test_items_are_the_children_of_the_lists_under_the_root() -> None:
    records = _records(_NESTED)
    software = [(r.product, r.version) for r in records if isinstance(r, SoftwareRecord)]
    assert software == [("a", "1"), ("b", "")]  # the first <name>, stripped; nested read
    findings = [(r.vulnerability_id, r.product) for r in records if isinstance(r, FindingRecord)]
    # Extension vulnerabilities belong to the component that holds them, every list of them
    # read; a list nested in a vulnerability, and items in the wrong list, are not items.
    assert findings == [
        ("CVE-2020-2", "a"),
        ("CVE-2020-3", "a"),
        ("CVE-2020-1", "b"),
        ("CVE-2021-1", "b"),
    ]
    rated = next(r for r in records if isinstance(r, FindingRecord) and r.product == "b")
    assert (rated.cvss_v3_score, rated.severity) == (7.5, "High")
    assert not [r for r in records if isinstance(r, SkippedRecord)]


def _two_lists(count: int) -> bytes:
    components = "".join(
        f'<component bom-ref="c{n}"><name>p{n}</name><version>1</version>'
        "<licenses><license><name>MIT</name></license></licenses></component>"
        for n in range(count)
    )
    vulnerabilities = "".join(
        f"<vulnerability><id>CVE-2024-{n:05d}</id><ratings><rating><severity>high</severity>"
        f"</rating></ratings><affects><target><ref>c{n}</ref></target></affects></vulnerability>"
        for n in range(count)
    )
    dependencies = '<dependency ref="x"/>' * count
    return (
        '<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.4">'
        f"<components>{components}</components>"
        f"<dependencies>{dependencies}</dependencies>"
        f"<vulnerabilities>{vulnerabilities}</vulnerabilities></bom>"
    ).encode()


def test_the_tree_stays_small_across_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    read = _cyclonedx_xml._xml_vulnerability

    def measured(element: Any, default_ref: str = "") -> dict[str, Any]:
        sizes.append(sum(1 for _ in element.getroottree().getroot().iter()))
        return read(element, default_ref)

    monkeypatch.setattr(_cyclonedx_xml, "_xml_vulnerability", measured)
    records = _records(_two_lists(4000))
    findings = [r for r in records if isinstance(r, FindingRecord)]
    assert len(findings) == 4000
    assert (findings[-1].product, findings[-1].severity) == ("p3999", "High")
    # The components and dependencies read before the vulnerabilities (about 28,000 elements)
    # are dropped before the first vulnerability is read: the tree holds the open path and at
    # most one 32 KB read's worth ahead (about 200 vulnerabilities of 8 elements).
    assert len(sizes) == 4000
    assert sizes[0] < 1000, sizes[0]
    assert max(sizes) < 2000, max(sizes)


def test_a_section_not_read_is_dropped_as_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    reads = _cyclonedx_xml.iterreads

    def measured(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, bool]]:
        for root, done in reads(*args, **kwargs):
            yield root, done
            sizes.append(sum(1 for _ in root.iter()))  # what the reader left in memory

    monkeypatch.setattr(_cyclonedx_xml, "iterreads", measured)
    dependencies = '<dependency ref="a"><dependency ref="b"/></dependency>' * 20_000
    records = _records(
        b'<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.4">'
        b"<components><component><name>a</name></component></components>"
        + f"<dependencies>{dependencies}</dependencies></bom>".encode()
    )
    assert [r.product for r in records if isinstance(r, SoftwareRecord)] == ["a"]
    # 40,000 elements of dependencies (1.1 MB) were read; each read's finished ones dropped.
    assert len(sizes) > 30
    assert max(sizes) < 100, max(sizes)
