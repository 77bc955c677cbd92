"""Who is asking, and what they may see and do.

Every service query that lists or counts inventory takes a :class:`Scope` and limits itself to
``scope.device_group_ids`` (``None`` means every group, including future ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Right(StrEnum):
    """The rights a user can hold (a user may hold several)."""

    VIEW = "view"
    REMEDIATION = "remediation"
    EXCEPTIONS = "exceptions"
    # Device value, tags and device groups (docs/device-groups.md).
    INVENTORY = "inventory"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Scope:
    """The device groups a request may see; ``None`` means all of them."""

    device_group_ids: frozenset[int] | None = None

    @property
    def is_unrestricted(self) -> bool:
        """True when every device group is visible."""
        return self.device_group_ids is None

    def allows(self, device_group_id: int) -> bool:
        """True when ``device_group_id`` is visible in this scope."""
        return self.device_group_ids is None or device_group_id in self.device_group_ids

    def narrowed(self, group_ids: frozenset[int] | None) -> Scope:
        """This scope intersected with a page's device-group filter."""
        if group_ids is None:
            return self
        if self.device_group_ids is None:
            return Scope(frozenset(group_ids))
        return Scope(self.device_group_ids & group_ids)


UNRESTRICTED = Scope()


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user (or API token) behind a request."""

    user_id: int | None
    name: str
    rights: frozenset[Right] = field(default_factory=frozenset)
    scope: Scope = UNRESTRICTED

    def has(self, right: Right) -> bool:
        """True when the principal holds ``right`` (administrators hold every right)."""
        return Right.ADMIN in self.rights or right in self.rights
