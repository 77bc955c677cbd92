"""CycloneDX XML BOMs read into the plain items ``cyclonedx.py`` maps (``_cyclonedx_items``).

lxml's parser builds the tree in C (``_xmlstream.iterreads``: no network, DTDs and entities
refused, the errors of ``iterparse``); after each 32 KB read, the reader takes the finished
items of the lists under the root (each ``<component>`` with what it nests, each
``<vulnerability>``) straight from the tree, reads each into a tuple, and drops them in one
slice: memory does not grow with the file, and no Python runs for the other elements, nested
items included. Every child element read costs a Python object (lxml's proxy), so the readers
below go over each element's children once, the local name of a tag looked up once per
distinct tag, and look no further than they must.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._cyclonedx_items import (
    SUBJECT,
    Component,
    Item,
    RawRating,
    Vulnerability,
    cwe_ids,
    rating,
    vulnerability_id,
)
from remedium.importers.formats._xmlstream import Element, iterreads
from remedium.importers.records import ReportError

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


def _xml_component(elem: Element) -> Component:
    """A ``<component>`` (nested components included) as the item ``cyclonedx.py`` maps."""
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
    return (
        elem.get("type", "").strip(),
        elem.get("bom-ref", "").strip(),
        _text(get("group")),
        _text(get("name")),
        _text(get("version")),
        _text(get("purl")),
        _text(get("cpe")),
        tuple([_xml_component(c) for c in _all(nested, "component")]) if nested is not None else (),
        # CycloneDX 1.0-1.3 carried vulnerabilities inside the component (vulnerability
        # extension): they affect that component (their ``ref`` is the vulnerability's own).
        tuple(
            [
                _xml_vulnerability(vuln)
                for holder in holders
                for vuln in _all(holder, "vulnerability")
            ]
        )
        if holders
        else (),
    )


def _xml_ratings(ratings: Element) -> tuple[RawRating, ...]:
    found: list[RawRating] = []
    names = _LOCAL_NAMES
    for rating_elem in ratings:
        tag = rating_elem.tag
        if (names.get(tag) or _local(tag)) != "rating":
            continue
        get = _kids(rating_elem).get
        score = get("score")
        if score is not None and len(score):
            score = _first(score, "base")
        found.append(
            (_text(score), _text(get("severity")), _text(get("method")), _text(get("vector")))
        )
    return tuple(found)


def _xml_vulnerability(elem: Element, default_ref: str = "") -> Vulnerability:
    get = _kids(elem).get
    analysis = get("analysis")
    state = justification = ""
    if analysis is not None:
        analysis_kids = _kids(analysis)
        state = _text(analysis_kids.get("state"))
        justification = _text(analysis_kids.get("justification"))
    affects = get("affects")
    targets = (
        tuple([_text(_kids(target).get("ref")) for target in _all(affects, "target")])
        if affects is not None
        else ()
    )
    if not targets and default_ref:
        targets = (default_ref.strip(),)
    references = get("references")
    ratings = get("ratings")
    cwes = get("cwes")
    severity, vector, score = rating(_xml_ratings(ratings) if ratings is not None else ())
    return (
        vulnerability_id(
            _text(get("id")),
            (_text(_kids(ref).get("id")) for ref in _all(references, "reference"))
            if references is not None
            else (),
        ),
        severity,
        vector,
        score,
        _text(get("description")) or _text(get("detail")),
        state,
        justification,
        targets,
        cwe_ids([_text(cwe) for cwe in _all(cwes, "cwe")] if cwes is not None else ()),
    )


class _Reader:
    """The state of one pass over a BOM: its root, the header, and whether it was yielded."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.root: Element = None  # set by check_root before any item is read
        self.header: dict[str, Any] = {}
        self.announced = False

    def check_root(self, element: Element) -> None:
        self.root = element
        if _local(element.tag) != "bom":
            raise ReportError(
                f"not a CycloneDX BOM: the root element is <{_local(element.tag)}>",
                filename=self.filename,
            )

    def metadata(self, elem: Element) -> None:
        self.header["serialNumber"] = self.root.get("serialNumber", "")
        kids = _kids(elem)
        component = kids.get("component")
        self.header["metadata"] = {"timestamp": _text(kids.get("timestamp"))}
        self.header[SUBJECT] = _xml_component(component) if component is not None else None

    def announce(self) -> Item:
        self.announced = True
        self.header.setdefault("serialNumber", self.root.get("serialNumber", ""))
        return "metadata", self.header

    def finished(self, done: bool) -> Iterator[Item]:
        """The items finished so far, each list item read then dropped with everything before
        it: only the open path and the rest of the last read stay in memory."""
        root = self.root
        while len(root):
            node = root[0]  # what was read before it is dropped
            complete = done or len(root) > 1
            name = _local(node.tag)
            if name in _ITEMS:
                yield from self._list(node, _ITEMS[name], complete)
            elif name == "metadata":
                if complete:
                    self.metadata(node)
            elif len(node) > 1:  # a section not read (dependencies): its finished children
                del node[: len(node) - 1]
            if not complete:
                return
            del root[0]

    def _list(self, holder: Element, item: str, complete: bool) -> Iterator[Item]:
        count = len(holder) if complete else len(holder) - 1
        if count <= 0:
            return
        names = _LOCAL_NAMES
        for _index, elem in zip(range(count), holder, strict=False):
            tag = elem.tag
            if (names.get(tag) or _local(tag)) != item:
                continue
            if not self.announced:
                yield self.announce()
            if item == "component":
                yield "component", _xml_component(elem)
            else:
                # The 1.0-1.3 extension at BOM level names the component in ``ref``.
                yield "vulnerability", _xml_vulnerability(elem, elem.get("ref", ""))
        del holder[:count]


# list under the root -> the item it lists
_ITEMS = {"components": "component", "vulnerabilities": "vulnerability"}


def xml_items(stream: IO[bytes], filename: str) -> Iterator[Item]:
    """Stream a CycloneDX XML BOM: the items of each list under the root, read as each read of
    the file finishes them, then dropped."""
    reader = _Reader(filename)
    for _root, done in iterreads(
        stream,
        filename,
        root_tag="bom",
        tags=("metadata", "component", "vulnerability"),
        any_dtd=True,
        refused="refused unsafe XML ({kind}): entities and DTDs are not allowed",
        malformed="malformed XML",
        check_root=reader.check_root,
        blank_text=False,  # every field read is a whole text; none is mixed with elements
    ):
        yield from reader.finished(done)
    if not reader.announced:
        yield "metadata", reader.header
