"""Changing a device by hand: its value (Low/Normal/High) and its tags.

Both are audited; both recompute at once, incrementally, what the device touches (its score
weight, its group's sums; a tag can move it to another device group by the group rules).
The Defender API (``setDeviceValue``, ``tags``) and the device page call these.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.principal import Principal
from remedium.inventory.group_admin import place
from remedium.inventory.models import DEVICE_VALUES, Device
from remedium.recommendations.service import recompute

MAX_TAG = 200
MAX_TAGS = 50


class DeviceWriteError(ValueError):
    """A value the device cannot take (answered 400)."""


def set_device_value(session: Session, device: Device, value: str, *, actor: Principal) -> bool:
    """Set the device value; returns False when it already had it."""
    if value not in DEVICE_VALUES:
        raise DeviceWriteError(f"DeviceValue must be one of {', '.join(DEVICE_VALUES)}.")
    before = device.device_value
    if before == value:
        return False
    device.device_value = value
    record(
        session,
        actor=actor,
        action="device.set_value",
        object_type="device",
        object_id=device.id,
        device_group_id=device.device_group_id,
        before={"device_value": before},
        after={"device_value": value},
    )
    recompute(session, device_ids=[device.id])
    return True


def change_tag(
    session: Session, device: Device, tag: str, action: str, *, actor: Principal
) -> bool:
    """Add or remove one tag (``action`` "Add" or "Remove"); returns False when nothing changed."""
    clean = " ".join(tag.split())
    if not clean or len(clean) > MAX_TAG:
        raise DeviceWriteError(f"A tag must hold 1 to {MAX_TAG} characters.")
    if action not in ("Add", "Remove"):
        raise DeviceWriteError("Action must be 'Add' or 'Remove'.")
    tags = [str(t) for t in (device.tags or [])]
    if action == "Add":
        if clean in tags:
            return False
        if len(tags) >= MAX_TAGS:
            raise DeviceWriteError(f"A device holds at most {MAX_TAGS} tags.")
        new = sorted({*tags, clean})
    else:
        if clean not in tags:
            return False
        new = [t for t in tags if t != clean]
    device.tags = new
    record(
        session,
        actor=actor,
        action="device.tag_" + action.lower(),
        object_type="device",
        object_id=device.id,
        device_group_id=device.device_group_id,
        before={"tags": tags},
        after={"tags": new},
    )
    # A tag rule may now place the device elsewhere; place() recomputes it if it moved
    # (tags themselves weigh nothing in the scores).
    place(session, [device.id])
    return True
