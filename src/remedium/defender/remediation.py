"""Defender-compatible ``/api/remediationTasks``: remediation activities in Microsoft's shape.

Field names and values follow Microsoft's remediation activity entity; ``completionMethod`` is
"Automatic" for remedium's "System confirmation" and "Manual" otherwise, as Microsoft spells it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.api.deps import ScopeDep, SessionDep
from remedium.auth.principal import Scope
from remedium.common.scoping import in_scope
from remedium.defender.api import (
    MAX_TOP,
    FilterParam,
    OrderByParam,
    ResourceNotFoundError,
    SelectParam,
    SkipParam,
    TopParam,
    _collection,
    _entity,
    _paging,
    defender_router,
    get_registrar,
)
from remedium.defender.odata import Field, FieldSet, FieldType, project, select_fields
from remedium.defender.schemas import odata_datetime
from remedium.defender.service import Page, Query, apply_query, page_of
from remedium.inventory.models import Device, DeviceGroup
from remedium.remediation import service
from remedium.remediation.models import SYSTEM_CONFIRMATION, ActivityDevice, RemediationActivity

TASK_FIELDS = (
    "id", "title", "description", "category", "type", "createdOn", "requesterId",
    "requesterEmail", "requesterNotes", "dueOn", "priority", "status", "statusLastModifiedOn",
    "completionMethod", "completerId", "completerEmail", "targetDevices", "fixedDevices",
    "rbacGroupNames", "relatedComponent", "scid", "productId", "vendorId", "nameId",
    "recommendedVersion", "recommendedVendor", "recommendedProgram",
    "productivityImpactRemediationType",
)  # fmt: skip
REFERENCE_FIELDS = ("id", "computerDnsName", "osPlatform", "rbacGroupName")

router = defender_router()
_get = get_registrar(router)


_A = RemediationActivity
TASK_FILTERS = FieldSet(
    "RemediationTask",
    [
        Field("createdOn", _A.created_at, FieldType.DATETIME),
        Field("status", _A.status),
        Field("priority", _A.priority),
        Field("type", _A.remediation_type),
        Field("dueOn", _A.due_on, FieldType.DATETIME),
        Field("title", _A.title),
    ],
)
REFERENCE_FILTERS = FieldSet(
    "MachineReference",
    [
        Field("id", Device.machine_id),
        Field("computerDnsName", Device.name),
        Field("osPlatform", Device.os_platform),
        Field("rbacGroupName", DeviceGroup.name),
    ],
)


def task(activity: RemediationActivity, groups: list[str]) -> dict[str, Any]:
    """One activity in the shape of Microsoft's remediation activity entity."""
    method = None
    if activity.completion_method is not None:
        method = "Automatic" if activity.completion_method == SYSTEM_CONFIRMATION else "Manual"
    manual = method == "Manual"
    return {
        "id": activity.id,
        "title": activity.title,
        "description": activity.description,
        "category": activity.category,
        "type": activity.remediation_type,
        "createdOn": odata_datetime(activity.created_at),
        "requesterId": str(activity.requester_user_id or ""),
        "requesterEmail": activity.requester_email or activity.requester_name,
        "requesterNotes": activity.notes,
        "dueOn": odata_datetime(activity.due_on) if activity.due_on else None,
        "priority": activity.priority,
        "status": activity.status,
        "statusLastModifiedOn": odata_datetime(activity.status_last_modified),
        "completionMethod": method,
        "completerId": str(activity.completer_user_id) if manual else None,
        "completerEmail": (activity.completer_email or activity.completer_name) if manual else None,
        "targetDevices": activity.target_devices,
        "fixedDevices": activity.fixed_devices,
        "rbacGroupNames": groups,
        "relatedComponent": activity.related_component,
        "scid": activity.configuration_id,
        "productId": activity.product_id or None,
        "vendorId": activity.vendor_id or None,
        "nameId": activity.name_id or None,
        "recommendedVersion": activity.recommended_version or None,
        "recommendedVendor": activity.recommended_vendor or None,
        "recommendedProgram": activity.recommended_program or None,
        "productivityImpactRemediationType": (
            "AllExposedAssets" if activity.kind == "configuration" else None
        ),
    }


def _tasks(session: Session, scope: Scope, query: Query) -> Page:
    statement = apply_query(
        select(RemediationActivity).where(service.visible(scope)), TASK_FILTERS, query, _A.id
    )
    rows, more = page_of(session, statement, query)
    activities = [row[0] for row in rows]
    names = service.group_names(session, [a.id for a in activities])
    return Page([task(a, names[a.id]) for a in activities], more)


@_get("/remediationTasks", "/RemediationTasks")
def list_remediation_tasks(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """Remediation activities covering the caller's device groups (``$filter`` on createdOn,
    status and more; ``$top`` up to 10,000)."""
    selected = select_fields(select_, TASK_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    page = _tasks(session, scope, Query(filter_, orderby, options))
    return _collection(request, "RemediationTasks", page, options, selected)


def _activity(session: Session, scope: Scope, task_id: str) -> RemediationActivity:
    try:
        return service.get_activity(session, scope, task_id)
    except service.ActivityNotFoundError:
        raise ResourceNotFoundError(f"Remediation task {task_id} was not found") from None


@_get("/remediationTasks/{task_id}", "/RemediationTasks/{task_id}")
def get_remediation_task(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    task_id: str,
    select_: SelectParam = None,
) -> dict[str, Any]:
    """One remediation activity by its id."""
    selected = select_fields(select_, TASK_FIELDS)
    activity = _activity(session, scope, task_id)
    item = task(activity, service.group_names(session, [activity.id])[activity.id])
    return _entity(request, "RemediationTasks", project(item, selected))


@_get(
    "/remediationTasks/{task_id}/machineReferences",
    "/RemediationTasks/{task_id}/machineReferences",
)
def remediation_task_machines(
    request: Request,
    *,
    session: SessionDep,
    scope: ScopeDep,
    task_id: str,
    filter_: FilterParam = None,
    orderby: OrderByParam = None,
    select_: SelectParam = None,
    top: TopParam = None,
    skip: SkipParam = None,
) -> dict[str, Any]:
    """The activity's target devices in the caller's scope."""
    _activity(session, scope, task_id)
    selected = select_fields(select_, REFERENCE_FIELDS)
    options = _paging(request, top, skip, MAX_TOP)
    query = Query(filter_, orderby, options)
    statement = (
        select(Device.machine_id, Device.name, Device.os_platform, DeviceGroup.name)
        .join(ActivityDevice, ActivityDevice.device_id == Device.id)
        .join(DeviceGroup, DeviceGroup.id == Device.device_group_id)
        .where(ActivityDevice.activity_id == task_id, in_scope(Device.device_group_id, scope))
    )
    rows, more = page_of(
        session, apply_query(statement, REFERENCE_FILTERS, query, Device.id), query
    )
    items = [
        {"id": m, "computerDnsName": n, "osPlatform": o, "rbacGroupName": g} for m, n, o, g in rows
    ]
    return _collection(request, "MachineReferences", Page(items, more), options, selected)
