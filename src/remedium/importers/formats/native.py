"""remedium's own JSON report format (``remedium-inventory/1``, docs/native-format.md).

The file is read with ``ijson`` in a few streaming passes (header, vulnerabilities, configuration
checks, devices), so memory holds one device at a time whatever the file's size. Each device is
validated against the published JSON Schema's ``device`` definition as it streams; the first fault
stops the import with the record and field named (``devices[3].software[0].version: ...``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import IO, TYPE_CHECKING, Any

import fastjsonschema
import ijson

from remedium.importers.records import (
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    FindingRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SoftwareRecord,
    VulnerabilityRecord,
)

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

# jsonschema (~50 ms to import) is loaded only when a native report is read: format detection
# imports this module for every report it sniffs.

SCHEMA_ID = "remedium-inventory/1"
SCHEMA_FILE = "remedium-inventory.schema.json"
HEADER_KEYS = ("schema", "source", "scanned_at", "complete")
SECTIONS = ("vulnerabilities", "configurations", "devices")


@cache
def inventory_schema() -> dict[str, Any]:
    """The published JSON Schema of the native format."""
    text = resources.files("remedium.importers.schema").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every local ``$ref`` replaced by its definition (the schema has no cycles)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, definitions) for value in node]
    return node


@cache
def _validator(definition: str) -> Draft202012Validator:
    """A validator for one ``$defs`` entry.

    References are inlined first: resolving ``$ref`` for every nested item costs more than the
    checks themselves, and each device is validated as it streams.
    """
    from jsonschema import Draft202012Validator  # noqa: PLC0415 — see the module's imports

    schema = inventory_schema()
    return Draft202012Validator(_inline(schema["$defs"][definition], schema["$defs"]))


@cache
def _header_validator() -> Draft202012Validator:
    """The top-level schema with the (streamed) sections accepted as they are."""
    schema = dict(inventory_schema())
    schema["properties"] = {**schema["properties"], **{key: {} for key in SECTIONS}}
    schema["required"] = [key for key in schema["required"] if key not in SECTIONS]
    from jsonschema import Draft202012Validator  # noqa: PLC0415 — see the module's imports

    return Draft202012Validator(schema)


def _where(prefix: str, error: ValidationError) -> str:
    place = prefix
    for part in error.absolute_path:
        place += f"[{part}]" if isinstance(part, int) else f".{part}"
    return place.lstrip(".") or "(document)"


_compiled: dict[int, Any] = {}


def _fast(validator: Draft202012Validator) -> Any:
    """The same schema compiled to Python code: about 20x faster on valid records.

    ``jsonschema`` then words the error when a record is invalid (fastjsonschema's messages do not
    name the place as clearly).
    """
    key = id(validator)  # validators are cached for the process, so their ids are stable
    if key not in _compiled:
        # Without $id/$schema it never tries to fetch anything: nothing may leave the machine.
        local = {k: v for k, v in validator.schema.items() if k not in ("$id", "$schema")}
        _compiled[key] = fastjsonschema.compile(local, handlers={}, use_formats=False)
    return _compiled[key]


def _check(validator: Draft202012Validator, value: Any, prefix: str, filename: str) -> None:
    try:
        _fast(validator)(value)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return
    from jsonschema.exceptions import best_match  # noqa: PLC0415 — see the module's imports

    error = best_match(validator.iter_errors(value))
    if error is not None:
        raise ReportError(error.message, where=_where(prefix, error), filename=filename)


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime (UTC when no offset is given)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace(" ", "T", 1) if "T" not in value else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class NativeParser:
    """The ``remedium`` format: remedium's own JSON inventory report."""

    name = "remedium"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when the start of the file declares the native schema."""
        return SCHEMA_ID.encode() in head[:4096] and head.lstrip()[:1] == b"{"

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Read the header now; stream the sections lazily."""
        if not stream.seekable():
            # Several passes need a seekable file: spool a pipe or an upload to disk first.
            spooled = tempfile.TemporaryFile()  # noqa: SIM115 - it lives as long as the parse
            shutil.copyfileobj(stream, spooled)
            spooled.seek(0)
            stream = spooled
        start = stream.tell()
        header = self._read_header(stream, filename)
        info = ReportInfo(
            format=self.name,
            source=str(header["source"]),
            scanned_at=parse_timestamp(header["scanned_at"]),
            complete_scan=bool(header.get("complete", True)),
        )
        return info, self._records(stream, start, filename)

    def _read_header(self, stream: IO[bytes], filename: str) -> dict[str, Any]:
        header: dict[str, Any] = {}
        try:
            for prefix, event, value in ijson.parse(stream, use_float=True):
                if prefix == "" and event == "map_key":
                    if value in SECTIONS and all(k in header for k in HEADER_KEYS[:3]):
                        # The header comes first in well-formed files: stop reading here.
                        break
                    if value not in HEADER_KEYS and value not in SECTIONS:
                        header[value] = None  # reported by additionalProperties below
                elif prefix in HEADER_KEYS and event in ("string", "boolean", "number", "null"):
                    header[prefix] = value
                elif prefix in HEADER_KEYS and event in ("start_map", "start_array"):
                    header[prefix] = {} if event == "start_map" else []
                elif prefix == "" and event == "start_array":
                    raise ReportError("the document must be a JSON object", filename=filename)
        except ijson.JSONError as exc:
            raise ReportError(f"not valid JSON ({exc})", filename=filename) from exc
        _check(_header_validator(), header, "", filename)
        return header

    def _records(self, stream: IO[bytes], start: int, filename: str) -> Iterator[ImportRecord]:
        try:
            yield from self._vulnerabilities(stream, start, filename)
            yield from self._configurations(stream, start, filename)
            yield from self._devices(stream, start, filename)
        except ijson.JSONError as exc:
            raise ReportError(f"not valid JSON ({exc})", filename=filename) from exc
        except ValueError as exc:
            # Dates that match the schema's pattern but do not exist (2026-02-30).
            raise ReportError(f"invalid date ({exc})", filename=filename) from exc

    def _items(self, stream: IO[bytes], start: int, section: str) -> Iterator[Any]:
        stream.seek(start)
        yield from ijson.items(stream, f"{section}.item", use_float=True)

    def _vulnerabilities(
        self, stream: IO[bytes], start: int, filename: str
    ) -> Iterator[ImportRecord]:
        validator = _validator("vulnerability")
        for index, item in enumerate(self._items(stream, start, "vulnerabilities")):
            _check(validator, item, f"vulnerabilities[{index}]", filename)
            yield VulnerabilityRecord(
                vulnerability_id=item["id"],
                description=item.get("description"),
                severity=item.get("severity"),
                cvss_v3_vector=item.get("cvss_v3_vector"),
                cvss_v4_vector=item.get("cvss_v4_vector"),
                published_on=parse_timestamp(item.get("published_on")),
                updated_on=parse_timestamp(item.get("updated_on")),
                public_exploit=item.get("public_exploit"),
                exploit_verified=item.get("exploit_verified"),
                exploit_in_kit=item.get("exploit_in_kit"),
                kev_listed=item.get("kev_listed"),
                kev_date_added=parse_timestamp(item.get("kev_date_added")),
                kev_due_date=parse_timestamp(item.get("kev_due_date")),
                kev_ransomware=item.get("kev_ransomware"),
                epss=item.get("epss"),
                epss_percentile=item.get("epss_percentile"),
                cwe_ids=tuple(item.get("cwe_ids", ())),
            )

    def _configurations(
        self, stream: IO[bytes], start: int, filename: str
    ) -> Iterator[ImportRecord]:
        validator = _validator("configuration")
        for index, item in enumerate(self._items(stream, start, "configurations")):
            _check(validator, item, f"configurations[{index}]", filename)
            yield ConfigurationCheckRecord(
                configuration_id=item["id"],
                name=item["name"],
                category=item["category"],
                weight=float(item.get("weight", 5.0)),
                sub_category=item.get("sub_category", ""),
                description=item.get("description", ""),
                remediation=item.get("remediation", ""),
                related_component=item.get("related_component", ""),
                benchmarks=tuple(item.get("benchmarks", ())),
            )

    def _devices(self, stream: IO[bytes], start: int, filename: str) -> Iterator[ImportRecord]:
        validator = _validator("device")
        for index, item in enumerate(self._items(stream, start, "devices")):
            ref = f"devices[{index}]"
            _check(validator, item, ref, filename)
            yield DeviceRecord(
                device_ref=ref,
                name=item["name"],
                ip_address=item.get("ip_address", ""),
                asset_id=item.get("asset_id", ""),
                os_platform=item.get("os_platform", ""),
                os_version=item.get("os_version", ""),
                os_architecture=item.get("os_architecture", ""),
                device_group=item.get("device_group", ""),
                device_value=item.get("device_value", ""),
                is_intune_managed=item.get("is_intune_managed"),
                is_aad_joined=item.get("is_aad_joined"),
                aad_device_id=item.get("aad_device_id", ""),
                internet_facing=item.get("internet_facing"),
                tags=tuple(item.get("tags", ())),
                first_seen=parse_timestamp(item.get("first_seen")),
                last_seen=parse_timestamp(item.get("last_seen")),
            )
            for software in item.get("software", ()):
                yield SoftwareRecord(
                    device_ref=ref,
                    vendor=software["vendor"],
                    product=software["product"],
                    version=software["version"],
                    display_name=software.get("display_name", ""),
                    display_vendor=software.get("display_vendor", ""),
                    purl=software.get("purl", ""),
                    cpe=software.get("cpe", ""),
                    is_operating_system=software.get("is_operating_system", False),
                    end_of_support_on=parse_timestamp(software.get("end_of_support_on")),
                )
            for finding in item.get("findings", ()):
                yield FindingRecord(
                    device_ref=ref,
                    vulnerability_id=finding["cve"],
                    vendor=finding["vendor"],
                    product=finding["product"],
                    installed_version=finding.get("installed_version", ""),
                    fixed_version=finding.get("fixed_version", ""),
                    severity=finding.get("severity", ""),
                    cvss_v3_vector=finding.get("cvss_v3_vector", ""),
                    title=finding.get("title", ""),
                    description=finding.get("description", ""),
                )
            for result in item.get("configuration", ()):
                yield ConfigurationResultRecord(
                    device_ref=ref, configuration_id=result["id"], is_compliant=result["compliant"]
                )
