"""The reply shapes of the Defender-compatible API: Microsoft's field names and value spellings.

Replies are plain dicts (not pydantic models) because ``$select`` trims them field by field and
the OData annotations (``@odata.context``) are not valid Python names. The field tuples below are
the order Microsoft documents and what ``$select`` accepts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from remedium.intel.models import Vulnerability
from remedium.inventory.models import Device, device_tags

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


def machine(device: Device, group_name: str, *, health_status: str) -> dict[str, Any]:
    """A device as Defender's machine entity."""
    processor, architecture = _PROCESSORS.get(
        (device.os_architecture or "").strip().lower(), (None, None)
    )
    build = _BUILD.match(device.os_version or "")
    return {
        "id": device.machine_id,
        "computerDnsName": device.name,
        "firstSeen": odata_datetime(device.first_seen),
        "lastSeen": odata_datetime(device.last_seen),
        "osPlatform": device.os_platform,
        "version": device.os_version or None,
        "osVersion": device.os_version or None,
        "osProcessor": processor,
        "osArchitecture": architecture,
        "osBuild": int(build.group(1)) if build else None,
        "lastIpAddress": device.ip_address or None,
        "lastExternalIpAddress": None,
        "healthStatus": health_status,
        "onboardingStatus": "Onboarded",
        "deviceValue": device.device_value,
        "rbacGroupId": device.device_group_id,
        "rbacGroupName": group_name,
        "riskScore": "None",
        "exposureLevel": device.exposure_level,
        "isAadJoined": bool(device.is_aad_joined),
        "aadDeviceId": device.aad_device_id,
        "machineTags": device_tags(device),
        "ipAddresses": (
            [{"ipAddress": device.ip_address, "macAddress": None, "operationalStatus": "Up"}]
            if device.ip_address
            else []
        ),
    }


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
