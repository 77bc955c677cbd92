"""Safe, streaming XML reading shared by the XML scanner parsers (Nessus, OpenVAS, Qualys, XCCDF).

Files come from users, so entity declarations are refused (``defusedxml``: no billion laughs, no
external entities) and the tree is pruned as it is read: memory stays flat however large the file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from remedium.importers.limits import field_too_large, max_field_bytes
from remedium.importers.records import ReportError

HEAD_BYTES = 64 * 1024


def local(tag: str) -> str:
    """The element name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def text(element: Element | None) -> str:
    """The stripped text of ``element``, or "" when it is absent."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()


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


class _EventGap:
    """The stream as the XML parser reads it, refusing more than ``REMEDIUM_MAX_FIELD_MB`` read
    without any parser event: one text, attribute, CDATA section or comment that large would be
    built whole in memory (importers/limits.py)."""

    def __init__(self, stream: IO[bytes], filename: str) -> None:
        self._stream = stream
        self._filename = filename
        self._limit = max_field_bytes()
        self._read = 0
        self._mark = 0

    def mark(self) -> None:
        """An event arrived: a new gap starts."""
        self._mark = self._read

    def read(self, size: int = -1) -> bytes:
        """What the parser asks for, unless the gap since the last event is too large."""
        if self._read - self._mark > self._limit:
            raise field_too_large(self._filename, f"byte {self._read}")
        data = self._stream.read(size)
        self._read += len(data)
        return data


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
    ends (its children already dropped), by local name.

    Every other finished element outside a wanted subtree is dropped at once, and wanted subtrees
    are dropped after the caller has seen them, so only the open path stays in memory.
    """
    stack: list[Element] = []
    open_wanted = 0
    source = _EventGap(stream, filename)
    try:
        for event, element in iterparse(source, events=("start", "end")):
            source.mark()
            name = local(element.tag)
            if event == "start":
                stack.append(element)
                if name in end_tags:
                    open_wanted += 1
                if name in start_tags:
                    yield "start", element
                continue
            stack.pop()
            if name in end_tags:
                open_wanted -= 1
                yield "end", element
            elif name in close_tags:
                yield "close", element
            if open_wanted == 0 and stack:
                # Prune: the parent no longer needs this finished subtree.
                stack[-1].remove(element)
    except ParseError as exc:
        line, column = exc.position
        raise ReportError(
            f"not well-formed XML ({_reason(exc)})",
            where=f"line {line}, column {column}",
            filename=filename,
        ) from None
    except DefusedXmlException as exc:
        raise ReportError(
            "XML refused: it declares entities or a DTD remedium does not load "
            f"({type(exc).__name__})",
            filename=filename,
        ) from None


def _reason(exc: ParseError) -> str:
    # ElementTree appends ": line X, column Y" which the "where" already carries.
    return re.sub(r":\s*line \d+, column \d+$", "", str(exc))


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
