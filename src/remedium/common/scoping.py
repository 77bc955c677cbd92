"""Turning a :class:`~remedium.auth.principal.Scope` into SQL.

Every read query restricts its rows with :func:`in_scope` on a device-group column, so one
function decides what "visible" means.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import InstrumentedAttribute

from remedium.auth.principal import Scope
from remedium.settings import get_settings


def in_scope(column: InstrumentedAttribute[int] | ColumnElement[Any], scope: Scope) -> Any:
    """A SQL condition that keeps rows whose device group ``column`` is visible in ``scope``."""
    if scope.device_group_ids is None:
        return true()
    if not scope.device_group_ids:
        # An empty scope sees nothing; say so to the database instead of sending "IN ()".
        return false()
    return column.in_(sorted(scope.device_group_ids))


def is_empty(scope: Scope) -> bool:
    """True when the scope can see no device group at all (every query can stop early)."""
    return scope.device_group_ids is not None and not scope.device_group_ids


def active_since(now: datetime | None = None) -> datetime:
    """The last-seen time after which a device counts as active (``inactive_after_days``)."""
    return (now or datetime.now(UTC)) - timedelta(days=get_settings().inactive_after_days)
