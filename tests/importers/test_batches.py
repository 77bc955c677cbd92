"""The digest that turns a parser's records into batches (pure: no database)."""

from __future__ import annotations

from remedium.importers.batches import UNNAMED, Digest
from remedium.importers.records import (
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    SkippedRecord,
    SoftwareRecord,
    VulnerabilityRecord,
)


def finding(
    ref: str, cve: str, product: str = "openssl", vex_state: str = "", vex_justification: str = ""
) -> FindingRecord:
    return FindingRecord(
        device_ref=ref,
        vulnerability_id=cve,
        vendor="OpenSSL",
        product=product,
        installed_version="3.0.1",
        fixed_version="3.0.9",
        title=f"{cve} title",
        vex_state=vex_state,
        vex_justification=vex_justification,
    )


def test_numbers_devices_and_products_in_file_order_and_drops_repeats() -> None:
    digest = Digest()
    for record in (
        DeviceRecord(device_ref="a", name="a"),
        DeviceRecord(device_ref="b", name="b"),
        SoftwareRecord(device_ref="b", vendor="Acme", product="Tool", version="1"),
        finding("a", "CVE-2024-0001"),
        finding("a", "CVE-2024-0001"),  # the same finding twice
        finding("b", "CVE-2024-0001"),
        finding("b", "CVE-2024-0002"),
        finding("zz", "CVE-2024-0003"),  # a device the report does not describe
        finding(
            "a", "CVE-2024-0004", vex_state="not_affected", vex_justification="code_not_present"
        ),
        SkippedRecord("informational"),
    ):
        digest.add(record)
    batch = digest.take(123)
    assert [(n, r.device_ref) for n, r in batch.devices] == [(0, "a"), (1, "b")]
    assert [key for key, _row in batch.products] == [("acme", "tool"), ("openssl", "openssl")]
    assert batch.findings == [
        (0, 1, "CVE-2024-0001", "3.0.1", "3.0.9", None),
        (1, 1, "CVE-2024-0001", "3.0.1", "3.0.9", None),
        (1, 1, "CVE-2024-0002", "3.0.1", "3.0.9", None),
    ]
    assert batch.installs == [(1, 0, "1"), (0, 1, "3.0.1"), (1, 1, "3.0.1")]
    assert batch.software_devices == [1]
    # What a finding says of a vulnerability is kept once, from its first finding.
    assert [f.vulnerability_id for f in batch.finding_facts] == ["CVE-2024-0001", "CVE-2024-0002"]
    assert batch.finding_facts[0].description == "CVE-2024-0001 title"
    assert batch.skipped == {
        "finding for a device the report does not describe": 1,
        "not affected according to the report's VEX (code_not_present)": 1,
        "informational": 1,
    }
    assert batch.position == 123
    # The next batch numbers on, and does not repeat products or facts already sent.
    digest.add(DeviceRecord(device_ref="c", name="c"))
    digest.add(finding("c", "CVE-2024-0001"))
    following = digest.take()
    assert [n for n, _r in following.devices] == [2]
    assert following.products == []
    assert following.finding_facts == []
    assert following.findings == [(2, 1, "CVE-2024-0001", "3.0.1", "3.0.9", None)]


def test_findings_without_a_product_wait_for_placement() -> None:
    digest = Digest()
    digest.add(DeviceRecord(device_ref="h", name="h"))
    digest.add(finding("h", "CVE-2024-0009", product=""))
    digest.add(finding("h", "CVE-2024-0009", product=""))
    batch = digest.take()
    assert (
        batch.unplaced == [(0, "CVE-2024-0009", "3.0.1", "3.0.9", None, "CVE-2024-0009 title")] * 2
    )
    assert batch.findings == []
    assert [f.vulnerability_id for f in batch.finding_facts] == ["CVE-2024-0009"]


def test_the_unnamed_device_is_the_one_named_on_import() -> None:
    records: list[ImportRecord] = [
        DeviceRecord(device_ref=UNNAMED, name="", os_platform="Linux"),
        finding(UNNAMED, "CVE-2024-0001"),
        ConfigurationResultRecord(device_ref=UNNAMED, configuration_id="c1", is_compliant=False),
    ]
    named = Digest("web-01 ")
    for record in records:
        named.add(record)
    batch = named.take()
    assert [(n, r.name, r.os_platform) for n, r in batch.devices] == [(0, "web-01", "Linux")]
    assert len(batch.findings) == 1
    assert batch.results == [(0, "c1", False)]

    unnamed = Digest()
    for record in records:
        unnamed.add(record)
    batch = unnamed.take()
    assert batch.devices == []
    assert batch.findings == []
    assert batch.skipped == {
        "Device in a report that does not name its device (give the device: --device NAME)": 1,
        "Finding in a report that does not name its device (give the device: --device NAME)": 1,
        "Configuration result in a report that does not name its device "
        "(give the device: --device NAME)": 1,
    }


def test_an_unnamed_finding_creates_the_named_device_when_no_record_describes_it() -> None:
    digest = Digest("agent-7")
    digest.add(finding(UNNAMED, "CVE-2024-0001"))
    batch = digest.take()
    assert [(n, r.device_ref, r.name) for n, r in batch.devices] == [(0, UNNAMED, "agent-7")]
    assert batch.findings == [(0, 0, "CVE-2024-0001", "3.0.1", "3.0.9", None)]


def test_facts_repeated_with_every_finding_are_passed_on_once_and_a_change_back_again() -> None:
    # CycloneDX 1.2 repeats a vulnerability's facts under every component: the writer would
    # apply them again to no effect. Facts that change, then change back, must all reach it.
    high = VulnerabilityRecord("CVE-2024-0001", severity="High", cvss_v3_score=7.5)
    low = VulnerabilityRecord("CVE-2024-0001", severity="Low", cvss_v3_score=3.1)
    other = VulnerabilityRecord("CVE-2024-0002", severity="High")
    digest = Digest()
    for record in (high, high, other, high, low, low, high):
        digest.add(record)
    first = digest.take()
    assert first.vulnerabilities == [high, other, low, high]
    digest.add(high)  # the same as the last passed on, in a later batch
    digest.add(other)
    digest.add(VulnerabilityRecord("CVE-2024-0002", severity="Critical"))
    assert digest.take().vulnerabilities == [
        VulnerabilityRecord("CVE-2024-0002", severity="Critical")
    ]
