"""VEX export of exceptions: OpenVEX 0.2.0 and CycloneDX 1.5/1.6 VEX, as plain JSON dicts.

Pure: the service turns exceptions into :class:`VexEntry` values; these functions only shape
them. The mapping (docs/exceptions.md) never claims "not affected" for a risk that was merely
accepted:

====================  =========================================  ==================================
justification         OpenVEX                                    CycloneDX ``analysis``
====================  =========================================  ==================================
FalsePositive         not_affected + ``vulnerable_code_not_      ``false_positive``
                      present`` (``component_not_present`` when
                      the software is not installed at all)
CompensatingControl   not_affected + ``inline_mitigations_       ``not_affected`` + ``protected_by_
                      already_exist``                            mitigating_control``
AcceptRisk            affected + action_statement                ``exploitable`` + ``will_not_fix``
BusinessNeed          affected + action_statement                ``exploitable`` + ``will_not_fix``
PlannedRemediation    affected + action_statement (due date)     ``exploitable`` + ``update``
====================  =========================================  ==================================
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
CYCLONEDX_VERSIONS = ("1.5", "1.6")
FalsePositiveKind = Literal["vulnerable_code_not_present", "component_not_present"]


@dataclass(frozen=True, slots=True)
class VexProduct:
    """A product a statement is about: a software product of the inventory."""

    ref: str  # a purl when known, else a stable URN
    name: str
    vendor: str = ""
    purl: str | None = None


@dataclass(frozen=True, slots=True)
class VexEntry:
    """One exception, ready to be written as VEX statements (one per vulnerability)."""

    exception_id: int
    justification: str
    vulnerability_ids: tuple[str, ...]
    products: tuple[VexProduct, ...]
    context: str
    created_at: datetime
    expires_on: datetime
    updated_at: datetime
    scope_note: str = ""
    false_positive_kind: FalsePositiveKind = "vulnerable_code_not_present"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _notes(entry: VexEntry) -> str:
    parts = [f"remedium exception {entry.exception_id}"]
    if entry.scope_note:
        parts.append(entry.scope_note)
    parts.append(f"valid until {_iso(entry.expires_on)}")
    if entry.context:
        parts.append(entry.context)
    return "; ".join(parts)


def _action_statement(entry: VexEntry) -> str:
    until = entry.expires_on.date().isoformat()
    if entry.justification == "PlannedRemediation":
        return f"Remediation is planned; update by {until}."
    if entry.justification == "BusinessNeed":
        return f"Not remediated for a business need; the risk is accepted until {until}."
    return f"Risk accepted until {until}; no remediation is planned before then."


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def openvex_document(
    entries: Sequence[VexEntry], *, author: str, issued_at: datetime, version: int = 1
) -> dict[str, Any]:
    """An OpenVEX 0.2.0 document with one statement per (exception, vulnerability)."""
    statements: list[dict[str, Any]] = []
    for entry in entries:
        for vulnerability_id in entry.vulnerability_ids:
            statement: dict[str, Any] = {
                "@id": f"urn:remedium:exception:{entry.exception_id}:{vulnerability_id}",
                "vulnerability": {"name": vulnerability_id},
                "timestamp": _iso(entry.created_at),
                "last_updated": _iso(entry.updated_at),
                "status_notes": _notes(entry),
            }
            if entry.products:
                statement["products"] = [_openvex_product(p) for p in entry.products]
            if entry.justification == "FalsePositive":
                statement["status"] = "not_affected"
                statement["justification"] = entry.false_positive_kind
            elif entry.justification == "CompensatingControl":
                statement["status"] = "not_affected"
                statement["justification"] = "inline_mitigations_already_exist"
            else:
                # Accepted or planned risk: the product IS affected; say what happens about it.
                statement["status"] = "affected"
                statement["action_statement"] = _action_statement(entry)
                statement["action_statement_timestamp"] = _iso(entry.created_at)
            statements.append(statement)
    document_id = uuid.UUID(_digest([statements, _iso(issued_at)])[:32])
    return {
        "@context": OPENVEX_CONTEXT,
        "@id": f"urn:uuid:{document_id}",
        "author": author,
        "role": "Vulnerability management",
        "timestamp": _iso(issued_at),
        "version": version,
        "tooling": "remedium",
        "statements": statements,
    }


def _openvex_product(product: VexProduct) -> dict[str, Any]:
    shaped: dict[str, Any] = {"@id": product.ref}
    if product.purl:
        shaped["identifiers"] = {"purl": product.purl}
    return shaped


_CDX_ANALYSIS: dict[str, dict[str, Any]] = {
    "FalsePositive": {"state": "false_positive"},
    "CompensatingControl": {
        "state": "not_affected",
        "justification": "protected_by_mitigating_control",
    },
    "AcceptRisk": {"state": "exploitable", "response": ["will_not_fix"]},
    "BusinessNeed": {"state": "exploitable", "response": ["will_not_fix"]},
    "PlannedRemediation": {"state": "exploitable", "response": ["update"]},
}


def cyclonedx_vex(
    entries: Sequence[VexEntry],
    *,
    issued_at: datetime,
    spec_version: str = "1.6",
    tool_version: str = "",
) -> dict[str, Any]:
    """A CycloneDX VEX BOM: the products as components, one vulnerability per statement."""
    if spec_version not in CYCLONEDX_VERSIONS:
        raise ValueError(f"CycloneDX {spec_version} is not supported")
    components: dict[str, dict[str, Any]] = {}
    vulnerabilities: list[dict[str, Any]] = []
    for entry in entries:
        for product in entry.products:
            component: dict[str, Any] = {
                "type": "application",
                "bom-ref": product.ref,
                "name": product.name,
            }
            if product.vendor:
                component["publisher"] = product.vendor
            if product.purl:
                component["purl"] = product.purl
            components.setdefault(product.ref, component)
        for vulnerability_id in entry.vulnerability_ids:
            analysis = dict(_CDX_ANALYSIS[entry.justification])
            analysis["detail"] = _notes(entry) + (
                f". {_action_statement(entry)}" if analysis["state"] == "exploitable" else ""
            )
            analysis["firstIssued"] = _iso(entry.created_at)
            analysis["lastUpdated"] = _iso(entry.updated_at)
            vulnerability: dict[str, Any] = {
                "bom-ref": f"exception-{entry.exception_id}-{vulnerability_id}",
                "id": vulnerability_id,
                "analysis": analysis,
            }
            if vulnerability_id.startswith("CVE-"):
                vulnerability["source"] = {
                    "name": "NVD",
                    "url": f"https://nvd.nist.gov/vuln/detail/{vulnerability_id}",
                }
            if entry.products:
                vulnerability["affects"] = [{"ref": p.ref} for p in entry.products]
            vulnerabilities.append(vulnerability)
    tool: dict[str, Any] = {"type": "application", "name": "remedium"}
    if tool_version:
        tool["version"] = tool_version
    serial = uuid.UUID(_digest([vulnerabilities, _iso(issued_at)])[:32])
    return {
        "bomFormat": "CycloneDX",
        "specVersion": spec_version,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {"timestamp": _iso(issued_at), "tools": {"components": [tool]}},
        "components": list(components.values()),
        "vulnerabilities": vulnerabilities,
    }
