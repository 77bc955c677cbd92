"""Jira (Cloud or Data Center) issues through REST API v2.

Signs in with Basic auth (account email + API token, Jira Cloud) or a bearer personal access
token (Data Center). Each issue carries the activity's idempotency key as a label, so
:meth:`JiraConnector.find_ticket` is one JQL search: ``labels = "remedium-activity-42"``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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

CATEGORY_STATES: dict[str, NormalizedState] = {
    "new": NormalizedState.PENDING,
    "indeterminate": NormalizedState.IN_PROGRESS,
    "done": NormalizedState.COMPLETED,
}


class JiraConfig(BaseModel):
    """Where to file issues and how to sign in (email + API token, or a personal access token)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, description="e.g. https://example.atlassian.net")
    project_key: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="Project key, e.g. SEC")
    issue_type: str = Field(default="Task", min_length=1)
    email: str = Field(default="", description="Account email, with api_token (Jira Cloud)")
    api_token: SecretStr = Field(default=SecretStr(""), description="API token (Jira Cloud)")
    personal_access_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token (Jira Data Center), instead of email"
    )
    # Projects whose create screen lacks the Priority field refuse it: allow leaving it out.
    set_priority: bool = True
    priority_names: dict[str, str] = Field(
        default_factory=lambda: {"High": "High", "Medium": "Medium", "Low": "Low"},
        description="remedium priority -> Jira priority name",
    )
    # Jira Cloud retired GET /rest/api/2/search for /rest/api/3/search/jql (same parameters, and
    # the same "issues" list in the reply); Data Center still has the v2 path.
    search_path: str = Field(
        default="/rest/api/2/search", pattern=r"^/rest/api/[23]/search(/jql)?$"
    )
    extra_labels: list[str] = Field(default_factory=lambda: ["remedium"])
    # Status names (in the "done" category) that mean IT declined rather than fixed.
    rejected_statuses: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Rejected", "Declined", "Cancelled", "Canceled"]
    )

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> JiraConfig:
        has_basic = bool(self.email and self.api_token.get_secret_value())
        has_pat = bool(self.personal_access_token.get_secret_value())
        if has_basic == has_pat:
            raise ValueError("give either email and api_token, or personal_access_token")
        return self


class JiraConnector:
    """Creates Jira issues and reads their status back."""

    name: ClassVar[str] = "jira"
    config_model: ClassVar[type[BaseModel]] = JiraConfig

    def __init__(self, config: JiraConfig, client: httpx.Client) -> None:
        self.config = config
        self._http = HttpCaller(client, self.name, self._secrets)

    def _secrets(self) -> list[str]:
        token = self.config.api_token.get_secret_value()
        pat = self.config.personal_access_token.get_secret_value()
        return [*secret_forms(token, pat), *basic_auth_forms(self.config.email, token)]

    def public_config(self) -> dict[str, Any]:
        """The configuration with the tokens masked."""
        return mask_config(self.config)

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json"}
        pat = self.config.personal_access_token.get_secret_value()
        if pat:
            headers["Authorization"] = f"Bearer {pat}"
            return self._http.request(method, self._url(path), headers=headers, **kwargs)
        auth = (self.config.email, self.config.api_token.get_secret_value())
        return self._http.request(method, self._url(path), headers=headers, auth=auth, **kwargs)

    def _ref(self, issue: dict[str, Any]) -> TicketRef:
        key = str(issue["key"])
        return TicketRef(
            system=self.name,
            external_id=str(issue.get("id") or key),
            key=key,
            url=self._url(f"/browse/{key}"),
        )

    def issue_fields(self, request: TicketRequest) -> tuple[dict[str, Any], int, int]:
        """The ``fields`` of the new issue, the devices listed and the devices left out."""
        devices, skipped = device_split(request.target_devices)
        labels = [*self.config.extra_labels, request.idempotency_key]
        fields: dict[str, Any] = {
            "project": {"key": self.config.project_key},
            "issuetype": {"name": self.config.issue_type},
            # Jira refuses summaries over 255 characters.
            "summary": request.title[:255],
            "description": render_ticket_text(request, devices, skipped),
            "labels": list(dict.fromkeys(labels)),
        }
        if self.config.set_priority:
            fields["priority"] = {"name": priority_name(self.config, request.priority)}
        if request.due_on is not None:
            fields["duedate"] = request.due_on.isoformat()
        return fields, len(devices), skipped

    def create_ticket(self, request: TicketRequest) -> TicketRef:
        """POST /rest/api/2/issue. Call :meth:`find_ticket` first."""
        fields, sent, skipped = self.issue_fields(request)
        response = self._call("POST", "/rest/api/2/issue", json={"fields": fields})
        issue = self._http.json(response)
        if not issue.get("key"):
            raise self._http.unexpected(response, "created issue has no key")
        ref = self._ref(issue)
        return replace(ref, devices_sent=sent, devices_skipped=skipped)

    def find_ticket(self, idempotency_key: str) -> TicketRef | None:
        """The oldest issue labelled with the key, found by JQL."""
        # Labels cannot hold spaces or quotes, and the key is remedium's own: quoting is enough.
        jql = f'labels = "{idempotency_key}" ORDER BY created ASC'
        params = {"jql": jql, "fields": "status,summary", "maxResults": "1"}
        response = self._call("GET", self.config.search_path, params=params)
        issues = self._http.json(response).get("issues")
        if not isinstance(issues, list):
            raise self._http.unexpected(response, "search reply has no issues list")
        if not issues:
            return None
        return self._ref(issues[0])

    def get_state(self, ref: TicketRef) -> TicketState:
        """``fields.status.name`` and its ``statusCategory.key`` (new, indeterminate, done)."""
        response = self._call("GET", f"/rest/api/2/issue/{ref.key}", params={"fields": "status"})
        status = (self._http.json(response).get("fields") or {}).get("status") or {}
        name = str(status.get("name") or "")
        category = str((status.get("statusCategory") or {}).get("key") or "")
        state = CATEGORY_STATES.get(category, NormalizedState.UNKNOWN)
        if state is NormalizedState.COMPLETED and name.casefold() in {
            s.casefold() for s in self.config.rejected_statuses
        }:
            state = NormalizedState.REJECTED
        return TicketState(system_state=name, state=state, system_detail=category)

    def test_connection(self) -> ConnectionCheck:
        """Sign in (``/myself``) and check that the project exists."""
        try:
            me = self._http.json(self._call("GET", "/rest/api/2/myself"))
            self._call("GET", f"/rest/api/2/project/{self.config.project_key}")
        except ConnectorError as exc:
            return ConnectionCheck(ok=False, message=str(exc))
        who = me.get("emailAddress") or me.get("displayName") or me.get("name") or "the account"
        return ConnectionCheck(
            ok=True, message=f"Signed in as {who}; project {self.config.project_key} found"
        )


def priority_name(config: JiraConfig, priority: Priority) -> str:
    """The Jira priority name a remedium priority is sent as."""
    return config.priority_names.get(priority.value, priority.value)
