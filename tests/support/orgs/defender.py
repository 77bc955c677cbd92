"""The organisation the Defender API tests read (built by the ``org`` fixture in conftest)."""

from __future__ import annotations

from dataclasses import dataclass

from remedium.inventory.models import Device, DeviceGroup


@dataclass
class Organisation:
    """What the tests built, by name."""

    groups: dict[str, DeviceGroup]
    devices: dict[str, Device]
