"""Intelligence feed parsers: KEV, EPSS, NVD API 2.0, OSV and CVE JSON 5.

Every file under the corpus's ``intel/`` folder is read on its own and its records counted against
``feeds_expected.json`` (written from reading the files with json/csv, not with these parsers), or
must be refused with a clear message.
"""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from collections import Counter
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from remedium.importers.records import ReportError, SkippedRecord, VulnerabilityRecord
from remedium.intel.feeds import FEEDS, detect_feed, get_feed, read_feed
from remedium.intel.feeds.records import AffectedRange, FeedRecord

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HERE / "feeds_expected.json").read_text())


def records_of(path: Path, feed: str | None = None) -> list[FeedRecord]:
    _info, records = read_feed(path, feed)
    return list(records)


def of(records: list[FeedRecord], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_intel_corpus_file_parses_to_the_expected_counts_or_is_refused(
    corpus: Path, name: str
) -> None:
    expected = EXPECTED[name]
    path = corpus / name
    if "refused" in expected:
        with pytest.raises(ReportError) as refused:
            records_of(path)
        assert expected["refused"] in str(refused.value)
        assert path.name in str(refused.value)
        return
    assert detect_feed(path).name == expected["feed"]
    kinds = Counter(type(r) for r in records_of(path))
    assert (kinds[VulnerabilityRecord], kinds[AffectedRange], kinds[SkippedRecord]) == (
        expected["vulnerabilities"],
        expected["ranges"],
        expected["skipped"],
    )


def test_a_folder_of_osv_records_is_read_as_one_feed(corpus: Path) -> None:
    folder = corpus / "intel" / "osv" / "golang_vulndb_GO-2024"
    per_file = [v for k, v in EXPECTED.items() if k.startswith("intel/osv/golang_vulndb_GO-2024/")]
    kinds = Counter(type(r) for r in records_of(folder))
    assert kinds[VulnerabilityRecord] == sum(v["vulnerabilities"] for v in per_file)
    assert kinds[AffectedRange] == sum(v["ranges"] for v in per_file)


# --- KEV -----------------------------------------------------------------------------------------


def test_kev_json_marks_entries_listed_with_dates_and_ransomware_use() -> None:
    info, iterator = read_feed(FIXTURES / "kev.json")
    records = list(iterator)
    assert (info.feed, info.version) == ("kev-json", "2024.07.01")
    pan, citrix = of(records, VulnerabilityRecord)
    assert pan.vulnerability_id == "CVE-2024-3400"
    assert (pan.kev_listed, pan.kev_ransomware, citrix.kev_ransomware) == (True, True, False)
    assert pan.kev_date_added == datetime(2024, 4, 12, tzinfo=UTC)
    assert pan.kev_due_date == datetime(2024, 4, 19, tzinfo=UTC)
    assert pan.cwe_ids == ("CWE-77", "CWE-20")
    (skipped,) = of(records, SkippedRecord)
    assert skipped.where == "vulnerabilities[2]"


def test_kev_csv_gives_the_same_facts_as_json() -> None:
    records = of(records_of(FIXTURES / "kev.csv"), VulnerabilityRecord)
    assert detect_feed(FIXTURES / "kev.csv").name == "kev-csv"
    assert [(r.vulnerability_id, r.kev_ransomware, r.cwe_ids) for r in records] == [
        ("CVE-2024-3400", True, ("CWE-77",)),
        ("CVE-2023-4966", False, ("CWE-119", "CWE-120")),
    ]
    assert records[1].kev_due_date == datetime(2023, 11, 8, tzinfo=UTC)


# --- EPSS ----------------------------------------------------------------------------------------


def test_epss_reads_the_model_line_and_scores() -> None:
    info, iterator = read_feed(FIXTURES / "epss.csv")
    records = list(iterator)
    assert (info.version, info.released_at) == ("v2025.03.14", datetime(2025, 6, 1, tzinfo=UTC))
    assert [(r.vulnerability_id, r.epss, r.epss_percentile) for r in records] == [
        ("CVE-2024-3400", 0.94512, 0.99987),
        ("CVE-2023-4966", 0.971, 0.9999),
    ]


def test_epss_bad_number_is_refused_with_its_line() -> None:
    with pytest.raises(ReportError, match=r"epss_bad_number\.csv: line 2: not a number"):
        records_of(FIXTURES / "epss_bad_number.csv")


# --- NVD -----------------------------------------------------------------------------------------


def test_nvd_api2_prefers_primary_metrics_and_yields_vulnerable_cpe_ranges() -> None:
    records = records_of(FIXTURES / "nvd_api2.json")
    (cve,) = of(records, VulnerabilityRecord)
    assert cve.vulnerability_id == "CVE-2024-0001"
    assert cve.description == "Heap overflow in Example Server."
    assert cve.cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert cve.cvss_v4_vector
    assert cve.cvss_v4_vector.startswith("CVSS:4.0/")
    assert cve.severity == "Critical"
    assert cve.cwe_ids == ("CWE-122",)
    assert (cve.kev_listed, cve.kev_date_added) == (True, datetime(2024, 2, 10, tzinfo=UTC))
    assert cve.published_on == datetime(2024, 2, 1, 10, 15, tzinfo=UTC)
    ranged, exact = of(records, AffectedRange)  # the kernel platform is not vulnerable itself
    assert (ranged.package, ranged.introduced, ranged.fixed, ranged.version_range) == (
        "server",
        "2.0",
        "2.4.1",
        ">=2.0, <2.4.1",
    )
    assert (exact.introduced, exact.last_affected, exact.version_range) == (
        "1.9.7",
        "1.9.7",
        "=1.9.7",
    )
    assert [s.reason for s in of(records, SkippedRecord)] == ["rejected CVE"]


def test_nvd_legacy_feed_is_refused_with_the_way_forward() -> None:
    with pytest.raises(ReportError, match=r"retired.*CVE API 2\.0"):
        records_of(FIXTURES / "nvd_legacy_1_1.json")


# --- OSV -----------------------------------------------------------------------------------------


def test_osv_record_yields_each_cve_alias_and_range_segments() -> None:
    records = records_of(FIXTURES / "osv_record.json")
    vulnerabilities = of(records, VulnerabilityRecord)
    assert [v.vulnerability_id for v in vulnerabilities] == ["CVE-2024-1000", "CVE-2024-1001"]
    assert vulnerabilities[0].cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
    assert vulnerabilities[0].cwe_ids == ("CWE-22",)
    ranges = [r for r in of(records, AffectedRange) if r.vulnerability_id == "CVE-2024-1000"]
    assert [(r.package, r.purl, r.version_range) for r in ranges] == [
        ("examplelib", "pkg:pypi/examplelib", "<1.4.2"),
        ("examplelib", "pkg:pypi/examplelib", ">=2.0.0, <2.0.3"),
        ("python3-examplelib", "pkg:deb/debian/python3-examplelib?arch=source", "=1.3.0-1"),
        ("python3-examplelib", "pkg:deb/debian/python3-examplelib?arch=source", "=1.4.0-2"),
    ]
    assert ranges[1].ecosystem == "PyPI"
    assert [s.reason for s in of(records, SkippedRecord)] == [
        "GIT commit range: cannot be matched to installed versions"
    ] * 2


def test_osv_folder_and_zip_skip_withdrawn_and_broken_records(tmp_path: Path) -> None:
    folder = FIXTURES / "osv_folder"
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.iterdir()):
            zipped.write(path, f"osv/{path.name}")
    for source in (folder, archive):
        assert detect_feed(source).name == "osv"
        records = records_of(source)
        (vulnerability,) = of(records, VulnerabilityRecord)
        assert vulnerability.vulnerability_id == "GO-2024-0001"  # no CVE alias: its own id
        (affected,) = of(records, AffectedRange)
        assert (affected.purl, affected.last_affected, affected.version_range) == (
            "pkg:golang/example.test/mod",
            "1.2.9",
            ">=1.2.0, <=1.2.9",
        )
        reasons = sorted(s.reason for s in of(records, SkippedRecord))
        assert reasons[0].startswith("refused: ")
        assert "broken.json: at affected: broken JSON" in reasons[0]
        assert reasons[1] == "withdrawn on 2024-01-12T00:00:00Z"


# --- CVE JSON 5 ----------------------------------------------------------------------------------


def test_cve5_record_takes_metrics_from_adp_when_the_cna_has_none() -> None:
    (record,) = records_of(FIXTURES / "cve5_record.json")
    assert isinstance(record, VulnerabilityRecord)
    assert (record.vulnerability_id, record.description) == (
        "CVE-2024-5000",
        "SQL injection in Example CRM.",
    )
    assert (record.cvss_v3_vector, record.severity) == (
        "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N",
        "High",
    )
    assert record.cwe_ids == ("CWE-89",)
    assert record.updated_on == datetime(2024, 6, 15, tzinfo=UTC)
    (rejected,) = records_of(FIXTURES / "cve5_rejected.json")
    assert isinstance(rejected, SkippedRecord)
    assert rejected.reason == "rejected CVE"


# --- registry and streaming ----------------------------------------------------------------------


def test_get_feed_knows_every_registered_feed_and_refuses_others() -> None:
    assert {get_feed(name).name for name in FEEDS} == set(FEEDS)
    with pytest.raises(ReportError, match="unknown feed 'nope'"):
        get_feed("nope")


def test_kev_json_memory_stays_flat_as_the_catalog_grows() -> None:
    entry = (
        '{{"cveID": "CVE-2024-{n:05d}", "vendorProject": "v", "product": "p", '
        '"dateAdded": "2024-01-01", '
        '"shortDescription": "' + "d" * 300 + '", "dueDate": "2024-02-01", '
        '"knownRansomwareCampaignUse": "Unknown", "cwes": ["CWE-79"]}}'
    )

    def catalog(entries: int) -> bytes:
        body = ",".join(entry.format(n=n) for n in range(entries))
        return ('{"catalogVersion": "x", "vulnerabilities": [' + body + "]}").encode()

    def peak(data: bytes) -> tuple[int, int]:
        tracemalloc.start()
        _info, records = get_feed("kev-json").parse(BytesIO(data), "kev.json")
        listed = sum(1 for r in records if isinstance(r, VulnerabilityRecord))
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return listed, top

    small_count, small_peak = peak(catalog(1_000))
    big_count, big_peak = peak(catalog(20_000))  # ~9 MB
    assert (small_count, big_count) == (1_000, 20_000)
    assert big_peak < small_peak * 2 + 1_000_000
