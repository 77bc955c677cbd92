"""Every scanner report of the shared corpus against its golden expectation, field by field.

See ``golden.py`` for the file layout and how a golden is refreshed on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.importers.golden import (
    GOLDEN,
    comparable,
    dump,
    first_difference,
    golden_path,
    observe,
    report_files,
    update_requested,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
REPORTS = report_files(CORPUS)


@pytest.mark.parametrize("relative", REPORTS)
def test_report_matches_its_golden(corpus: Path, relative: str) -> None:
    header, *records = observe(corpus / relative)
    actual = [{"file": relative, **header}, *records]
    target = golden_path(relative)
    if update_requested(relative):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump(actual), encoding="utf-8")
    folder = relative.split("/", maxsplit=1)[0]
    assert target.is_file(), (
        f"no golden for {relative}: write one with REMEDIUM_GOLDEN_UPDATE={folder}"
        " and review it against the report"
    )
    expected = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    expected, actual = comparable(expected), comparable(actual)
    assert expected == actual, first_difference(expected, actual)


def test_every_golden_has_its_report(corpus: Path) -> None:
    """A golden whose report left the corpus is stale."""
    reports = set(REPORTS)
    goldens = [p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.jsonl") if p.is_file()]
    stale = sorted(name for name in goldens if name.removesuffix(".jsonl") not in reports)
    assert stale == []
