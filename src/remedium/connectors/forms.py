"""Connection settings as form fields, and an edit validated without echoing any secret.

Forms are generated from each connector's pydantic ``config_model``, so a new setting appears on
the page without touching a template. Secrets are write-only: a field shows whether a secret is
set, never its value; leaving it blank keeps the stored one (``connectors.base.merge_config``).
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from remedium.connectors import registry
from remedium.connectors.base import MASK, merge_config
from remedium.connectors.models import ConnectorConfig

LABELS = {
    "intune": "Microsoft Intune",
    "jira": "Jira",
    "servicenow": "ServiceNow",
    "webhook": "Webhook",
}
DESCRIPTIONS = {
    "intune": "Security tasks for Intune-managed and Azure AD-joined devices (Microsoft Graph).",
    "jira": "An issue per activity in a Jira project; its status category is read back.",
    "servicenow": "A record per activity through the Table API; its state is read back.",
    "webhook": "A signed JSON POST (HMAC-SHA256) to any receiver; state can be read back.",
}
FORM_ERROR = "_form"


@dataclass(frozen=True, slots=True)
class FieldView:
    """One setting as the form shows it; ``value`` is never a secret."""

    name: str
    label: str
    widget: Literal["text", "secret", "bool", "choice", "list", "json"]
    value: str
    required: bool
    description: str = ""
    choices: tuple[str, ...] = ()
    secret_set: bool = False
    checked: bool = False


def _widget(annotation: Any) -> tuple[str, tuple[str, ...]]:  # noqa: PLR0911 - one per kind
    if annotation is SecretStr:
        return "secret", ()
    if annotation is bool:
        return "bool", ()
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice", tuple(str(a) for a in get_args(annotation))
    if origin is list:
        return "list", ()
    if origin is dict:
        return "json", ()
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _widget(inner[0]) if len(inner) == 1 else ("text", ())
    return "text", ()


def _label(name: str) -> str:
    text = name.replace("_", " ")
    for word, shown in (("url", "URL"), ("id", "ID"), ("api", "API"), ("aad", "AAD")):
        text = " ".join(shown if part == word else part for part in text.split(" "))
    return text[:1].upper() + text[1:]


def _shown(value: Any, widget: str) -> str:
    if value is None:
        return ""
    if widget == "list":
        return ", ".join(str(v) for v in value)
    if widget == "json":
        return json.dumps(value, sort_keys=True)
    return str(value)


def field_views(kind: str, masked: Mapping[str, Any] | None) -> list[FieldView]:
    """The form fields of a ``kind`` connection, filled from its *masked* configuration."""
    model = registry.config_model(kind)
    views = []
    for name, info in model.model_fields.items():
        widget, choices = _widget(info.annotation)
        if masked is not None and name in masked:
            value = masked[name]
        elif info.is_required():
            value = None
        else:
            value = info.get_default(call_default_factory=True)
            if isinstance(value, SecretStr):
                value = MASK if value.get_secret_value() else ""
        views.append(
            FieldView(
                name=name,
                label=_label(name),
                widget=widget,  # type: ignore[arg-type]
                value="" if widget == "secret" else _shown(value, widget),
                required=info.is_required(),
                description=info.description or "",
                choices=choices,
                secret_set=widget == "secret" and value == MASK,
                checked=widget == "bool" and bool(value),
            )
        )
    return views


@dataclass
class ParsedEdit:
    """An edit read from a form: the values to validate, and what could not even be read."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def parse_form(kind: str, form: Mapping[str, str]) -> ParsedEdit:
    """Turn submitted strings into settings; blank optional fields fall back to their defaults."""
    model = registry.config_model(kind)
    parsed = ParsedEdit()
    for name, info in model.model_fields.items():
        widget, _choices = _widget(info.annotation)
        raw = form.get(name)
        if widget == "bool":
            parsed.values[name] = raw is not None and raw not in ("", "0", "off", "false")
            continue
        text = (raw or "").strip()
        if widget == "secret":
            parsed.values[name] = text  # blank or the mask keeps the stored secret
        elif not text:
            if info.is_required():
                parsed.values[name] = ""
        elif widget == "list":
            parsed.values[name] = [
                p.strip() for p in text.replace("\n", ",").split(",") if p.strip()
            ]
        elif widget == "json":
            try:
                parsed.values[name] = json.loads(text)
            except ValueError:
                parsed.errors[name] = 'Enter a JSON object, e.g. {"High": "High"}.'
        else:
            parsed.values[name] = text
    return parsed


def stored_model(row: ConnectorConfig | None, kind: str) -> BaseModel | None:
    """The stored settings of ``row`` as its model, if they are of ``kind`` and still valid."""
    if row is None or row.kind != kind:
        return None
    try:
        return registry.config_model(kind).model_validate(row.config)
    except ValidationError:
        return None


def validation_errors(
    kind: str, current: BaseModel | None, values: Mapping[str, Any]
) -> dict[str, str]:
    """Per-field messages for an edit, or ``{}`` when it validates.

    Messages are built from pydantic's error list *without* the input, so a refused edit never
    shows a secret back (pydantic's own text would quote the submitted values).
    """
    try:
        merge_config(registry.config_model(kind), current, values)
    except ValidationError as error:
        found: dict[str, str] = {}
        for item in error.errors(include_input=False, include_url=False):
            where = str(item["loc"][0]) if item["loc"] else FORM_ERROR
            found.setdefault(where, str(item["msg"]))
        return found
    return {}
