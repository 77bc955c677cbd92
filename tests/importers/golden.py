"""Golden expectations per corpus report: every record a parser makes of a file, field by field.

A golden file ``tests/importers/golden/<corpus folder>/<file name>.jsonl`` holds, one JSON object
a line: first a header (``{"file", "format", "counts", "skipped"}``, or ``{"file", "refused"}`` for
a file remedium refuses), then one line per record the parser yields, sorted, each with its kind
and every field of the record dataclass (long free text is replaced by its length and a short
hash, so the files stay reviewable). Findings also carry the report's own facts about their
vulnerability (``facts``: the ``VulnerabilityRecord`` the same file gives for that id, if any).

Write or refresh goldens only on purpose, for named corpus folders, and review the diff against
the report itself before committing:

    REMEDIUM_GOLDEN_UPDATE=grype,trivy .venv/bin/pytest tests/importers/test_golden.py

``REMEDIUM_GOLDEN_UPDATE=all`` rewrites every golden.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from remedium.importers.records import (
    FindingRecord,
    ImportRecord,
    ReportError,
    SkippedRecord,
    VulnerabilityRecord,
)
from remedium.importers.registry import detect_parser

GOLDEN = Path(__file__).parent / "golden"
# Corpus folders that hold intelligence feeds or notes rather than scanner reports.
NOT_REPORTS = {"intel"}
# Free-text fields kept as length + hash: they are large, and a parser copies them verbatim.
LONG_TEXT = {"description", "remediation"}


def report_files(corpus: Path) -> list[str]:
    """Every scanner report of the corpus, as paths relative to it."""
    if not corpus.is_dir():
        return []
    found = []
    for path in sorted(corpus.rglob("*")):
        relative = path.relative_to(corpus)
        if not path.is_file() or relative.parts[0] in NOT_REPORTS or len(relative.parts) < 2:
            continue
        if path.name.startswith(".") or path.suffix.lower() == ".md":
            continue
        found.append(relative.as_posix())
    return found


def golden_path(relative: str) -> Path:
    return GOLDEN / f"{relative}.jsonl"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def _fields(record: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, field.name)
        if field.name in LONG_TEXT and isinstance(value, str) and value:
            digest = hashlib.sha256(value.encode()).hexdigest()[:12]
            out[field.name] = f"<{len(value)} chars {digest}>"
        else:
            out[field.name] = _plain(value)
    return out


def observe(path: Path) -> list[dict[str, Any]]:
    """What remedium makes of ``path`` today: the header line, then one line per record."""
    try:
        parser = detect_parser(path)
        with path.open("rb") as stream:
            _info, iterator = parser.parse(stream, path.name)
            records: list[ImportRecord] = list(iterator)
    except ReportError as error:
        return [{"refused": str(error)}]
    facts = {r.vulnerability_id: _fields(r) for r in records if isinstance(r, VulnerabilityRecord)}
    lines: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for record in records:
        if isinstance(record, SkippedRecord):
            skipped[record.reason] += 1
            continue
        line = {"kind": type(record).__name__, **_fields(record)}
        if isinstance(record, FindingRecord) and record.vulnerability_id in facts:
            line["facts"] = facts[record.vulnerability_id]
        lines.append(line)
    lines.sort(key=lambda line: json.dumps(line, sort_keys=True))
    counts = Counter(line["kind"] for line in lines)
    header = {"format": parser.name, "counts": dict(sorted(counts.items()))}
    header["skipped"] = dict(sorted(skipped.items()))
    return [header, *lines]


_KNOWN_FORMATS = re.compile(r"\(known: [^)]*\)")


def comparable(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``lines`` with the list of known formats in a refusal message left out: it grows with
    every format added, which changes nothing about how the file itself is read."""
    return [
        {**line, "refused": _KNOWN_FORMATS.sub("(known: ...)", line["refused"])}
        if isinstance(line.get("refused"), str)
        else line
        for line in lines
    ]


def dump(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n" for line in lines)


def update_requested(relative: str) -> bool:
    """True when ``REMEDIUM_GOLDEN_UPDATE`` names this file's corpus folder (or ``all``)."""
    wanted = {w.strip() for w in os.environ.get("REMEDIUM_GOLDEN_UPDATE", "").split(",")}
    return "all" in wanted or relative.split("/", maxsplit=1)[0] in wanted


def first_difference(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> str:
    """A readable account of where two goldens part: the first differing line and fields."""
    for number, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            keys = sorted(set(want) | set(got))
            fields = [
                f"{k}: expected {want.get(k)!r}, got {got.get(k)!r}"
                for k in keys
                if want.get(k) != got.get(k)
            ]
            where = {
                k: want.get(k)
                for k in ("kind", "device_ref", "vulnerability_id", "product")
                if k in want
            }
            return f"line {number + 1} {where}: " + "; ".join(fields)
    return f"expected {len(expected)} lines, got {len(actual)}"
