"""The stored configuration of each ticketing connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from remedium.db.base import Base, utcnow
from remedium.db.types import UtcDateTime


class ConnectorConfig(Base):
    """One configured ticketing connection (``name`` is what requests pick, ``kind`` the system).

    A connection is switched off until an administrator turns it on (as Defender's Intune
    connection is). ``config`` holds the connector's validated settings, secrets included: it is
    never returned by the API or written to the audit history (see ``connectors.base.mask_config``).
    """

    __tablename__ = "connector_config"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # intune | jira | servicenow | webhook
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
