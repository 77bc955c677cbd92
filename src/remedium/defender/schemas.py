"""The reply shapes of the Defender-compatible API: Microsoft's field names and value spellings.

Replies are plain dicts (not pydantic models) because ``$select`` trims them field by field and
the OData annotations (``@odata.context``) are not valid Python names. The field tuples below are
the order Microsoft documents and what ``$select`` accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device

MACHINE_FIELDS = (
    "id",
    "computerDnsName",
    "firstSeen",
    "lastSeen",
    "osPlatform",
    "version",
    "osVersion",
    "osProcessor",
    "osArchitecture",
    "osBuild",
    "lastIpAddress",
    "lastExternalIpAddress",
    "healthStatus",
    "onboardingStatus",
    "deviceValue",
    "rbacGroupId",
    "rbacGroupName",
    "riskScore",
    "exposureLevel",
    "isAadJoined",
    "aadDeviceId",
    "machineTags",
    "ipAddresses",
)

MACHINE_REFERENCE_FIELDS = ("id", "computerDnsName", "osPlatform", "rbacGroupId", "rbacGroupName")

RECOMMENDATION_FIELDS = (
    "id",
    "productName",
    "recommendationName",
    "weaknesses",
    "vendor",
    "recommendedVersion",
    "recommendedProgram",
    "recommendedVendor",
    "recommendationCategory",
    "subCategory",
    "severityScore",
    "publicExploit",
    "activeAlert",
    "associatedThreats",
    "remediationType",
    "status",
    "configScoreImpact",
    "exposureImpact",
    "totalMachineCount",
    "exposedMachinesCount",
    "nonProductivityImpactedAssets",
    "relatedComponent",
    "hasUnpatchableCve",
    "tags",
    "exposedCriticalDevices",
)

VULNERABILITY_FIELDS = (
    "id",
    "name",
    "description",
    "severity",
    "cvssV3",
    "cvssVector",
    "exposedMachines",
    "publishedOn",
    "updatedOn",
    "publicExploit",
    "exploitVerified",
    "exploitInKit",
    "exploitTypes",
    "exploitUris",
    "cveSupportability",
    "epss",
)

SOFTWARE_FIELDS = (
    "id",
    "name",
    "vendor",
    "weaknesses",
    "publicExploit",
    "activeAlert",
    "exposedMachines",
    "impactScore",
)

_BUILD = re.compile(r"^\d+\.\d+\.(\d+)")
_PROCESSORS = {
    "64-bit": ("x64", "64-bit"),
    "x64": ("x64", "64-bit"),
    "amd64": ("x64", "64-bit"),
    "x86_64": ("x64", "64-bit"),
    "arm64": ("arm64", "64-bit"),
    "aarch64": ("arm64", "64-bit"),
    "32-bit": ("x86", "32-bit"),
    "x86": ("x86", "32-bit"),
    "i386": ("x86", "32-bit"),
    "i686": ("x86", "32-bit"),
}


def odata_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as Microsoft writes dates."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def machine(row: Sequence[Any]) -> dict[str, Any]:
    """A device as Defender's machine entity, from a row of ``service.machine_columns``.

    Plain rows, not ORM ``Device`` objects: a page holds up to 10,000 machines, and building
    the objects cost more than the query (docs/deployment.md).
    """
    (
        machine_id,
        name,
        first_seen,
        last_seen,
        os_platform,
        os_version,
        os_architecture,
        ip_address,
        device_value,
        group_id,
        exposure_level,
        is_aad_joined,
        aad_device_id,
        tags,
        internet_facing,
        group_name,
        health_status,
    ) = row
    processor, architecture = _PROCESSORS.get((os_architecture or "").strip().lower(), (None, None))
    build = _BUILD.match(os_version or "")
    return {
        "id": machine_id,
        "computerDnsName": name,
        "firstSeen": _utc_text(first_seen),
        "lastSeen": _utc_text(last_seen),
        "osPlatform": os_platform,
        "version": os_version or None,
        "osVersion": os_version or None,
        "osProcessor": processor,
        "osArchitecture": architecture,
        "osBuild": int(build.group(1)) if build else None,
        "lastIpAddress": ip_address or None,
        "lastExternalIpAddress": None,
        "healthStatus": health_status,
        "onboardingStatus": "Onboarded",
        "deviceValue": device_value,
        "rbacGroupId": group_id,
        "rbacGroupName": group_name,
        "riskScore": "None",
        "exposureLevel": exposure_level,
        "isAadJoined": bool(is_aad_joined),
        "aadDeviceId": aad_device_id,
        "machineTags": _machine_tags(tags, internet_facing),
        "ipAddresses": (
            [{"ipAddress": ip_address, "macAddress": None, "operationalStatus": "Up"}]
            if ip_address
            else []
        ),
    }


def _machine_tags(tags: str | None, internet_facing: bool | None) -> list[str]:
    # The same list as inventory.models.device_tags (the tags, and the derived internetFacing),
    # from the tags' JSON text.
    found: list[Any] = [] if not tags or tags == "[]" else list(json.loads(tags) or [])
    if internet_facing and "internetFacing" not in found:
        found.append("internetFacing")
    return [str(t) for t in found]


def _utc_text(value: datetime | None) -> str | None:
    """:func:`odata_datetime` of a database timestamp (naive ones are UTC), in fewer steps."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        return value.isoformat() + "Z"
    if offset:
        value = value.astimezone(UTC)
    # An aware time in UTC ends "+00:00".
    return value.isoformat()[:-6] + "Z"


def machine_reference(device: Device, group_name: str) -> dict[str, Any]:
    """A device as Defender's MachineRef (the rows of ``/machineReferences``)."""
    return {
        "id": device.machine_id,
        "computerDnsName": device.name,
        "osPlatform": device.os_platform,
        "rbacGroupId": device.device_group_id,
        "rbacGroupName": group_name,
    }


def vulnerability(row: Vulnerability, exposed_machines: int) -> dict[str, Any]:
    """A vulnerability as Defender's vulnerability entity, with the devices exposed in scope."""
    return {
        "id": row.id,
        "name": row.name or row.id,
        "description": row.description,
        "severity": row.severity,
        "cvssV3": row.cvss_v3_score,
        "cvssVector": row.cvss_v3_vector,
        "exposedMachines": exposed_machines,
        "publishedOn": odata_datetime(row.published_on),
        "updatedOn": odata_datetime(row.updated_on),
        "publicExploit": bool(row.public_exploit),
        "exploitVerified": bool(row.exploit_verified),
        "exploitInKit": bool(row.exploit_in_kit),
        "exploitTypes": list(row.exploit_types or []),
        "exploitUris": list(row.exploit_uris or []),
        # Every CVE remedium knows of is assessed from the scanners' findings.
        "cveSupportability": "Supported",
        "epss": row.epss,
    }
