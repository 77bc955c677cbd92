"""Safe, streaming XML reading shared by the XML scanner parsers (Nessus, OpenVAS, Qualys, XCCDF).

Files come from users, so the parser (lxml's libxml2) never expands entities nor loads a DTD
or anything over the network, a document declaring entities is refused (no billion laughs, no
external entities), and the tree is pruned as it is read: memory stays flat however large the
file. Only the elements a parser asks for reach Python; the rest is parsed in C.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, TypeAlias

from remedium.importers.limits import field_too_large, max_field_bytes
from remedium.importers.records import ReportError

HEAD_BYTES = 64 * 1024

# The elements ``walk`` and ``iterparse`` yield: lxml's ``_Element``, with the ElementTree API
# (``tag``, ``get``, ``text``, children) and lxml's own (``getparent``, ``iterchildren``). lxml
# ships no type information (mypy would read it as Any), and is imported only when an XML report
# is read: this module's other helpers serve JSON and CSV parsers too.
Element: TypeAlias = Any


def local(tag: str) -> str:
    """The element name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def text(element: Element | None) -> str:
    """The stripped text of ``element``, or "" when it is absent."""
    value: str | None = None if element is None else element.text
    return "" if value is None else value.strip()


def child(element: Element, name: str) -> Element | None:
    """The first direct child whose local name is ``name`` (namespaces vary between versions)."""
    for sub in element:
        if local(sub.tag) == name:
            return sub
    return None


def children(element: Element, name: str) -> list[Element]:
    """The direct children whose local name is ``name``."""
    return [sub for sub in element if local(sub.tag) == name]


def child_text(element: Element, name: str) -> str:
    """The text of the first direct child named ``name``."""
    return text(child(element, name))


def peek(stream: IO[bytes]) -> tuple[bytes, IO[bytes]]:
    """Read the head of ``stream``; return it and a stream that still starts at the beginning."""
    head = stream.read(HEAD_BYTES)
    return head, io.BufferedReader(_Replay(head, stream))


class _Replay(io.RawIOBase):
    """A read-only stream that first replays bytes already read, then the rest of the source."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class FieldGuard:
    """The stream as the XML parser reads it, refusing a run of more than
    ``REMEDIUM_MAX_FIELD_MB`` bytes without a ``<``: one text or run of whitespace that large
    would be built whole in memory (importers/limits.py). The parser is handed at most that
    many bytes a read, so a run inside one read is shorter than the limit; a run across reads
    is counted. (libxml2 itself refuses any single text, CDATA section, comment or attribute
    value over 10 MB, ``<`` or not, unless the limit is set higher: see :func:`iterparse`.)"""

    def __init__(self, stream: IO[bytes], filename: str) -> None:
        self._stream = stream
        self._filename = filename
        self._limit = max(1, max_field_bytes())
        self._read = 0
        self._run = 0  # bytes since the last "<"

    @property
    def read_bytes(self) -> int:
        """How many bytes the parser has been given."""
        return self._read

    def read(self, size: int = -1) -> bytes:
        """What the parser asks for, unless the run without a ``<`` grows too long."""
        want = self._limit if size < 0 else min(size, self._limit)
        data = self._stream.read(want)
        first = data.find(b"<")
        if first < 0:
            self._run += len(data)
            run = self._run
        else:
            run = self._run + first  # the run that the first "<" ends
            self._run = len(data) - data.rfind(b"<") - 1
        if run > self._limit:
            raise field_too_large(self._filename, f"byte {self._read + len(data)}")
        self._read += len(data)
        return data


# The parser: no network, no DTD loaded, entities kept as references (never expanded, and a
# document declaring any is refused below), libxml2's size limits on (``huge_tree`` off, unless
# REMEDIUM_MAX_FIELD_MB is above libxml2's own 10 MB), and comments and processing instructions
# dropped so every child is an element.
_LIBXML2_TEXT_LIMIT = 10_000_000  # bytes of one text node, without huge_tree
_PARSER_OPTIONS: dict[str, object] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}


_REFUSED = "XML refused: it declares entities or a DTD remedium does not load ({kind})"


def iterparse(
    stream: IO[bytes],
    filename: str,
    *,
    tags: Iterable[str],
    events: tuple[str, ...],
    any_dtd: bool = False,
    refused: str = _REFUSED,
    malformed: str = "not well-formed XML",
    check_root: Callable[[Element], None] | None = None,
    blank_text: bool = True,
) -> Iterator[tuple[str, Element]]:
    """lxml's ``iterparse`` over ``stream``, safe for files users send: events for the elements
    whose local name is in ``tags`` only (libxml2 builds the tree in C; nothing else reaches
    Python), the field limit enforced while read (:class:`FieldGuard`), documents declaring
    entities (with ``any_dtd``, any DOCTYPE) refused with ``refused``, ``check_root`` called
    with the root element before any event is yielded, and syntax errors raised as
    :class:`ReportError` (``malformed (reason)``) with the place. Without ``blank_text``,
    whitespace-only text between elements is not kept (for a caller that reads no mixed content:
    less to build).

    The caller prunes the tree it no longer needs (:func:`prune`): the parser keeps building it.
    """
    from lxml import etree  # noqa: PLC0415 — 27 ms, only for an XML report (module docstring)

    context = etree.iterparse(
        FieldGuard(stream, filename),
        events=events,
        tag=[f"{{*}}{name}" for name in tags],
        remove_blank_text=not blank_text,
        huge_tree=max_field_bytes() > _LIBXML2_TEXT_LIMIT,
        **_PARSER_OPTIONS,
    )
    checked = False
    try:
        for event, element in context:
            if not checked:
                _check(element.getroottree(), filename, any_dtd, refused, check_root)
                checked = True
            yield event, element
        if not checked and context.root is not None:
            _check(context.root.getroottree(), filename, any_dtd, refused, check_root)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, filename, malformed) from None


def iterreads(
    stream: IO[bytes],
    filename: str,
    *,
    root_tag: str,
    tags: Iterable[str],
    any_dtd: bool = False,
    refused: str = _REFUSED,
    malformed: str = "not well-formed XML",
    check_root: Callable[[Element], None] | None = None,
    blank_text: bool = True,
) -> Iterator[tuple[Element, bool]]:
    """The document's root after each read of ``stream``, with whether the document is complete:
    for a caller that reads the finished children of a few known elements itself, where
    :func:`iterparse` would hand Python an event for every element named in ``tags`` (nested
    ones too). The parser, the reads, the field limit and the errors are those of
    :func:`iterparse` with the same arguments and ``events=("end",)``: the checks run once the
    root is known (the first element named ``root_tag``, or an event), and a document that fails
    them is read on as :func:`iterparse` reads it, to raise the error it would raise.

    Every child of an element but its last is finished; the last is when the document is. The
    caller prunes what it has read: the parser keeps building the tree.
    """
    from lxml import etree  # noqa: PLC0415 — 27 ms, only for an XML report (module docstring)

    options: dict[str, Any] = {
        "remove_blank_text": not blank_text,
        "huge_tree": max_field_bytes() > _LIBXML2_TEXT_LIMIT,
        **_PARSER_OPTIONS,
    }
    # The parser whose tree is read: one event, the root's start (a nested one is ignored).
    fast: Any = etree.XMLPullParser(events=("start",), tag=f"{{*}}{root_tag}", **options)
    # Until the checks have passed, the document is also read as iterparse reads it.
    compat = etree.XMLPullParser(events=("end",), tag=[f"{{*}}{n}" for n in tags], **options)
    guard = FieldGuard(stream, filename)
    checking = True
    try:
        root: Element = None
        while checking:
            data = guard.read(_READ_BYTES)
            if not data:  # no event: iterparse checks the finished document
                tree = compat.close().getroottree()
                _check(tree, filename, any_dtd, refused, check_root)
                yield (fast.close() if fast is not None else tree.getroot()), True
                return
            compat.feed(data)
            events = [element for _event, element in compat.read_events()]
            starts: list[Element] = []
            if fast is not None:
                fast.feed(data)
                starts = [element for _event, element in fast.read_events()]
                if not starts and guard.read_bytes > _ROOT_WITHIN:
                    fast = None  # its root is not ``root_tag``: one tree is enough
            if not (starts or events):
                continue
            # A root not named ``root_tag`` is known by an event only: that tree is read on.
            parser, root = (fast, starts[0]) if starts else (compat, events[0])
            root = root.getroottree().getroot()
            try:
                _check(root.getroottree(), filename, any_dtd, refused, check_root)
            except ReportError:
                if not events:
                    _read_to_first_event(compat, guard)
                raise
            checking = False
            yield root, False
        while data := guard.read(_READ_BYTES):
            parser.feed(data)
            for _event in parser.read_events():
                pass  # a nested element named ``root_tag``, or (a root named otherwise) ``tags``
            yield root, False
        parser.close()
        yield root, True
    except etree.XMLSyntaxError as exc:
        if checking:  # the events before the error come first, and the first one checks
            pending = next(iter(compat.read_events()), None)
            if pending is not None:
                _check(pending[1].getroottree(), filename, any_dtd, refused, check_root)
        raise _syntax_error(exc, filename, malformed) from None


_READ_BYTES = 32768  # what lxml's iterparse reads at a time
# Bytes before the root element (the prolog: declaration, comments) past which a root not yet
# named ``root_tag`` is taken for another: its second tree is no longer built.
_ROOT_WITHIN = 4 * 1024 * 1024


def _read_to_first_event(compat: Any, guard: FieldGuard) -> None:
    """Read on as :func:`iterparse` would until its first event, where it would refuse the
    document (the caller's error then): a syntax error or the field limit may come first."""
    while data := guard.read(_READ_BYTES):
        compat.feed(data)
        if next(iter(compat.read_events()), None) is not None:
            return
    compat.close()


def _check(
    tree: Any,
    filename: str,
    any_dtd: bool,
    refused: str,
    check_root: Callable[[Element], None] | None,
) -> None:
    """Refuse a document that declares entities (or, with ``any_dtd``, has a DOCTYPE at all):
    the parser never expands nor loads them, and remedium reads no such report. Then the
    caller's look at the root."""
    info = tree.docinfo
    dtd = info.internalDTD
    declares = dtd is not None and next(iter(dtd.iterentities()), None) is not None
    if declares or (any_dtd and (dtd is not None or info.doctype)):
        kind = "EntitiesForbidden" if declares else "DTDForbidden"
        raise ReportError(refused.format(kind=kind), filename=filename)
    if check_root is not None:
        check_root(tree.getroot())


def _syntax_error(exc: Any, filename: str, malformed: str) -> ReportError:
    # iterparse may report a generic "no element found" at (0, 0): the log has the real cause.
    last = exc.error_log.last_error
    message, line, column = (
        (last.message, last.line, last.column) if last is not None else (exc.msg, *exc.position)
    )
    return ReportError(
        f"{malformed} ({_reason(message)})",
        where=f"line {line}, column {column}",
        filename=filename,
    )


def prune(element: Element) -> None:
    """Drop ``element`` (finished and read) and everything finished before it, at its level and
    at each ancestor's: only the open path stays in memory."""
    node = element
    parent = node.getparent()
    while parent is not None:
        while node.getprevious() is not None:
            del parent[0]
        node, parent = parent, parent.getparent()
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def walk(
    stream: IO[bytes],
    filename: str,
    *,
    end_tags: frozenset[str],
    start_tags: frozenset[str] = frozenset(),
    close_tags: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, Element]]:
    """Yield ``("start", element)`` for ``start_tags`` (attributes only), ``("end", element)``
    for complete ``end_tags`` subtrees and ``("close", element)`` when a ``close_tags`` element
    ends, by local name.

    Elements are lxml's (the ElementTree API: ``tag``, ``get``, ``text``, children). A wanted
    subtree is dropped after the caller has seen it, with everything finished before it, so
    only the open path (and what was read since the last wanted element) stays in memory.
    """
    open_wanted = 0
    tags = end_tags | start_tags | close_tags
    for event, element in iterparse(stream, filename, tags=tags, events=("start", "end")):
        name = local(element.tag)
        if event == "start":
            if name in end_tags:
                open_wanted += 1
            if name in start_tags:
                yield "start", element
            continue
        if name in end_tags:
            open_wanted -= 1
            yield "end", element
        elif name in close_tags:
            yield "close", element
        if open_wanted == 0:
            prune(element)


def _reason(message: str) -> str:
    # Both parsers may append the place, which the "where" already carries.
    return re.sub(r"[:,]\s*line \d+, column \d+$", "", message.strip())


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or offset; naive means UTC), or None when it is not one."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def severity_from_score(score: float) -> str:
    """The CVSS v3 qualitative rating of a 0-10 score ("" for 0: informational)."""
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    if score > 0.0:
        return "Low"
    return ""


def os_platform(description: str) -> str:  # noqa: PLR0911 (one return per platform reads best)
    """remedium's OS platform for a scanner's free-text OS name ("Other" when unsure)."""
    value = description.lower()
    if "windows" in value:
        for marker, platform in (
            ("server 2022", "WindowsServer2022"),
            ("server 2019", "WindowsServer2019"),
            ("server 2016", "WindowsServer2016"),
            ("windows 11", "Windows11"),
            ("windows 10", "Windows10"),
        ):
            if marker in value:
                return platform
        return "Other"
    if any(word in value for word in ("mac os", "macos", "os x", "darwin")):
        return "macOS"
    if "android" in value:
        return "Android"
    if "cisco" not in value and re.search(r"\bios\b", value):
        return "iOS"
    linux_words = (
        "linux",
        "ubuntu",
        "debian",
        "red hat",
        "rhel",
        "centos",
        "suse",
        "fedora",
        "alpine",
    )
    if any(word in value for word in linux_words):
        return "Linux"
    return "Other"


def cpe_vendor_product(cpe: str) -> tuple[str, str, str]:
    """(vendor, product, version) named by a CPE 2.2 URI or 2.3 string; "" where absent or "*"."""
    if cpe.startswith("cpe:2.3:"):
        parts = re.split(r"(?<!\\):", cpe)[3:6]
    elif cpe.startswith("cpe:/"):
        parts = cpe[5:].split(":")[1:4]
    else:
        return "", "", ""
    parts += [""] * (3 - len(parts))
    vendor, product, version = (
        p.replace("\\", "") if p not in ("*", "-") else "" for p in parts[:3]
    )
    return vendor, product, version


_CPE_NAME = re.compile(r"^(?:[px]-)?cpe:", re.IGNORECASE)


def cpe_part(cpe: str) -> str:
    """The part a CPE 2.2 URI or 2.3 string names: "a" (application), "o" (operating system)
    or "h" (hardware); "" for anything else, Tenable's package (``p-cpe:``) and private
    (``x-cpe:``) names included."""
    if cpe.startswith("cpe:2.3:"):
        part = cpe[8:].split(":", 1)[0]
    elif cpe.startswith("cpe:/"):
        part = cpe[5:].split(":", 1)[0]
    else:
        return ""
    return part if part in ("a", "o", "h") else ""


def detected_cpe(names: Iterable[str]) -> str:
    """The CPE of the product a scanner names in a list of CPEs, or "" when it names none.

    The first CPE of the list decides: it names the product when it is an application or an
    operating system (part ``a`` or ``o``). A hardware CPE, or a Tenable package (``p-cpe:``) or
    private (``x-cpe:``) name listed first, names no product remedium reads, and the CPEs after
    it (the OS a package check runs on) are not taken for the product either.
    """
    for name in names:
        value = name.strip()
        if _CPE_NAME.match(value):
            return value if cpe_part(value) in ("a", "o") else ""
    return ""


def cpe_version(vendor: str, product: str, cpes: Iterable[str]) -> str:
    """The version at which ``cpes`` name the product ``vendor``:``product``, when they name it
    at one version only ("" when they name it without a version, at several, or not at all)."""
    if not product:
        return ""
    versions = {
        version
        for cpe in cpes
        if cpe_part(cpe) in ("a", "o")
        for cpe_vendor, cpe_product, version in [cpe_vendor_product(cpe)]
        if (cpe_vendor, cpe_product) == (vendor, product) and version
    }
    return versions.pop() if len(versions) == 1 else ""
