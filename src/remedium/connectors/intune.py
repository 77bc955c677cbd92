"""Intune security tasks through Microsoft Graph (beta), with OAuth 2.0 client credentials.

Software requests become ``#microsoft.graph.appVulnerabilityTask``, configuration changes
``#microsoft.graph.securityConfigurationTask``. Only Intune-managed or Azure AD-joined devices
count: the rest are dropped and reported on the :class:`TicketRef`. Graph has no idempotency key
for tasks, so every task carries a marker (``[remedium:<key>]``) in ``creatorNotes`` and
``description``; :meth:`IntuneConnector.find_ticket` pages through the tasks looking for it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from remedium.connectors._http import HttpCaller, secret_forms
from remedium.connectors.base import (
    ConnectionCheck,
    NormalizedState,
    Priority,
    RemediationType,
    TicketRef,
    TicketRequest,
    TicketState,
    device_split,
    mask_config,
    render_ticket_text,
)
from remedium.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    NothingToSendError,
    PermanentError,
    UnexpectedReplyError,
)

TASKS_PATH = "/beta/deviceAppManagement/deviceAppManagementTasks"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Renew a token this long before Graph would refuse it, so a slow request does not straddle expiry.
TOKEN_EXPIRY_MARGIN_SECONDS = 60.0
# Look-up pages are followed until the marker is found; past this many something is wrong.
MAX_LOOKUP_PAGES = 1000

STATES: dict[str, NormalizedState] = {
    "pending": NormalizedState.PENDING,
    # Intune shows an accepted task as "Accepted"; Graph calls it "active".
    "active": NormalizedState.ACCEPTED,
    "completed": NormalizedState.COMPLETED,
    "rejected": NormalizedState.REJECTED,
    "unknown": NormalizedState.UNKNOWN,
}

MITIGATION_TYPES: dict[RemediationType, str] = {
    RemediationType.UPDATE: "update",
    RemediationType.UNINSTALL: "uninstall",
    RemediationType.ATTENTION_REQUIRED: "unknown",
}


class IntuneConfig(BaseModel):
    """An Azure AD app registration allowed ``DeviceManagementApps.ReadWrite.All`` on Graph."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=r"^[A-Za-z0-9.-]+$", description="Directory (tenant) id")
    client_id: str = Field(min_length=1, description="Application (client) id")
    client_secret: SecretStr = Field(description="Client secret of the app registration")
    authority_url: str = Field(
        default="https://login.microsoftonline.com", description="Microsoft identity platform"
    )
    graph_url: str = Field(default="https://graph.microsoft.com", description="Microsoft Graph")
    assigned_to: str = Field(default="", description="Sent as the task's assignedTo")
    # Intune has no "medium"; see docs/connectors.md for why Medium defaults to high.
    medium_priority: Literal["high", "low", "none"] = "high"
    task_link_template: str = Field(
        default="https://intune.microsoft.com/#home",
        description="Link shown beside the activity; {id} is replaced by the task id",
    )


class IntuneConnector:
    """Creates and follows Intune security tasks."""

    name: ClassVar[str] = "intune"
    config_model: ClassVar[type[BaseModel]] = IntuneConfig

    def __init__(self, config: IntuneConfig, client: httpx.Client) -> None:
        self.config = config
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._http = HttpCaller(client, self.name, self._secrets)

    def _secrets(self) -> list[str]:
        found = secret_forms(self.config.client_secret.get_secret_value())
        if self._token:
            found.append(self._token)
        return found

    def public_config(self) -> dict[str, Any]:
        """The configuration with the client secret masked."""
        return mask_config(self.config)

    # --- sign-in -------------------------------------------------------------------------------

    def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires_at:
            return self._token
        url = f"{self.config.authority_url.rstrip('/')}/{self.config.tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret.get_secret_value(),
            "scope": GRAPH_SCOPE,
        }
        try:
            response = self._http.request("POST", url, data=form)
        except PermanentError as exc:
            # The identity platform answers 400 invalid_client/unauthorized_client for bad
            # credentials and unknown tenants alike: all of them need an administrator.
            raise AuthenticationError(
                f"sign-in refused: {exc.message}", system=self.name, status=exc.status
            ) from None
        body = self._http.json(response)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._http.unexpected(response, "token reply without access_token")
        expires_in = float(body.get("expires_in") or 0)
        self._token = token
        margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, expires_in / 2)
        self._token_expires_at = time.monotonic() + expires_in - margin
        return token

    def _graph(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        cached = self._token is not None and time.monotonic() < self._token_expires_at
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._access_token()}"}
        try:
            return self._http.request(method, url, headers=headers, **kwargs)
        except AuthenticationError as exc:
            if not (cached and exc.status == 401):
                raise
        # A cached token can be revoked before its expiry: sign in again, once.
        self._token = None
        headers["Authorization"] = f"Bearer {self._access_token()}"
        return self._http.request(method, url, headers=headers, **kwargs)

    # --- tickets -------------------------------------------------------------------------------

    @property
    def _tasks_url(self) -> str:
        return self.config.graph_url.rstrip("/") + TASKS_PATH

    @staticmethod
    def marker(idempotency_key: str) -> str:
        """The text that ties a task to its activity, searched for by :meth:`find_ticket`."""
        return f"[remedium:{idempotency_key}]"

    def _priority(self, priority: Priority) -> str:
        if priority is Priority.HIGH:
            return "high"
        if priority is Priority.LOW:
            return "low"
        return self.config.medium_priority

    def task_body(self, request: TicketRequest) -> tuple[dict[str, Any], int, int]:
        """The Graph body for ``request``, the devices sent and the devices left out."""
        devices, skipped = device_split(request.target_devices, managed_only=True)
        if not devices:
            raise NothingToSendError(
                f"none of the {len(request.target_devices)} target devices is Intune-managed "
                "or Azure AD-joined",
                system=self.name,
            )
        marker = self.marker(request.idempotency_key)
        body: dict[str, Any] = {
            "displayName": request.title[:250],
            "description": render_ticket_text(request, devices, skipped) + f"\n{marker}",
            "category": "advancedThreatProtection",
            "priority": self._priority(request.priority),
            "creator": request.requester_email,
            "creatorNotes": (request.notes + "\n" if request.notes else "") + marker,
            "status": "pending",
        }
        if self.config.assigned_to:
            body["assignedTo"] = self.config.assigned_to
        if request.due_on is not None:
            # Due "by" the date: the end of that day, in UTC.
            body["dueDateTime"] = f"{request.due_on.isoformat()}T23:59:59Z"
        is_configuration = request.remediation_type is RemediationType.CONFIGURATION_CHANGE or (
            request.product is None and bool(request.configuration_id)
        )
        if is_configuration:
            body["@odata.type"] = "#microsoft.graph.securityConfigurationTask"
            body["managedDeviceCount"] = len(devices)
        else:
            product = request.product
            body["@odata.type"] = "#microsoft.graph.appVulnerabilityTask"
            body["appName"] = product.name if product else ""
            body["appPublisher"] = product.vendor if product else ""
            body["appVersion"] = product.version if product else ""
            body["mitigationType"] = MITIGATION_TYPES[request.remediation_type]
            body["managedDeviceCount"] = len(devices)
            body["mobileAppCount"] = 0
            if product and product.recommended_version:
                body["remediation"] = f"Update {product.name} to {product.recommended_version}"
        return body, len(devices), skipped

    def _ref(self, task: dict[str, Any]) -> TicketRef:
        task_id = str(task["id"])
        return TicketRef(
            system=self.name,
            external_id=task_id,
            key=task_id,
            url=self.config.task_link_template.replace("{id}", task_id),
        )

    def create_ticket(self, request: TicketRequest) -> TicketRef:
        """POST a new security task. Call :meth:`find_ticket` first."""
        body, sent, skipped = self.task_body(request)
        response = self._graph("POST", self._tasks_url, json=body)
        task = self._http.json(response)
        if not task.get("id"):
            raise self._http.unexpected(response, "created task has no id")
        ref = self._ref(task)
        return replace(ref, devices_sent=sent, devices_skipped=skipped)

    def find_ticket(self, idempotency_key: str) -> TicketRef | None:
        """The task whose notes or description hold this key's marker (the oldest, if several)."""
        marker = self.marker(idempotency_key)
        graph = urlsplit(self.config.graph_url)
        url: str | None = self._tasks_url
        params: dict[str, str] | None = {
            "$select": "id,displayName,description,creatorNotes,createdDateTime",
            "$top": "100",
        }
        matches: list[dict[str, Any]] = []
        for _ in range(MAX_LOOKUP_PAGES):
            if url is None:
                break
            response = self._graph("GET", url, params=params)
            page = self._http.json(response)
            for task in page.get("value") or []:
                text = f"{task.get('creatorNotes') or ''}\n{task.get('description') or ''}"
                if marker in text and task.get("id"):
                    matches.append(task)
            url = page.get("@odata.nextLink")
            params = None  # the next link carries its own query
            if url is not None:
                nxt = urlsplit(url)
                # Never send the bearer token to a host other than the configured Graph.
                if (nxt.scheme, nxt.netloc) != (graph.scheme, graph.netloc):
                    raise UnexpectedReplyError(
                        "@odata.nextLink leaves Microsoft Graph", system=self.name
                    )
        else:
            raise UnexpectedReplyError(
                f"look-up gave up after {MAX_LOOKUP_PAGES} pages of tasks", system=self.name
            )
        if not matches:
            return None
        matches.sort(key=lambda t: str(t.get("createdDateTime") or ""))
        return self._ref(matches[0])

    def get_state(self, ref: TicketRef) -> TicketState:
        """The task's ``status``: pending, active (accepted), completed or rejected."""
        response = self._graph("GET", f"{self._tasks_url}/{ref.external_id}")
        task = self._http.json(response)
        status = str(task.get("status") or "unknown")
        return TicketState(system_state=status, state=STATES.get(status, NormalizedState.UNKNOWN))

    def test_connection(self) -> ConnectionCheck:
        """Sign in and read one security task."""
        self._token = None
        try:
            self._graph("GET", self._tasks_url, params={"$top": "1"})
        except ConnectorError as exc:
            return ConnectionCheck(ok=False, message=str(exc))
        return ConnectionCheck(ok=True, message="Signed in to Graph and read security tasks")
