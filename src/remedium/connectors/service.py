"""Stored ticketing connections: configure, switch on/off, test, and build for the worker.

Configurations hold secrets; :func:`public_view` is the only shape that leaves this module, with
every secret masked. A connection is off until an administrator switches it on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.principal import Principal
from remedium.connectors import registry
from remedium.connectors.base import ConnectionCheck, TicketConnector, mask_config, merge_config
from remedium.connectors.models import ConnectorConfig
from remedium.db.base import utcnow

HTTP_TIMEOUT_SECONDS = 15.0


class ConnectorConfigError(ValueError):
    """A configuration the connector cannot use, or an unknown connection (422/404)."""


def list_connections(session: Session) -> list[ConnectorConfig]:
    """Every configured connection, by name."""
    return list(session.scalars(select(ConnectorConfig).order_by(ConnectorConfig.name)))


def public_view(config: ConnectorConfig) -> dict[str, Any]:
    """The connection as it may be shown: secrets masked."""
    model = registry.config_model(config.kind)
    return {
        "name": config.name,
        "kind": config.kind,
        "enabled": config.enabled,
        "config": mask_config(model.model_validate(config.config)),
    }


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}


def configure(
    session: Session, actor: Principal, *, name: str, kind: str, config: Mapping[str, Any]
) -> ConnectorConfig:
    """Create or update a connection (left switched off when new); audited without secrets."""
    try:
        model = registry.config_model(kind)
    except KeyError as error:
        raise ConnectorConfigError(str(error)) from None
    row = session.get(ConnectorConfig, name)
    current = model.model_validate(row.config) if row is not None and row.kind == kind else None
    try:
        validated = merge_config(model, current, config)
    except ValueError as error:
        raise ConnectorConfigError(str(error)) from None
    stored = _plain({k: getattr(validated, k) for k in type(validated).model_fields})
    stored = model.model_validate(stored).model_dump(mode="python")
    stored = _plain(stored)
    if row is None:
        row = ConnectorConfig(name=name, kind=kind, enabled=False, config=stored)
        session.add(row)
    else:
        row.kind = kind
        row.config = stored
        row.updated_at = utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="connector.configure",
        object_type="connector",
        object_id=name,
        after={"kind": kind, "config": mask_config(validated)},
    )
    return row


def set_enabled(session: Session, actor: Principal, name: str, enabled: bool) -> ConnectorConfig:
    """Switch a connection on or off; audited."""
    row = session.get(ConnectorConfig, name)
    if row is None:
        raise ConnectorConfigError(f"no connection called {name!r}")
    before = row.enabled
    row.enabled = enabled
    row.updated_at = utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="connector.enable" if enabled else "connector.disable",
        object_type="connector",
        object_id=name,
        before={"enabled": before},
        after={"enabled": enabled},
    )
    return row


@contextmanager
def http_client() -> Iterator[httpx.Client]:
    """The HTTP client connectors get: bounded timeouts, no implicit proxies from files."""
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
        yield client


def build(config: ConnectorConfig, client: httpx.Client) -> TicketConnector:
    """The connector of a stored connection, around ``client``."""
    return registry.build_connector(config.kind, config.config, client)


def test_connection(session: Session, actor: Principal, name: str) -> ConnectionCheck:
    """Run the connector's own check (creates nothing); audited."""
    row = session.get(ConnectorConfig, name)
    if row is None:
        raise ConnectorConfigError(f"no connection called {name!r}")
    with http_client() as client:
        check = build(row, client).test_connection()
    record(
        session,
        actor=actor,
        action="connector.test",
        object_type="connector",
        object_id=name,
        after={"ok": check.ok},
        reason=check.message[:500],
    )
    return check


class EnabledConnectors:
    """A resolver for the outbox: builds switched-on connections around one shared client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._built: dict[str, TicketConnector] = {}

    def __call__(self, session: Session, name: str) -> TicketConnector | None:
        """The connector called ``name``, or ``None`` when it is missing or switched off."""
        row = session.get(ConnectorConfig, name)
        if row is None or not row.enabled:
            return None
        if name not in self._built:
            self._built[name] = build(row, self.client)
        return self._built[name]
