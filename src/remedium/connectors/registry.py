"""The explicit list of ticketing connectors.

A connector is registered by adding one line to ``CONNECTORS``: its name and the ``module:Class``
that implements :class:`remedium.connectors.base.TicketConnector`. Modules are imported when first
used, so a broken connector fails loudly, by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

import httpx
from pydantic import BaseModel

from remedium.connectors.base import TicketConnector

CONNECTORS: dict[str, str] = {
    "intune": "remedium.connectors.intune:IntuneConnector",
    "jira": "remedium.connectors.jira:JiraConnector",
    "servicenow": "remedium.connectors.servicenow:ServiceNowConnector",
    "webhook": "remedium.connectors.webhook:WebhookConnector",
}


def connector_class(name: str) -> type[TicketConnector]:
    """The class registered as ``name``."""
    try:
        target = CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise KeyError(f"unknown connector {name!r}; known: {known}") from None
    module_name, _, class_name = target.partition(":")
    return cast(type[TicketConnector], getattr(importlib.import_module(module_name), class_name))


def config_model(name: str) -> type[BaseModel]:
    """The pydantic model of ``name``'s configuration (for forms and validation)."""
    return connector_class(name).config_model


def build_connector(name: str, config: Mapping[str, Any], client: httpx.Client) -> TicketConnector:
    """Validate ``config`` and build connector ``name`` around the caller's HTTP client.

    Raises ``pydantic.ValidationError`` for a configuration the connector cannot use.
    """
    cls = connector_class(name)
    validated = cls.config_model.model_validate(dict(config))
    # The Protocol says nothing about constructors; every connector takes (config, client).
    return cast(Any, cls)(validated, client)  # type: ignore[no-any-return]
