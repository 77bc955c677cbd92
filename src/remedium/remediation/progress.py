"""Measured progress: which target devices the current inventory shows fixed.

A target device is fixed when the inventory no longer shows what the activity targets on it:

- software update/upgrade: no open weakness of the targeted vulnerabilities on that product;
- software uninstall: the product is no longer installed and has no open weakness there;
- configuration change: the check now passes on the device.

It works both ways: a device whose weakness comes back counts as not fixed again while the
activity is active. When every target device is fixed the activity completes by itself
("System confirmation"). "Attention required" activities have no progress.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.db.base import utcnow
from remedium.inventory.models import ConfigurationAssessment, InstalledSoftware, Weakness
from remedium.remediation.models import (
    SYSTEM_CONFIRMATION,
    ActivityDevice,
    ActivityWeakness,
    RemediationActivity,
)
from remedium.remediation.service import audit_group, snapshot


def _still_exposed(activity: RemediationActivity) -> Any:
    """SQL: the target device (outer ``activity_device`` row) still has what is targeted."""
    device = ActivityDevice.device_id
    if activity.kind == "configuration":
        return ~exists().where(
            ConfigurationAssessment.device_id == device,
            ConfigurationAssessment.configuration_id == activity.configuration_id,
            ConfigurationAssessment.is_compliant.is_(True),
        )
    open_weakness = exists().where(
        ActivityWeakness.activity_id == activity.id,
        ActivityWeakness.device_id == device,
        Weakness.device_id == device,
        Weakness.vulnerability_id == ActivityWeakness.target_key,
        Weakness.software_id == activity.software_id,
        Weakness.fixed_at.is_(None),
    )
    if activity.remediation_type == "Uninstall":
        installed = exists().where(
            InstalledSoftware.device_id == device,
            InstalledSoftware.software_id == activity.software_id,
        )
        any_open = exists().where(
            Weakness.device_id == device,
            Weakness.software_id == activity.software_id,
            Weakness.fixed_at.is_(None),
        )
        return installed | any_open
    return open_weakness


def refresh_activity_progress(
    session: Session,
    *,
    activity_ids: Collection[str] | None = None,
    device_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Re-measure active activities and complete those whose devices are all fixed.

    ``activity_ids`` limits the work to those activities; ``device_ids`` (what an import
    touched) to activities that target any of those devices. Both ``None``: every active
    activity. Returns the ids of the activities this call completed. Flushes, never commits.
    """
    now = now or utcnow()
    session.flush()
    query = select(RemediationActivity).where(
        RemediationActivity.status == "Active",
        RemediationActivity.remediation_type != "AttentionRequired",
    )
    if activity_ids is not None:
        query = query.where(RemediationActivity.id.in_(sorted(activity_ids) or [""]))
    if device_ids is not None:
        wanted = sorted(set(device_ids))
        if not wanted:
            return []
        query = query.where(
            exists().where(
                ActivityDevice.activity_id == RemediationActivity.id,
                ActivityDevice.device_id.in_(wanted),
            )
        )
    completed: list[str] = []
    for activity in session.scalars(query).all():
        if _measure(session, activity, now):
            completed.append(activity.id)
    return completed


def _measure(session: Session, activity: RemediationActivity, now: datetime) -> bool:
    still = _still_exposed(activity)
    mine = ActivityDevice.activity_id == activity.id
    session.execute(
        update(ActivityDevice)
        .where(and_(mine, ActivityDevice.fixed_at.is_(None), ~still))
        .values(fixed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ActivityDevice)
        .where(and_(mine, ActivityDevice.fixed_at.is_not(None), still))
        .values(fixed_at=None)
        .execution_options(synchronize_session=False)
    )
    fixed = session.scalar(select(func.count()).where(mine, ActivityDevice.fixed_at.is_not(None)))
    before = snapshot(activity)
    activity.fixed_devices = int(fixed or 0)
    done = activity.target_devices > 0 and activity.fixed_devices >= activity.target_devices
    if done:
        activity.status = "Completed"
        activity.status_last_modified = now
        activity.completed_at = now
        activity.completion_method = SYSTEM_CONFIRMATION
        activity.completer_name = SYSTEM_CONFIRMATION
    session.flush()
    if done:
        record(
            session,
            actor=None,
            action="remediation.complete",
            object_type="remediation_activity",
            object_id=activity.id,
            device_group_id=audit_group(session, activity.id),
            before=before,
            after=snapshot(activity),
            reason="every target device is fixed",
        )
    return done
