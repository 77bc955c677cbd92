"""``/api/v1/connectors``: list, configure, switch on/off and test ticketing connections (admins).

Secrets are write-only: a reply shows a set secret as ``********`` and an unset one as ``""``;
sending ``********`` (or nothing) back keeps the stored value.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn, cast

from fastapi import APIRouter, HTTPException, params
from pydantic import BaseModel, ConfigDict, Field

from remedium.api.deps import PrincipalDep, SessionDep, require
from remedium.auth.principal import Right
from remedium.connectors import forms, registry, service
from remedium.connectors.models import ConnectorConfig

ADMIN_RIGHT = cast(params.Depends, require(Right.ADMIN))
router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"], dependencies=[ADMIN_RIGHT])
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ConnectionOut(BaseModel):
    """A ticketing connection as it may be shown: every secret masked."""

    name: str
    kind: str
    enabled: bool
    config: dict[str, Any]
    # False when the stored configuration no longer validates (e.g. written by an older version).
    valid: bool = True


class ConnectionList(BaseModel):
    """Every configured connection, and the kinds of connector remedium has."""

    items: list[ConnectionOut]
    kinds: list[str]


class ConfigureRequest(BaseModel):
    """``PUT /api/v1/connectors/{name}``: the connector kind and its settings."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="intune, jira, servicenow or webhook")
    config: dict[str, Any] = Field(default_factory=dict)


class TestResult(BaseModel):
    """The outcome of "Test connection"."""

    name: str
    ok: bool
    message: str


def connection_out(row: ConnectorConfig) -> ConnectionOut:
    """The API shape of a stored connection (secrets masked, never the stored values)."""
    try:
        view = service.public_view(row)
    except (ValueError, KeyError):
        # An unusable stored configuration is shown empty rather than risk echoing a secret.
        return ConnectionOut(
            name=row.name, kind=row.kind, enabled=row.enabled, config={}, valid=False
        )
    return ConnectionOut(
        name=view["name"], kind=view["kind"], enabled=view["enabled"], config=view["config"]
    )


def _unknown(name: str) -> NoReturn:
    raise HTTPException(404, detail=f"no connection called {name!r}")


@router.get("", response_model=ConnectionList)
def list_connections(session: SessionDep) -> ConnectionList:
    """Every connection, by name, with secrets masked."""
    return ConnectionList(
        items=[connection_out(row) for row in service.list_connections(session)],
        kinds=sorted(registry.CONNECTORS),
    )


@router.put("/{name}", response_model=ConnectionOut)
def configure(
    name: str, body: ConfigureRequest, session: SessionDep, principal: PrincipalDep
) -> ConnectionOut:
    """Create or update a connection; a new one stays switched off until enabled."""
    if not re.match(NAME_PATTERN, name):
        raise HTTPException(422, detail="a connection name is letters, digits, '.', '_' or '-'")
    if body.kind not in registry.CONNECTORS:
        known = ", ".join(sorted(registry.CONNECTORS))
        raise HTTPException(422, detail=f"unknown connector kind {body.kind!r}; known: {known}")
    current = forms.stored_model(session.get(ConnectorConfig, name), body.kind)
    errors = forms.validation_errors(body.kind, current, body.config)
    if errors:
        # Built without the submitted values: a refused edit must not echo a secret back.
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", "config", *([] if k == forms.FORM_ERROR else [k])], "msg": m}
                for k, m in errors.items()
            ],
        )
    try:
        row = service.configure(session, principal, name=name, kind=body.kind, config=body.config)
    except service.ConnectorConfigError:
        raise HTTPException(422, detail="the configuration was refused") from None
    return connection_out(row)


def _switch(session: SessionDep, principal: PrincipalDep, name: str, on: bool) -> ConnectionOut:
    try:
        row = service.set_enabled(session, principal, name, on)
    except service.ConnectorConfigError:
        _unknown(name)
    return connection_out(row)


@router.post("/{name}/enable", response_model=ConnectionOut)
def enable(name: str, session: SessionDep, principal: PrincipalDep) -> ConnectionOut:
    """Switch the connection on: requests may then choose it."""
    return _switch(session, principal, name, True)


@router.post("/{name}/disable", response_model=ConnectionOut)
def disable(name: str, session: SessionDep, principal: PrincipalDep) -> ConnectionOut:
    """Switch the connection off: pending tickets wait until it is on again."""
    return _switch(session, principal, name, False)


@router.post("/{name}/test", response_model=TestResult)
def test(name: str, session: SessionDep, principal: PrincipalDep) -> TestResult:
    """Check the configuration and credentials against the system (creates nothing)."""
    try:
        check = run_test(session, principal, name)
    except service.ConnectorConfigError:
        _unknown(name)
    return TestResult(name=name, ok=check[0], message=check[1])


def run_test(session: SessionDep, principal: PrincipalDep, name: str) -> tuple[bool, str]:
    """Run "Test connection", turning an unusable stored configuration into a failed check."""
    if session.get(ConnectorConfig, name) is None:
        raise service.ConnectorConfigError(f"no connection called {name!r}")
    try:
        check = service.test_connection(session, principal, name)
    except ValueError as error:  # pydantic's ValidationError: the stored settings do not validate
        return False, f"The configuration is incomplete: {str(error).splitlines()[0]}"
    return check.ok, check.message
