"""A generic signed webhook: remedium POSTs JSON, the receiver does the rest.

Every delivery carries three headers:

- ``X-Remedium-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with the shared secret;
- ``X-Remedium-Timestamp``: when it was sent (Unix seconds);
- ``Idempotency-Key``: the same on every retry of one delivery.

A webhook cannot be searched, so :meth:`WebhookConnector.find_ticket` always answers ``None`` and
the receiver must dedupe by ``Idempotency-Key``: a second delivery with a known key must not make
a second ticket and should answer with the first one's ``{"id", "url", "state"}``. The payload is
documented in ``docs/connectors.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from remedium.connectors._http import HttpCaller, secret_forms
from remedium.connectors.base import (
    ConnectionCheck,
    NormalizedState,
    TicketRef,
    TicketRequest,
    TicketState,
    device_split,
    mask_config,
)
from remedium.connectors.errors import ConnectorError

REMEDIATION_SCHEMA = "remedium.remediation.v1"
EXCEPTION_SCHEMA = "remedium.exception.v1"
EVENT_REMEDIATION_REQUESTED = "remediation.requested"
EVENT_EXCEPTION_EXPIRING = "exception.expiring"
EVENT_PING = "ping"

SIGNATURE_HEADER = "X-Remedium-Signature"
TIMESTAMP_HEADER = "X-Remedium-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Words receivers commonly answer with, for the normalised state.
STATE_WORDS: dict[str, NormalizedState] = {
    "delivered": NormalizedState.PENDING,
    "received": NormalizedState.PENDING,
    "new": NormalizedState.PENDING,
    "open": NormalizedState.PENDING,
    "pending": NormalizedState.PENDING,
    "accepted": NormalizedState.ACCEPTED,
    "in_progress": NormalizedState.IN_PROGRESS,
    "in progress": NormalizedState.IN_PROGRESS,
    "active": NormalizedState.IN_PROGRESS,
    "completed": NormalizedState.COMPLETED,
    "done": NormalizedState.COMPLETED,
    "resolved": NormalizedState.COMPLETED,
    "closed": NormalizedState.COMPLETED,
    "rejected": NormalizedState.REJECTED,
    "declined": NormalizedState.REJECTED,
    "canceled": NormalizedState.REJECTED,
    "cancelled": NormalizedState.REJECTED,
}


class WebhookConfig(BaseModel):
    """The receiver's URL, the shared signing secret, and optionally where to read state back."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="Where deliveries are POSTed")
    secret: SecretStr = Field(description="Shared secret for the HMAC-SHA256 signature")
    status_url_template: str = Field(
        default="", description="Optional GET URL for a ticket's state; {id} is the receiver's id"
    )


def sign(secret: str, body: bytes) -> str:
    """The ``X-Remedium-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the right one for ``body`` (constant-time), for receivers."""
    return hmac.compare_digest(sign(secret, body), signature)


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def remediation_payload(request: TicketRequest, *, sent_at: datetime) -> dict[str, Any]:
    """The ``remediation.requested`` event for ``request``, schema ``remedium.remediation.v1``."""
    devices, skipped = device_split(request.target_devices)
    product = request.product
    return {
        "schema": REMEDIATION_SCHEMA,
        "event": EVENT_REMEDIATION_REQUESTED,
        "idempotency_key": request.idempotency_key,
        "sent_at": sent_at.isoformat(),
        "activity": {
            "id": request.activity_id,
            "title": request.title,
            "description": request.description,
            "remediation_type": request.remediation_type.value,
            "priority": request.priority.value,
            "due_on": request.due_on.isoformat() if request.due_on else None,
            "requester_email": request.requester_email,
            "notes": request.notes,
            "link": request.link,
            "product": None
            if product is None
            else {
                "vendor": product.vendor,
                "name": product.name,
                "version": product.version,
                "recommended_version": product.recommended_version,
            },
            "configuration_id": request.configuration_id or None,
            "target_device_count": len(devices),
            "devices_not_included": skipped,
            "target_devices": [
                {
                    "name": d.name,
                    "machine_id": d.machine_id,
                    "aad_device_id": d.aad_device_id or None,
                    "intune_managed": d.intune_managed,
                    "aad_joined": d.aad_joined,
                }
                for d in devices
            ],
        },
    }


def state_for(word: str) -> NormalizedState:
    """remedium's state for a receiver's state word (``unknown`` when it is not a common one)."""
    return STATE_WORDS.get(word.strip().casefold(), NormalizedState.UNKNOWN)


class WebhookConnector:
    """Delivers signed JSON events to one receiver."""

    name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig

    def __init__(self, config: WebhookConfig, client: httpx.Client) -> None:
        self.config = config
        # The URL itself may be a credential, so messages say "webhook URL" instead of it.
        self._http = HttpCaller(client, self.name, self._secrets, url_label="the webhook URL")

    def _secrets(self) -> list[str]:
        return secret_forms(self.config.secret.get_secret_value())

    def public_config(self) -> dict[str, Any]:
        """The configuration with the signing secret masked."""
        return mask_config(self.config)

    def _headers(self, body: bytes, idempotency_key: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            SIGNATURE_HEADER: sign(self.config.secret.get_secret_value(), body),
            TIMESTAMP_HEADER: str(int(time.time())),
            IDEMPOTENCY_HEADER: idempotency_key,
        }

    def deliver(self, payload: dict[str, Any], idempotency_key: str) -> httpx.Response:
        """POST one signed event; retries must reuse ``idempotency_key``."""
        body = encode(payload)
        headers = self._headers(body, idempotency_key)
        return self._http.request("POST", self.config.url, content=body, headers=headers)

    def send_event(
        self, event: str, schema: str, idempotency_key: str, data: dict[str, Any]
    ) -> None:
        """Deliver another kind of event (e.g. ``exception.expiring``) with the same envelope."""
        payload = {
            "schema": schema,
            "event": event,
            "idempotency_key": idempotency_key,
            "sent_at": datetime.now(UTC).isoformat(),
            **data,
        }
        self.deliver(payload, idempotency_key)

    def create_ticket(self, request: TicketRequest) -> TicketRef:
        """Deliver the ``remediation.requested`` event; the receiver's reply names the ticket."""
        payload = remediation_payload(request, sent_at=datetime.now(UTC))
        response = self.deliver(payload, request.idempotency_key)
        reply: dict[str, Any] = {}
        if response.content.strip():
            reply = self._http.json(response)
        external_id = str(reply.get("id") or request.idempotency_key)
        activity = payload["activity"]
        return TicketRef(
            system=self.name,
            external_id=external_id,
            key=external_id,
            url=str(reply.get("url") or ""),
            devices_sent=activity["target_device_count"],
            devices_skipped=activity["devices_not_included"],
        )

    def find_ticket(self, idempotency_key: str) -> TicketRef | None:
        """Always ``None``: the receiver dedupes by ``Idempotency-Key`` instead."""
        del idempotency_key
        return None

    def get_state(self, ref: TicketRef) -> TicketState:
        """The receiver's state via ``status_url_template``; without one, ``delivered``."""
        if not self.config.status_url_template:
            return TicketState(system_state="delivered", state=NormalizedState.PENDING)
        url = self.config.status_url_template.replace("{id}", ref.external_id)
        headers = self._headers(b"", ref.external_id)
        del headers["Content-Type"]
        response = self._http.request("GET", url, headers=headers)
        word = str(self._http.json(response).get("state") or "")
        return TicketState(system_state=word, state=state_for(word))

    def test_connection(self) -> ConnectionCheck:
        """Deliver a ``ping`` event, which receivers must accept without making a ticket."""
        key = f"remedium-ping-{uuid.uuid4()}"
        try:
            self.send_event(EVENT_PING, REMEDIATION_SCHEMA, key, {})
        except ConnectorError as exc:
            return ConnectionCheck(ok=False, message=str(exc))
        return ConnectionCheck(ok=True, message="The receiver accepted a signed ping")
