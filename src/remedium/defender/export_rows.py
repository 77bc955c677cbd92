"""What each export of the Defender-compatible API reads, and how a row reads in Microsoft's shape:
software vulnerabilities (and their changes), software inventory, and configuration assessments.
Plain columns, not ORM entities: exports read hundreds of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select

from remedium.auth.principal import Scope
from remedium.common.scoping import in_scope
from remedium.db.base import utcnow
from remedium.intel.models import SecurityConfiguration, Vulnerability
from remedium.inventory.models import (
    ConfigurationAssessment,
    Device,
    DeviceGroup,
    InstalledSoftware,
    Software,
    Weakness,
)


def _timestamp(value: datetime | None) -> str | None:
    # Microsoft's export timestamps: "2020-12-30 14:17:26" (UTC, no zone).
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _exploitability(row: Any) -> str:
    if row.exploit_in_kit:
        return "ExploitIsInKit"
    if row.exploit_verified:
        return "ExploitIsVerified"
    if row.public_exploit:
        return "ExploitIsPublic"
    return "NoExploit"


@dataclass(frozen=True, slots=True)
class Export:
    """One export: its rows (in a stable order) and how a row reads in Microsoft's shape."""

    entity: str
    statement: Callable[[Scope, datetime | None], Select[Any]]
    item: Callable[[Any], dict[str, Any]]


def _device_columns() -> tuple[Any, ...]:
    return (
        Device.machine_id,
        Device.name,
        Device.os_platform,
        Device.os_version,
        Device.os_architecture,
        DeviceGroup.id.label("group_id"),
        DeviceGroup.name.label("group_name"),
    )


def _device_fields(row: Any) -> dict[str, Any]:
    return {
        "deviceId": row.machine_id,
        "rbacGroupName": row.group_name,
        "rbacGroupId": row.group_id,
        "deviceName": row.name,
        "osPlatform": row.os_platform,
        "osVersion": row.os_version or None,
        "osArchitecture": row.os_architecture or None,
    }


def _vulnerabilities(scope: Scope, since: datetime | None) -> Select[Any]:
    statement = (
        select(
            *_device_columns(),
            Weakness.installed_version,
            Weakness.vulnerability_id,
            Weakness.fixed_version,
            Weakness.first_seen,
            Weakness.last_seen,
            Weakness.fixed_at,
            Vulnerability.cvss_v3_score,
            Vulnerability.severity,
            Vulnerability.public_exploit,
            Vulnerability.exploit_verified,
            Vulnerability.exploit_in_kit,
            Vulnerability.updated_on,
            Software.vendor,
            Software.product,
            Software.product_key,
        )
        .select_from(Weakness)
        .join(Device, Device.id == Weakness.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .join(Software, Software.id == Weakness.software_id)
        .join(Vulnerability, Vulnerability.id == Weakness.vulnerability_id)
        .where(in_scope(Device.device_group_id, scope))
    )
    if since is None:
        statement = statement.where(Weakness.fixed_at.is_(None))
    else:
        statement = statement.where(
            or_(
                Weakness.first_seen >= since,
                Weakness.fixed_at >= since,
                (Vulnerability.updated_on >= since) & Weakness.fixed_at.is_(None),
            )
        )
    return statement.order_by(Device.id, Weakness.id)


def vulnerability_item(row: Any, *, since: datetime | None = None) -> dict[str, Any]:
    """One software vulnerability of a device; with ``since``, as a change since then."""
    item = {
        "id": f"{row.machine_id}_{row.product}_{row.installed_version}_{row.vulnerability_id}_",
        **_device_fields(row),
        "softwareVendor": row.vendor,
        "softwareName": row.product,
        "softwareVersion": row.installed_version,
        "cveId": row.vulnerability_id,
        "cvssScore": row.cvss_v3_score,
        "vulnerabilitySeverityLevel": row.severity,
        "recommendedSecurityUpdate": None,
        "recommendedSecurityUpdateId": None,
        "recommendedSecurityUpdateUrl": None,
        "diskPaths": [],
        "registryPaths": [],
        "lastSeenTimestamp": _timestamp(row.last_seen),
        "firstSeenTimestamp": _timestamp(row.first_seen),
        "exploitabilityLevel": _exploitability(row),
        "recommendationReference": f"va-_-{row.product_key}",
        "securityUpdateAvailable": bool(row.fixed_version),
    }
    if since is not None:
        at: datetime | None
        if row.fixed_at is not None and _aware(row.fixed_at) >= since:
            status, at = "Fixed", row.fixed_at
        elif _aware(row.first_seen) >= since:
            status, at = "New", row.first_seen
        else:
            status, at = "Updated", row.updated_on
        item["isOnboarded"] = True
        item["status"] = status
        item["eventTimestamp"] = _timestamp(at)
    return item


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _inventory(scope: Scope, since: datetime | None) -> Select[Any]:
    open_weaknesses = (
        select(func.count(Weakness.id))
        .where(
            Weakness.device_id == InstalledSoftware.device_id,
            Weakness.software_id == InstalledSoftware.software_id,
            Weakness.installed_version == InstalledSoftware.version,
            Weakness.fixed_at.is_(None),
        )
        .correlate(InstalledSoftware)
        .scalar_subquery()
    )
    return (
        select(
            *_device_columns(),
            InstalledSoftware.version,
            InstalledSoftware.first_seen,
            Software.vendor,
            Software.product,
            Software.end_of_support_on,
            Software.end_of_support_versions,
            open_weaknesses.label("weaknesses"),
        )
        .select_from(InstalledSoftware)
        .join(Device, Device.id == InstalledSoftware.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .join(Software, Software.id == InstalledSoftware.software_id)
        .where(in_scope(Device.device_group_id, scope))
        .order_by(Device.id, Software.id, InstalledSoftware.version)
    )


def _end_of_support(row: Any) -> tuple[str, str | None]:
    if row.version in (row.end_of_support_versions or []):
        return "EOS Version", None
    if row.end_of_support_on is None:
        return "None", None
    eos = _aware(row.end_of_support_on)
    status = "EOS Software" if eos <= utcnow() else "Upcoming EOS Software"
    return status, eos.isoformat()


def _inventory_item(row: Any) -> dict[str, Any]:
    status, date = _end_of_support(row)
    fields = _device_fields(row)
    fields.pop("osVersion")
    fields.pop("osArchitecture")
    return {
        **fields,
        "softwareVendor": row.vendor,
        "softwareName": row.product,
        "softwareVersion": row.version,
        "numberOfWeaknesses": int(row.weaknesses or 0),
        "diskPaths": [],
        "registryPaths": [],
        "softwareFirstSeenTimestamp": _timestamp(row.first_seen),
        "endOfSupportStatus": status,
        "endOfSupportDate": date,
    }


def _configurations(scope: Scope, since: datetime | None) -> Select[Any]:
    return (
        select(
            *_device_columns(),
            ConfigurationAssessment.configuration_id,
            ConfigurationAssessment.is_compliant,
            ConfigurationAssessment.last_seen,
            SecurityConfiguration.name.label("check_name"),
            SecurityConfiguration.category,
            SecurityConfiguration.sub_category,
            SecurityConfiguration.weight,
        )
        .select_from(ConfigurationAssessment)
        .join(Device, Device.id == ConfigurationAssessment.device_id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .join(
            SecurityConfiguration,
            SecurityConfiguration.id == ConfigurationAssessment.configuration_id,
        )
        .where(in_scope(Device.device_group_id, scope))
        .order_by(Device.id, ConfigurationAssessment.configuration_id)
    )


def _configuration_item(row: Any) -> dict[str, Any]:
    fields = _device_fields(row)
    fields.pop("osArchitecture")
    return {
        **fields,
        "timestamp": _timestamp(row.last_seen),
        "configurationId": row.configuration_id,
        "configurationCategory": row.category,
        "configurationSubcategory": row.sub_category,
        "configurationImpact": row.weight,
        "isCompliant": bool(row.is_compliant),
        "isApplicable": True,
        "isExpectedUserImpact": False,
        "configurationName": row.check_name,
        "recommendationReference": f"sca-_-{row.configuration_id}",
    }


VULNERABILITIES = Export("AssetVulnerability", _vulnerabilities, vulnerability_item)


INVENTORY = Export("AssetSoftware", _inventory, _inventory_item)


CONFIGURATIONS = Export("AssetConfiguration", _configurations, _configuration_item)


FILE_EXPORTS = {
    "SoftwareVulnerabilities": VULNERABILITIES,
    "SoftwareInventory": INVENTORY,
    "SecureConfigurationsAssessment": CONFIGURATIONS,
}
