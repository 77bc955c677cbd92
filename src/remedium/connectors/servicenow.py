"""ServiceNow records through the Table API (``/api/now/table/{table}``), with Basic auth.

The activity's idempotency key goes into ``correlation_id`` (and ``correlation_display`` says
"remedium"), the fields ServiceNow keeps for exactly this: :meth:`ServiceNowConnector.find_ticket`
queries ``correlation_id=<key>``. The table defaults to ``sc_task``; ``incident`` works too, and
any other task-derived table whose states follow one of the two (see ``STATE_MAPS``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from remedium.connectors._http import HttpCaller, basic_auth_forms, secret_forms
from remedium.connectors.base import (
    ConnectionCheck,
    NormalizedState,
    Priority,
    TicketRef,
    TicketRequest,
    TicketState,
    device_split,
    mask_config,
    render_ticket_text,
)
from remedium.connectors.errors import ConnectorError

N = NormalizedState
# The out-of-the-box state choices, per table: number -> (label, remedium state).
STATE_MAPS: dict[str, dict[str, tuple[str, NormalizedState]]] = {
    "incident": {
        "1": ("New", N.PENDING),
        "2": ("In Progress", N.IN_PROGRESS),
        "3": ("On Hold", N.IN_PROGRESS),
        "6": ("Resolved", N.COMPLETED),
        "7": ("Closed", N.COMPLETED),
        "8": ("Canceled", N.REJECTED),
    },
    # sc_task inherits the task table's choices.
    "sc_task": {
        "-5": ("Pending", N.PENDING),
        "1": ("Open", N.PENDING),
        "2": ("Work in Progress", N.IN_PROGRESS),
        "3": ("Closed Complete", N.COMPLETED),
        "4": ("Closed Incomplete", N.REJECTED),
        "7": ("Closed Skipped", N.REJECTED),
    },
}

# remedium priority -> (impact, urgency, priority). On incident, ServiceNow derives priority from
# impact x urgency (2/1 -> 2 High, 2/2 -> 3 Moderate, 3/2 -> 4 Low); sc_task takes priority as is.
PRIORITIES: dict[Priority, tuple[str, str, str]] = {
    Priority.HIGH: ("2", "1", "2"),
    Priority.MEDIUM: ("2", "2", "3"),
    Priority.LOW: ("3", "2", "4"),
}


class ServiceNowConfig(BaseModel):
    """The instance, the table to file into, and a user allowed to create records there."""

    model_config = ConfigDict(extra="forbid")

    instance_url: str = Field(min_length=1, description="e.g. https://example.service-now.com")
    username: str = Field(min_length=1)
    password: SecretStr
    table: str = Field(default="sc_task", pattern=r"^[a-z][a-z0-9_]*$")
    assignment_group: str = Field(default="", description="sys_id or name of the group")
    caller_id: str = Field(default="", description="incident only: the caller's sys_id or name")


class ServiceNowConnector:
    """Creates ServiceNow records and reads their ``state`` back."""

    name: ClassVar[str] = "servicenow"
    config_model: ClassVar[type[BaseModel]] = ServiceNowConfig

    def __init__(self, config: ServiceNowConfig, client: httpx.Client) -> None:
        self.config = config
        self._http = HttpCaller(client, self.name, self._secrets)

    def _secrets(self) -> list[str]:
        password = self.config.password.get_secret_value()
        return [*secret_forms(password), *basic_auth_forms(self.config.username, password)]

    def public_config(self) -> dict[str, Any]:
        """The configuration with the password masked."""
        return mask_config(self.config)

    @property
    def _table_url(self) -> str:
        return f"{self.config.instance_url.rstrip('/')}/api/now/table/{self.config.table}"

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        auth = (self.config.username, self.config.password.get_secret_value())
        headers = {"Accept": "application/json"}
        return self._http.request(method, url, headers=headers, auth=auth, **kwargs)

    def _ref(self, record: dict[str, Any]) -> TicketRef:
        sys_id = _value(record.get("sys_id"))
        number = _value(record.get("number")) or sys_id
        base = self.config.instance_url.rstrip("/")
        return TicketRef(
            system=self.name,
            external_id=sys_id,
            key=number,
            url=f"{base}/{self.config.table}.do?sys_id={sys_id}",
        )

    def record_fields(self, request: TicketRequest) -> tuple[dict[str, Any], int, int]:
        """The new record's fields, the devices listed and the devices left out."""
        devices, skipped = device_split(request.target_devices)
        impact, urgency, priority = PRIORITIES[request.priority]
        fields: dict[str, Any] = {
            # short_description is a 160-character string out of the box.
            "short_description": request.title[:160],
            "description": render_ticket_text(request, devices, skipped),
            "correlation_id": request.idempotency_key,
            "correlation_display": "remedium",
        }
        if self.config.table == "incident":
            fields["impact"] = impact
            fields["urgency"] = urgency
            if self.config.caller_id:
                fields["caller_id"] = self.config.caller_id
        else:
            fields["priority"] = priority
        if request.due_on is not None:
            fields["due_date"] = f"{request.due_on.isoformat()} 23:59:59"
        if self.config.assignment_group:
            fields["assignment_group"] = self.config.assignment_group
        return fields, len(devices), skipped

    def create_ticket(self, request: TicketRequest) -> TicketRef:
        """POST /api/now/table/{table}. Call :meth:`find_ticket` first."""
        fields, sent, skipped = self.record_fields(request)
        params = {"sysparm_fields": "sys_id,number,state"}
        response = self._call("POST", self._table_url, params=params, json=fields)
        record = self._http.json(response).get("result")
        if not isinstance(record, dict) or not _value(record.get("sys_id")):
            raise self._http.unexpected(response, "created record has no sys_id")
        ref = self._ref(record)
        return replace(ref, devices_sent=sent, devices_skipped=skipped)

    def find_ticket(self, idempotency_key: str) -> TicketRef | None:
        """The oldest record whose ``correlation_id`` is the key."""
        # The encoded query language has no quoting: "^" would start another condition.
        if "^" in idempotency_key:
            raise ValueError("an idempotency key may not contain '^'")
        params = {
            "sysparm_query": f"correlation_id={idempotency_key}^ORDERBYsys_created_on",
            "sysparm_limit": "1",
            "sysparm_fields": "sys_id,number,state",
        }
        response = self._call("GET", self._table_url, params=params)
        records = self._http.json(response).get("result")
        if not isinstance(records, list):
            raise self._http.unexpected(response, "query reply has no result list")
        return self._ref(records[0]) if records else None

    def get_state(self, ref: TicketRef) -> TicketState:
        """``state`` as a number and the instance's own label for it."""
        params = {"sysparm_fields": "state", "sysparm_display_value": "all"}
        response = self._call("GET", f"{self._table_url}/{ref.external_id}", params=params)
        record = self._http.json(response).get("result")
        if not isinstance(record, dict):
            raise self._http.unexpected(response, "record reply has no result")
        raw = record.get("state")
        number = _value(raw)
        label = raw.get("display_value") if isinstance(raw, dict) else None
        known = STATE_MAPS.get(self.config.table, {}).get(number)
        state = known[1] if known else NormalizedState.UNKNOWN
        shown = str(label) if label else (known[0] if known else number)
        return TicketState(system_state=shown, state=state, system_detail=number)

    def test_connection(self) -> ConnectionCheck:
        """Sign in and read one record of the table."""
        try:
            params = {"sysparm_limit": "1", "sysparm_fields": "sys_id"}
            self._call("GET", self._table_url, params=params)
        except ConnectorError as exc:
            return ConnectionCheck(ok=False, message=str(exc))
        return ConnectionCheck(ok=True, message=f"Signed in and read table {self.config.table}")


def _value(field: object) -> str:
    """A Table API field as a string, whether sent plain or as ``{"value", "display_value"}``."""
    if isinstance(field, dict):
        return str(field.get("value") or "")
    return "" if field is None else str(field)
