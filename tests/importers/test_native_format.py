"""The native format: good files parse to records, bad files are refused with the place named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from remedium.importers.formats.native import NativeParser, inventory_schema
from remedium.importers.records import (
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ReportError,
    SoftwareRecord,
    VulnerabilityRecord,
)
from remedium.importers.registry import detect_parser


def native_document(**overrides: Any) -> dict[str, Any]:
    """A small valid native report: two devices, software, a finding, a configuration result."""
    document: dict[str, Any] = {
        "schema": "remedium-inventory/1",
        "source": "unit-scanner",
        "scanned_at": "2026-11-01T08:00:00Z",
        "vulnerabilities": [
            {
                "id": "CVE-2021-44228",
                "cvss_v3_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                "kev_listed": True,
                "epss": 0.94,
            }
        ],
        "devices": [
            {
                "name": "web-01.corp.example",
                "ip_address": "10.0.0.5",
                "os_platform": "Linux",
                "device_group": "DMZ web servers",
                "internet_facing": True,
                "software": [{"vendor": "Apache", "product": "log4j", "version": "2.14.1"}],
                "findings": [
                    {
                        "cve": "CVE-2021-44228",
                        "vendor": "Apache",
                        "product": "log4j",
                        "installed_version": "2.14.1",
                        "fixed_version": "2.17.1",
                    }
                ],
                "configuration": [{"id": "scid-2000", "compliant": False}],
            },
            {"name": "laptop-7", "os_platform": "Windows11", "tags": ["finance"]},
        ],
    }
    document.update(overrides)
    return document


def write(tmp_path: Path, document: dict[str, Any], name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def parse(path: Path) -> list[object]:
    with path.open("rb") as stream:
        info, records = NativeParser().parse(stream, path.name)
        assert info.source == "unit-scanner"
        return list(records)


def test_good_file_yields_every_record(tmp_path: Path) -> None:
    path = write(tmp_path, native_document())
    assert detect_parser(path).name == "remedium"
    with path.open("rb") as stream:
        info, iterator = NativeParser().parse(stream, path.name)
        records = list(iterator)
    assert info.scanned_at is not None
    assert info.scanned_at.isoformat() == "2026-11-01T08:00:00+00:00"
    assert info.complete_scan is True
    kinds = [type(r) for r in records]
    assert kinds == [
        VulnerabilityRecord,
        DeviceRecord,
        SoftwareRecord,
        FindingRecord,
        ConfigurationResultRecord,
        DeviceRecord,
    ]
    device = records[1]
    assert isinstance(device, DeviceRecord)
    assert device.name == "web-01.corp.example"
    assert device.internet_facing is True
    finding = records[3]
    assert isinstance(finding, FindingRecord)
    assert (finding.vulnerability_id, finding.fixed_version) == ("CVE-2021-44228", "2.17.1")


def test_header_after_devices_is_still_read(tmp_path: Path) -> None:
    document = native_document()
    reordered = {
        "devices": document["devices"],
        "source": "unit-scanner",
        "scanned_at": "2026-11-01",
        "schema": "remedium-inventory/1",
    }
    path = write(tmp_path, reordered)
    records = parse(path)
    assert sum(isinstance(r, DeviceRecord) for r in records) == 2


@pytest.mark.parametrize(
    ("mutate", "where", "fragment"),
    [
        (
            lambda d: d["devices"][1].update(
                software=[{"vendor": "x", "product": "y", "version": 5}]
            ),
            "devices[1].software[0].version",
            "is not of type 'string'",
        ),
        (
            lambda d: d["devices"][0].update(device_value="Huge"),
            "devices[0].device_value",
            "is not one of",
        ),
        (
            lambda d: d["devices"][0]["findings"][0].pop("cve"),
            "devices[0].findings[0]",
            "'cve' is a required property",
        ),
        (lambda d: d.update(scanned_at="yesterday"), "scanned_at", "does not match"),
        (lambda d: d.pop("source"), "(document)", "'source' is a required property"),
        (
            lambda d: d["vulnerabilities"][0].update(epss=3),
            "vulnerabilities[0].epss",
            "greater than the maximum",
        ),
    ],
)
def test_bad_file_names_record_and_field(
    tmp_path: Path, mutate: Any, where: str, fragment: str
) -> None:
    document = native_document()
    mutate(document)
    path = write(tmp_path, document, "bad.json")
    with pytest.raises(ReportError) as caught:
        parse(path)
    message = str(caught.value)
    assert message.startswith(f"bad.json: {where}: "), message
    assert fragment in message


def test_truncated_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(native_document())[:-40])
    with pytest.raises(ReportError, match="not valid JSON"):
        parse(path)


def test_published_schema_accepts_the_example(tmp_path: Path) -> None:
    Draft202012Validator.check_schema(inventory_schema())
    Draft202012Validator(inventory_schema()).validate(native_document())
    # The example users copy from docs/native-format.md is valid too.
    doc = (Path(__file__).resolve().parents[2] / "docs" / "native-format.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```json\n")[1:]]
    examples = [json.loads(b) for b in blocks if '"remedium-inventory/1"' in b]
    assert examples, "docs/native-format.md has no remedium-inventory/1 example"
    for example in examples:
        Draft202012Validator(inventory_schema()).validate(example)
