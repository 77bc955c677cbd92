"""Microsoft Defender for Endpoint API exports: machines and vulnerabilities, JSON or a zip of them.

The JSON files are OData pages (``{"@odata.context": ..., "value": [...]}``) of the
``/api/machines`` and ``/api/vulnerabilities/machinesVulnerabilities`` endpoints. A zip holds
such pages in ``machines/`` and ``vulnerabilities/`` folders. See ``docs/formats.md``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO, Any

from remedium.importers.formats._common import (
    as_dict,
    as_list,
    json_values,
    looks_like_json,
    parse_time,
    seekable,
    severity,
    text,
)
from remedium.importers.records import (
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_ZIP_MAGIC = b"PK\x03\x04"
_DEVICE_VALUES = {"low": "Low", "normal": "Normal", "high": "High"}


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def machine_device(machine: dict[str, Any]) -> DeviceRecord:
    """A Defender machine (``/api/machines`` row) as a device, keyed by its machine id."""
    machine_id = text(machine.get("id"))
    addresses = [as_dict(a) for a in as_list(machine.get("ipAddresses"))]
    ip = text(machine.get("lastIpAddress")) or next(
        (text(a.get("ipAddress")) for a in addresses if text(a.get("ipAddress"))), ""
    )
    exposure = text(machine.get("exposureLevel"))
    tags = [text(t) for t in as_list(machine.get("machineTags")) if text(t)]
    if exposure and exposure != "None":
        # remedium has no exposure-level column; kept as a tag so it stays searchable.
        tags.append(f"exposure:{exposure}")
    vm = as_dict(machine.get("vmMetadata"))
    return DeviceRecord(
        device_ref=machine_id,
        name=text(machine.get("computerDnsName")) or machine_id,
        ip_address=ip,
        asset_id=machine_id,
        os_platform=text(machine.get("osPlatform")),
        os_version=text(machine.get("version")) or text(machine.get("osVersion")),
        os_architecture=text(machine.get("osArchitecture")) or text(machine.get("osProcessor")),
        device_group=text(machine.get("rbacGroupName")),
        device_value=_DEVICE_VALUES.get(text(machine.get("deviceValue")).lower(), ""),
        is_aad_joined=_bool(machine.get("isAadJoined")),
        aad_device_id=text(machine.get("aadDeviceId")),
        tags=tuple(tags) + ((f"vm:{text(vm.get('vmId'))}",) if text(vm.get("vmId")) else ()),
        first_seen=parse_time(machine.get("firstSeen")),
        last_seen=parse_time(machine.get("lastSeen")),
    )


class _Mapper:
    """Maps OData rows to records; remembers which machines were already yielded."""

    def __init__(self) -> None:
        self.devices: set[str] = set()

    def row(self, row: dict[str, Any], where: str) -> Iterator[ImportRecord]:
        if "cveId" in row or "vulnerabilityId" in row:
            yield from self.vulnerability(row, where)
        elif "computerDnsName" in row or "osPlatform" in row:
            device = machine_device(row)
            if not device.device_ref:
                yield SkippedRecord("machine without an id", where)
            elif device.device_ref not in self.devices:
                self.devices.add(device.device_ref)
                yield device
        else:
            yield SkippedRecord("row is neither a machine nor a vulnerability", where)

    def vulnerability(self, row: dict[str, Any], where: str) -> Iterator[ImportRecord]:
        machine_id = text(row.get("machineId")) or text(row.get("deviceId"))
        cve = text(row.get("cveId")) or text(row.get("vulnerabilityId"))
        if not machine_id or not cve:
            yield SkippedRecord("vulnerability row without machineId or cveId", where)
            return
        if machine_id not in self.devices:
            # The export names a machine the machines list does not hold (or there is none):
            # the device is known by its Defender id alone.
            self.devices.add(machine_id)
            yield DeviceRecord(
                device_ref=machine_id,
                name=text(row.get("deviceName")) or machine_id,
                asset_id=machine_id,
                os_platform=text(row.get("osPlatform")),
                device_group=text(row.get("rbacGroupName")),
            )
        yield FindingRecord(
            device_ref=machine_id,
            vulnerability_id=cve,
            vendor=text(row.get("productVendor")) or text(row.get("softwareVendor")),
            product=text(row.get("productName")) or text(row.get("softwareName")),
            installed_version=text(row.get("productVersion")) or text(row.get("softwareVersion")),
            severity=severity(row.get("severity") or row.get("vulnerabilitySeverityLevel")),
        )


def _rows(stream: IO[bytes], filename: str) -> Iterator[tuple[str, Any]]:
    values = json_values(stream, ["value.item"], filename, markers=["value"])
    first = next(values, None)
    if first != ("value", None):
        raise ReportError(
            'not a Microsoft Defender export: no OData "value" list', filename=filename
        )
    return values


class MdeParser:
    """Microsoft Defender for Endpoint machines/vulnerabilities exports (JSON, or zip of JSON)."""

    name = "mde"

    def sniff(self, head: bytes, filename: str) -> bool:
        if head.startswith(_ZIP_MAGIC):
            return b"machines/" in head or b"vulnerabilities/" in head
        if not looks_like_json(head):
            return False
        return b'"@odata.context"' in head and (
            b'"cveId"' in head
            or b'"computerDnsName"' in head
            or b"securitycenter" in head
            or b"#Machines" in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        info = ReportInfo(format=self.name, source="microsoft-defender")
        stream = seekable(stream)
        magic = stream.read(4)
        stream.seek(0)
        if magic == _ZIP_MAGIC:
            return info, self._zip(stream, filename)
        rows = _rows(stream, filename)
        return info, self._json(rows)

    def _json(self, rows: Iterator[tuple[str, Any]]) -> Iterator[ImportRecord]:
        mapper = _Mapper()
        for index, (_prefix, row) in enumerate(rows):
            yield from mapper.row(as_dict(row), f"value[{index}]")

    def _zip(self, stream: IO[bytes], filename: str) -> Iterator[ImportRecord]:
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise ReportError(f"not a readable zip ({exc})", filename=filename) from None
        with archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".json")
            ]
            if not members:
                raise ReportError("the zip holds no .json export files", filename=filename)
            # Machines first, so vulnerabilities find their device's full record.
            members.sort(key=lambda m: (not m.filename.lower().startswith("machines/"), m.filename))
            mapper = _Mapper()
            for member in members:
                name = f"{filename}!{member.filename}"
                with archive.open(member) as member_stream:
                    for index, (_prefix, row) in enumerate(_rows(member_stream, name)):
                        yield from mapper.row(as_dict(row), f"{member.filename}: value[{index}]")
            skipped = [
                m.filename
                for m in archive.infolist()
                if not m.is_dir() and not m.filename.lower().endswith(".json")
            ]
            for other in skipped:
                yield SkippedRecord("not a JSON export file", other)
