"""CycloneDX XML BOMs read as the plain items the JSON encoding carries (``cyclonedx.py``).

lxml's parser builds each component in C and only the elements named in ``_ITEM_TAGS`` reach
Python (``_xmlstream.iterparse``: no network, DTDs and entities refused). Each field is read
from one pass over its element's children, the local name of a tag looked up once per distinct
tag, and each top-level item is emptied once read and dropped at the next: memory does not grow
with the file. Every child element read costs a Python object (lxml's proxy), so the readers
below go over each element's children once and look no further than they must.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._xmlstream import Element, iterparse, prune
from remedium.importers.records import ReportError

Item = tuple[str, dict[str, Any]]  # ("metadata" | "component" | "vulnerability", plain dict)

_ITEM_TAGS = ("metadata", "component", "vulnerability")
_LISTS = {"component": "components", "vulnerability": "vulnerabilities"}

# tag ("{namespace}name") -> local name: namespaces vary between versions, and a document uses
# a handful of tags. Bounded, so a document of ever new tags cannot grow it.
_LOCAL_NAMES: dict[str, str] = {}
_LOCAL_NAMES_KEPT = 4096


def _local(tag: str) -> str:
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rsplit("}", 1)[-1]
        if len(_LOCAL_NAMES) < _LOCAL_NAMES_KEPT:
            _LOCAL_NAMES[tag] = name
    return name


def _kids(elem: Element | None) -> dict[str, Element]:
    """The first child of each local name: one pass over the children, then a lookup per
    field."""
    found: dict[str, Element] = {}
    if elem is not None:
        names = _LOCAL_NAMES
        for child in elem:
            tag = child.tag
            name = names.get(tag) or _local(tag)
            if name not in found:
                found[name] = child
    return found


def _all(elem: Element, name: str) -> list[Element]:
    """The children named ``name`` (any namespace)."""
    names = _LOCAL_NAMES
    return [child for child in elem if (names.get(child.tag) or _local(child.tag)) == name]


def _first(elem: Element, name: str) -> Element | None:
    """The first child named ``name`` (any namespace); the children after it are not read."""
    names = _LOCAL_NAMES
    for child in elem:
        if (names.get(child.tag) or _local(child.tag)) == name:
            return child
    return None


def _text(elem: Element | None) -> str:
    if elem is None:
        return ""
    value = elem.text
    return value.strip() if value else ""


def _xml_component(elem: Element) -> dict[str, Any]:
    """A ``<component>`` as the JSON encoding would carry it (nested components included)."""
    kids: dict[str, Element] = {}
    holders: list[Element] = []  # every <vulnerabilities> child, in order
    names = _LOCAL_NAMES
    for child in elem:
        tag = child.tag
        name = names.get(tag) or _local(tag)
        if name not in kids:
            kids[name] = child
        if name == "vulnerabilities":
            holders.append(child)
    get = kids.get
    nested = get("components")
    return {
        "type": elem.get("type", ""),
        "bom-ref": elem.get("bom-ref", ""),
        "group": _text(get("group")),
        "name": _text(get("name")),
        "version": _text(get("version")),
        "purl": _text(get("purl")),
        "cpe": _text(get("cpe")),
        "components": [_xml_component(c) for c in _all(nested, "component")]
        if nested is not None
        else [],
        # CycloneDX 1.0-1.3 carried vulnerabilities inside the component (vulnerability
        # extension): they affect that component (their ``ref`` is the vulnerability's own).
        "_vulnerabilities": [
            _xml_vulnerability(vuln) for holder in holders for vuln in _all(holder, "vulnerability")
        ],
    }


def _xml_rating(rating: Element) -> dict[str, str]:
    kids = _kids(rating)
    get = kids.get
    score_elem = get("score")
    if score_elem is not None and len(score_elem):
        score_elem = _first(score_elem, "base")
    return {
        "score": _text(score_elem),
        "severity": _text(get("severity")),
        "method": _text(get("method")),
        "vector": _text(get("vector")),
    }


def _xml_vulnerability(elem: Element, default_ref: str = "") -> dict[str, Any]:
    kids = _kids(elem)
    get = kids.get
    analysis = get("analysis")
    state = justification = ""
    if analysis is not None:
        analysis_kids = _kids(analysis)
        state = _text(analysis_kids.get("state"))
        justification = _text(analysis_kids.get("justification"))
    affects = get("affects")
    targets = (
        [{"ref": _text(_kids(target).get("ref"))} for target in _all(affects, "target")]
        if affects is not None
        else []
    )
    if not targets and default_ref:
        targets = [{"ref": default_ref}]
    ratings = get("ratings")
    references = get("references")
    cwes = get("cwes")
    return {
        "id": _text(get("id")),
        "ratings": [_xml_rating(r) for r in _all(ratings, "rating")] if ratings is not None else [],
        "description": _text(get("description")) or _text(get("detail")),
        "references": [{"id": _text(_kids(r).get("id"))} for r in _all(references, "reference")]
        if references is not None
        else [],
        "analysis": {"state": state, "justification": justification},
        "affects": targets,
        "cwes": [_text(c) for c in _all(cwes, "cwe")] if cwes is not None else [],
    }


class _Reader:
    """The state of one pass over a BOM: its root, the header, and the list being read."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.root: Element = None  # set by check_root before any event
        self.header: dict[str, Any] = {}
        # The list element (<components> or <vulnerabilities> under the root) whose items were
        # read last, and the item name it holds: a later item there needs no more checks.
        self.holder: Element = None
        self.holder_item = ""

    def check_root(self, element: Element) -> None:
        self.root = element
        if _local(element.tag) != "bom":
            raise ReportError(
                f"not a CycloneDX BOM: the root element is <{_local(element.tag)}>",
                filename=self.filename,
            )

    def metadata(self, elem: Element, bom: Element) -> None:
        self.header["serialNumber"] = bom.get("serialNumber", "")
        kids = _kids(elem)
        component = kids.get("component")
        self.header["metadata"] = {
            "timestamp": _text(kids.get("timestamp")),
            "component": _xml_component(component) if component is not None else None,
        }
        prune(elem)

    def is_top_level(self, elem: Element, parent: Element, name: str) -> bool:
        """Whether ``elem`` is an item of a list under the root; a nested one is read with the
        top-level item that holds it."""
        if parent is self.holder:
            return name == self.holder_item
        if parent.getparent() is not self.root or _local(parent.tag) != _LISTS[name]:
            return False
        # A new list: what was read before it (metadata, an earlier list) is dropped.
        _drop_before(parent)
        self.holder, self.holder_item = parent, name
        return True


def _drop_before(node: Element) -> None:
    """Drop everything finished before ``node``, at its level and at each ancestor's."""
    parent = node.getparent()
    while parent is not None:
        while node.getprevious() is not None:
            del parent[0]
        node, parent = parent, parent.getparent()


def _drop(elem: Element, parent: Element) -> None:
    """Empty ``elem`` (read) and drop the items read before it: only the open path and one
    empty element stay in memory (emptying is cheaper than unlinking a whole subtree)."""
    elem.clear()
    while elem.getprevious() is not None:
        del parent[0]


def xml_items(stream: IO[bytes], filename: str) -> Iterator[Item]:
    """Stream a CycloneDX XML BOM; each top-level component is dropped once read."""
    reader = _Reader(filename)
    announced = False
    for _event, elem in iterparse(
        stream,
        filename,
        tags=_ITEM_TAGS,
        events=("end",),
        any_dtd=True,
        refused="refused unsafe XML ({kind}): entities and DTDs are not allowed",
        malformed="malformed XML",
        check_root=reader.check_root,
        blank_text=False,  # every field read is a whole text; none is mixed with elements
    ):
        parent = elem.getparent()
        if parent is None:
            continue
        name = _local(elem.tag)
        if name == "metadata":
            if parent is reader.root:
                reader.metadata(elem, parent)
            continue
        if not reader.is_top_level(elem, parent, name):
            continue
        if not announced:
            announced = True
            root = reader.root
            reader.header.setdefault(
                "serialNumber", root.get("serialNumber", "") if root is not None else ""
            )
            yield "metadata", reader.header
        if name == "component":
            yield "component", _xml_component(elem)
        else:
            # The 1.0-1.3 extension at BOM level names the component in ``ref``.
            yield "vulnerability", _xml_vulnerability(elem, default_ref=elem.get("ref", ""))
        _drop(elem, parent)  # memory does not grow with the file
    if not announced:
        yield "metadata", reader.header
