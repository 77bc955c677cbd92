"""Vulnerability intelligence feeds: CISA KEV, FIRST EPSS, NVD CVE API 2.0, OSV and CVE JSON 5.

Each feed is a :class:`~remedium.intel.feeds.records.FeedParser` registered by one line in
``FEEDS``; :func:`detect_feed` picks one from a file's first bytes and :func:`read_feed` reads a
file, a folder of files (OSV, CVE JSON 5 record trees) or a zip of them, streaming record by record.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from remedium.importers.records import ReportError, SkippedRecord
from remedium.intel.feeds.records import FeedInfo, FeedParser, FeedRecord

# Order matters for detection: specific feeds before generic ones.
FEEDS: dict[str, str] = {
    "kev-json": "remedium.intel.feeds.kev:KevJsonFeed",
    "kev-csv": "remedium.intel.feeds.kev:KevCsvFeed",
    "epss": "remedium.intel.feeds.epss:EpssFeed",
    "nvd": "remedium.intel.feeds.nvd:NvdFeed",
    "cve5": "remedium.intel.feeds.cve5:Cve5Feed",
    "osv": "remedium.intel.feeds.osv:OsvFeed",
}

SNIFF_BYTES = 64 * 1024


def get_feed(name: str) -> FeedParser:
    """The feed parser registered as ``name``."""
    try:
        target = FEEDS[name]
    except KeyError:
        raise ReportError(
            f"unknown feed {name!r}; known feeds: {', '.join(sorted(FEEDS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    parser: FeedParser = getattr(importlib.import_module(module_name), class_name)()
    return parser


def _detect_head(head: bytes, filename: str) -> FeedParser:
    for name in FEEDS:
        parser = get_feed(name)
        if parser.sniff(head, filename):
            return parser
    raise ReportError(
        "not a known intelligence feed (known: " + ", ".join(sorted(FEEDS)) + ")", filename=filename
    )


def detect_feed(path: Path) -> FeedParser:
    """The feed parser for ``path``: a file, or a folder or zip whose first JSON file decides."""
    if path.is_dir():
        first = next(_folder_files(path), None)
        if first is None:
            raise ReportError("the folder holds no .json files", filename=path.name)
        return detect_feed(first)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = next((m for m in archive.namelist() if m.endswith(".json")), None)
            if member is None:
                raise ReportError("the zip holds no .json files", filename=path.name)
            with archive.open(member) as stream:
                return _detect_head(stream.read(SNIFF_BYTES), member)
    with path.open("rb") as stream:
        return _detect_head(stream.read(SNIFF_BYTES), path.name)


def read_feed(path: Path, feed: str | None = None) -> tuple[FeedInfo, Iterator[FeedRecord]]:
    """Read a feed file, folder or zip. Files of a folder or zip that cannot be read are skipped
    with the reason (one broken advisory must not block a whole database); a single file that
    cannot be read raises :class:`ReportError`.
    """
    parser = get_feed(feed) if feed else detect_feed(path)
    if path.is_dir():
        return FeedInfo(feed=parser.name), _many_files(parser, path)
    if zipfile.is_zipfile(path):
        return FeedInfo(feed=parser.name), _zip_members(parser, path)
    stream = path.open("rb")
    try:
        info, records = parser.parse(stream, path.name)
    except BaseException:
        stream.close()
        raise
    return info, _closing(stream, records)


def _closing(stream: IO[bytes], records: Iterator[FeedRecord]) -> Iterator[FeedRecord]:
    try:
        yield from records
    finally:
        stream.close()


def _folder_files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*.json")) if p.is_file())


def _many_files(parser: FeedParser, folder: Path) -> Iterator[FeedRecord]:
    for path in _folder_files(folder):
        with path.open("rb") as stream:
            yield from _one_member(parser, stream, str(path.relative_to(folder)))


def _zip_members(parser: FeedParser, path: Path) -> Iterator[FeedRecord]:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.endswith(".json"):
                continue
            with archive.open(member) as stream:
                yield from _one_member(parser, stream, member.filename)


def _one_member(parser: FeedParser, stream: IO[bytes], name: str) -> Iterator[FeedRecord]:
    try:
        _info, records = parser.parse(stream, name)
        yield from records
    except ReportError as exc:
        yield SkippedRecord(f"refused: {exc}", name)


__all__ = ["FEEDS", "FeedInfo", "FeedParser", "FeedRecord", "detect_feed", "get_feed", "read_feed"]
