"""Every file of the shared corpus through the real pipeline: imported exactly, or refused with a
clear message and the database unchanged.

Report counts come from the manifests the parser engineers wrote by reading each file
(``corpus_expected_a.json``, ``corpus_expected_b.json``, ``corpus_expected_c.json``); the
database counts follow from them by the pipeline's documented de-duplication (docs/imports.md):
one weakness per (device, product, vulnerability), one installed row per (device, product,
version), findings without a product kept on the scanner's detection, VEX ``not_affected``
findings skipped. SQLite runs
every file; PostgreSQL runs a representative subset (the first file of each folder) to keep the
suite within minutes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remedium.db.registry import metadata
from remedium.importers.batches import UNNAMED, detection_row
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    SoftwareRecord,
)
from remedium.importers.registry import detect_parser, get_parser
from remedium.importers.service import import_report, vendor_product
from remedium.intel.importing import import_feed
from remedium.inventory.models import Device, InstalledSoftware, Weakness

HERE = Path(__file__).parent
CORPUS = Path("/work/shared/corpus")
if not CORPUS.is_dir():
    CORPUS = HERE.parents[2] / "shared" / "corpus"
EXPECTED: dict[str, dict[str, object]] = {
    **json.loads((HERE / "corpus_expected_a.json").read_text()),
    **json.loads((HERE / "corpus_expected_b.json").read_text()),
    **json.loads((HERE / "corpus_expected_c.json").read_text()),
}
FEEDS_EXPECTED: dict[str, dict[str, object]] = json.loads(
    (HERE.parent / "intel" / "feeds_expected.json").read_text()
)
# Formats remedium does not read: each must be refused as not recognised.
UNSUPPORTED = [
    "nmap/dd_nmap_issue4406.xml",
    "nmap/dd_nmap_script_vulners.xml",
    "redhat_satellite/dd_redhatsatellite_many_packages.json",
    "vex/dd_csaf_many_vuln.json",
    "vex/edge/dd_csaf_unsupported_version.json",
    "vex/edge/dd_openvex_not_a_document.json",
    "vex/trivy_csaf-relationships.json",
]
REPORTS = sorted(EXPECTED) + UNSUPPORTED


def _pg_subset(names: list[str]) -> set[str]:
    first: dict[str, str] = {}
    for name in sorted(names):
        first.setdefault(str(Path(name).parent), name)
    return set(first.values())


PG_REPORTS = _pg_subset(REPORTS)


def _intel_units() -> list[str]:
    """Intel files one by one, and the two large record trees as whole folders."""
    root = CORPUS / "intel"
    if not root.is_dir():
        return []
    folders = ["cve_v5/golang_vulndb", "osv/golang_vulndb_GO-2024"]
    units = [f"intel/{f}" for f in folders]
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not any(relative.startswith(f + "/") for f in folders):
            units.append(f"intel/{relative}")
    return units


INTEL = _intel_units()


def row_counts(session: Session) -> dict[str, int]:
    """Rows of every table (to prove a refused file changed nothing)."""
    return {
        table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
        for table in metadata.sorted_tables
    }


def count(session: Session, model: type) -> int:  # type: ignore[type-arg]
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def records_of(path: Path, fmt: str) -> list[ImportRecord]:
    parser = get_parser(fmt)
    with path.open("rb") as stream:
        _info, records = parser.parse(stream, path.name)
        return list(records)


def on_pg_only_in(names: list[str], subset: set[str]) -> list[object]:
    """``names`` as test parameters: those outside ``subset`` run on SQLite only (PostgreSQL
    runs a representative subset to keep the suite within minutes; not collected there)."""
    return [n if n in subset else pytest.param(n, marks=pytest.mark.sqlite_only) for n in names]


def assert_refused_unchanged(session: Session, path: Path, message: str, **kwargs: str) -> None:
    before = row_counts(session)
    with pytest.raises(ReportError) as refused:
        import_report(session, path, **kwargs)  # type: ignore[arg-type]
    session.rollback()
    text = str(refused.value)
    assert message in text
    assert path.name in text  # the error names the file
    assert row_counts(session) == before


@pytest.mark.parametrize("relative", on_pg_only_in(REPORTS, PG_REPORTS))
def test_corpus_report_imports_exactly_or_is_refused(
    corpus: Path, session: Session, relative: str
) -> None:
    path = corpus / relative
    if relative in UNSUPPORTED:
        assert_refused_unchanged(session, path, "format not recognised")
        return
    expected = EXPECTED[relative]
    fmt = str(expected["format"]) if expected["format"] else None
    if "refused" in expected:
        kwargs = {"format": fmt} if fmt else {}
        assert_refused_unchanged(session, path, str(expected["refused"]), **kwargs)
        return
    assert fmt is not None
    assert detect_parser(path).name == fmt
    records = records_of(path, fmt)
    kinds = Counter(type(r).__name__ for r in records)
    assert (kinds["DeviceRecord"], kinds["SoftwareRecord"], kinds["FindingRecord"]) == (
        expected["devices"],
        expected["software"],
        expected["findings"],
    )
    summary = import_report(session, path)
    session.flush()
    # Devices: one per identity; two records of one host collapse into one device.
    refs = {r.device_ref for r in records if isinstance(r, DeviceRecord)}
    devices = count(session, Device)
    assert devices == summary.devices_added
    assert 1 <= devices <= len(refs) or (devices == 0 == len(refs))
    findings = [r for r in records if isinstance(r, FindingRecord)]

    def product_of(f: FindingRecord) -> tuple[str, str]:
        # A finding that names no product is kept on the scanner's detection (no intel here).
        if f.product:
            return vendor_product(f.vendor, f.product, f.purl)
        return detection_row(summary.source, f.title, f.vulnerability_id[:100])[0]

    weaknesses = {
        (f.device_ref, product_of(f), f.vulnerability_id[:100])
        for f in findings
        if f.vex_state != "not_affected" and f.device_ref in refs
    }
    installed = {
        (s.device_ref, vendor_product(s.vendor, s.product, s.purl), s.version[:100])
        for s in records
        if isinstance(s, SoftwareRecord) and s.device_ref in refs
    } | {
        (f.device_ref, product_of(f), f.installed_version[:100])
        for f in findings
        if f.device_ref in refs and (f.product or f.vex_state != "not_affected")
    }
    if devices == len(refs):
        assert count(session, Weakness) == summary.findings_added == len(weaknesses)
        assert count(session, InstalledSoftware) == summary.installed_added == len(installed)
    else:  # merged devices de-duplicate further
        assert count(session, Weakness) == summary.findings_added <= len(weaknesses)
        assert count(session, InstalledSoftware) <= len(installed)
    without_product = sum(1 for f in findings if not f.product and f.device_ref in refs)
    skipped = {s["reason"]: s["count"] for s in summary.skipped}
    assert "finding without an affected product" not in skipped
    kept = {
        (f.device_ref, product_of(f), f.vulnerability_id[:100])
        for f in findings
        if not f.product and f.device_ref in refs and f.vex_state != "not_affected"
    }
    if devices == len(refs):
        assert summary.findings_on_detection == len(kept)
    assert (summary.findings_on_detection > 0) == (without_product > 0)
    # Records of a report that does not name its device: imported without --device, skipped.
    for kind, what in ((FindingRecord, "Finding"), (SoftwareRecord, "Software")):
        unnamed = sum(1 for r in records if isinstance(r, kind) and r.device_ref == UNNAMED)
        reason = (
            f"{what} in a report that does not name its device (give the device: --device NAME)"
        )
        assert skipped.get(reason, 0) == unnamed
    # The same file again changes nothing.
    again = import_report(session, path)
    assert (again.devices_added, again.findings_added, again.installed_added) == (0, 0, 0)
    # Nor does it count as changed what it did not change.
    assert (again.findings_updated, again.findings_reopened, again.software_added) == (0, 0, 0)
    assert again.vulnerabilities_added == 0


PG_INTEL = _pg_subset(INTEL) | {u for u in INTEL if "golang" in u}


@pytest.mark.parametrize("relative", on_pg_only_in(INTEL, PG_INTEL))
def test_corpus_intel_imports_or_is_refused(corpus: Path, session: Session, relative: str) -> None:
    path = corpus / relative
    expected = FEEDS_EXPECTED.get(relative, {})
    if "refused" in expected:
        before = row_counts(session)
        with pytest.raises(ReportError) as refused:
            import_feed(session, path)
        session.rollback()
        assert str(expected["refused"]) in str(refused.value)
        assert path.name in str(refused.value)
        assert row_counts(session) == before
        return
    summary = import_feed(session, path)
    assert summary.records > 0
    assert summary.vulnerabilities_added + summary.vulnerabilities_updated > 0
    if "vulnerabilities" in expected and path.is_file():
        assert summary.vulnerabilities_added == expected["vulnerabilities"]
    if expected.get("ranges"):
        assert summary.ranges_added + summary.ranges_unmatchable > 0
    again = import_feed(session, path)
    assert (again.vulnerabilities_added, again.events, again.ranges_added) == (0, 0, 0)
