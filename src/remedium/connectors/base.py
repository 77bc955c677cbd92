"""The one small interface every ticketing connector implements, and the plain data it speaks.

A connector is pure client code: it is built from its validated configuration and an
``httpx.Client`` that the caller made (timeouts, proxies and TLS are the caller's), it keeps no
global state, and it never touches the database. The outbox that drives it follows one rule that
makes a crash after the remote call harmless: **look up before you create** —
``find_ticket(request.idempotency_key)`` first, ``create_ticket(request)`` only when it answers
``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, SecretStr

# Microsoft sends at most this many devices with one Intune task; remedium keeps the same cap for
# every system so one activity means one ticket of a size any of them accepts.
MAX_DEVICES_PER_TICKET = 10_000

# How many device names a ticket's text lists before it says "and N more": a ticket that lists
# 10,000 names is unreadable, and some systems cap the description's length.
DEVICES_LISTED_IN_TEXT = 50

MASK = "********"


class RemediationType(StrEnum):
    """What IT is asked to do, with Microsoft's spellings."""

    UPDATE = "update"
    UNINSTALL = "uninstall"
    CONFIGURATION_CHANGE = "configurationChange"
    ATTENTION_REQUIRED = "attentionRequired"


class Priority(StrEnum):
    """The requester's priority, as remedium (and Defender) spell it."""

    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"


class NormalizedState(StrEnum):
    """A ticket's state in remedium's words, whatever the system calls it."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ProductRef:
    """The software a software remediation is about."""

    vendor: str
    name: str
    version: str = ""
    recommended_version: str = ""


@dataclass(frozen=True, slots=True)
class TargetDevice:
    """One device the ticket asks IT to fix."""

    name: str
    machine_id: str
    aad_device_id: str = ""
    intune_managed: bool = False
    aad_joined: bool = False


def idempotency_key_for(activity_id: str | int) -> str:
    """The stable key of the one ticket an activity may have, e.g. ``remedium-activity-42``."""
    return f"remedium-activity-{activity_id}"


@dataclass(frozen=True, slots=True)
class TicketRequest:
    """Everything a connector needs to open the ticket for one remediation activity.

    The caller caps ``target_devices`` at :data:`MAX_DEVICES_PER_TICKET`; connectors enforce the
    cap again and report what they left out on the returned :class:`TicketRef`.
    """

    activity_id: str
    idempotency_key: str
    title: str
    description: str
    remediation_type: RemediationType
    priority: Priority
    due_on: date | None
    requester_email: str
    notes: str = ""
    product: ProductRef | None = None
    configuration_id: str = ""
    target_devices: tuple[TargetDevice, ...] = ()
    link: str = ""

    def __post_init__(self) -> None:
        if not self.idempotency_key.strip():
            raise ValueError("a ticket request needs an idempotency key")
        # "Attention required" has no specific action, so Defender disables its due date.
        if self.remediation_type is RemediationType.ATTENTION_REQUIRED and self.due_on is not None:
            raise ValueError("an 'attention required' request has no due date")


@dataclass(frozen=True, slots=True)
class TicketRef:
    """Where a ticket lives: the system, its id, the key people use, and a link to it.

    ``devices_sent``/``devices_skipped`` are filled by ``create_ticket`` (``None`` after a
    look-up, which cannot know them): how many target devices went with the ticket and how many
    were left out (not managed by the system, or over the cap).
    """

    system: str
    external_id: str
    key: str
    url: str
    devices_sent: int | None = None
    devices_skipped: int = 0


@dataclass(frozen=True, slots=True)
class TicketState:
    """A ticket's state: the system's own word(s) and remedium's normalised state.

    ``system_state`` is what a person sees in the system (Intune ``pending``, Jira ``In
    Progress``, ServiceNow ``Closed Complete``); ``system_detail`` what sits under it (Jira's status
    category key, ServiceNow's state number).
    """

    system_state: str
    state: NormalizedState
    system_detail: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """The outcome of "Test connection", with a message for the administrator."""

    ok: bool
    message: str


@runtime_checkable
class TicketConnector(Protocol):
    """A ticketing system remedium can open tickets in and read their state back from."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def public_config(self) -> dict[str, Any]:
        """The configuration as it may be shown back: every secret masked."""
        ...

    def create_ticket(self, request: TicketRequest) -> TicketRef:
        """Open the ticket. Call :meth:`find_ticket` first: this always creates a new one."""
        ...

    def find_ticket(self, idempotency_key: str) -> TicketRef | None:
        """The ticket already made for this key, if any: what makes a retry after a crash safe."""
        ...

    def get_state(self, ref: TicketRef) -> TicketState:
        """The ticket's current state, read from the system."""
        ...

    def test_connection(self) -> ConnectionCheck:
        """Check the configuration and credentials without creating anything."""
        ...


def mask_config(config: BaseModel) -> dict[str, Any]:
    """``config`` as a dict fit to show back: a set secret reads ``********``, unset ``""``."""
    shown: dict[str, Any] = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            shown[name] = MASK if value.get_secret_value() else ""
        elif isinstance(value, BaseModel):
            shown[name] = mask_config(value)
        elif isinstance(value, StrEnum):
            shown[name] = value.value
        else:
            shown[name] = value
    return shown


def merge_config(
    model: type[BaseModel], current: BaseModel | None, submitted: Mapping[str, Any]
) -> BaseModel:
    """Validate an administrator's edit, keeping a stored secret that was left blank or masked.

    The form shows secrets as ``********``; sending that (or nothing) back must not overwrite the
    real value with the mask.
    """
    values = dict(submitted)
    for name in model.model_fields:
        kept = getattr(current, name, None) if current is not None else None
        if isinstance(kept, SecretStr) and values.get(name) in (None, "", MASK):
            values[name] = kept.get_secret_value()
    return model.model_validate(values)


def secret_values(config: BaseModel) -> list[str]:
    """Every non-empty secret in ``config``: the strings no message or log line may hold."""
    found: list[str] = []
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.append(value.get_secret_value())
    return found


def device_split(
    devices: tuple[TargetDevice, ...], *, managed_only: bool = False
) -> tuple[list[TargetDevice], int]:
    """The devices that go with a ticket, capped at :data:`MAX_DEVICES_PER_TICKET`, and the rest.

    ``managed_only`` keeps only Intune-managed or Azure AD-joined devices: the only ones an
    Intune security task can act on.
    """
    if managed_only:
        chosen = [d for d in devices if d.intune_managed or d.aad_joined]
    else:
        chosen = list(devices)
    sent = chosen[:MAX_DEVICES_PER_TICKET]
    return sent, len(devices) - len(sent)


@dataclass(slots=True)
class _Lines:
    lines: list[str] = field(default_factory=list)

    def add(self, label: str, value: object) -> None:
        if value not in (None, ""):
            self.lines.append(f"{label}: {value}")


def render_ticket_text(request: TicketRequest, devices: list[TargetDevice], skipped: int) -> str:
    """The plain-text body every system gets: what to do, on what, for whom, and the way back.

    The idempotency key is written on its own line so a person (and the Intune look-up) can find
    the activity a ticket belongs to.
    """
    out = _Lines()
    if request.description:
        out.lines.extend([request.description, ""])
    out.add("Remediation", request.remediation_type.value)
    out.add("Priority in remedium", request.priority.value)
    out.add("Due", request.due_on.isoformat() if request.due_on else "")
    out.add("Requested by", request.requester_email)
    if request.product is not None:
        product = request.product
        named = (product.vendor, product.name, product.version)
        out.add("Product", " ".join(p for p in named if p))
        out.add("Recommended version", product.recommended_version)
    out.add("Configuration", request.configuration_id)
    out.add("Notes", request.notes)
    if devices:
        names = ", ".join(d.name or d.machine_id for d in devices[:DEVICES_LISTED_IN_TEXT])
        more = len(devices) - DEVICES_LISTED_IN_TEXT
        out.add(f"Devices ({len(devices)})", names + (f" and {more} more" if more > 0 else ""))
    if skipped:
        out.add("Devices not included", skipped)
    out.add("Activity in remedium", request.link)
    out.add("remedium key", request.idempotency_key)
    return "\n".join(out.lines)
