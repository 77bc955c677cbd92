"""VEX export of exceptions, validated against the official schemas.

CycloneDX: validated with the official JSON schemas shipped in ``cyclonedx-python-lib``.
OpenVEX: no Python package ships the OpenVEX JSON schema, so :func:`check_openvex` checks the
document against the requirements of the OpenVEX 0.2.0 specification and its published schema
(required fields, enumerations, the not_affected/affected conditions, no unknown fields).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from sqlalchemy import select
from sqlalchemy.orm import Session

from remedium.auth.principal import Scope
from remedium.exceptions import export, filing, lifecycle, vex
from remedium.inventory.models import DeviceGroup
from remedium.settings import get_settings
from tests.support.orgs.builder import NOW
from tests.support.orgs.exceptions import ADMIN, ANALYST, CHROME, CVE, Org, build

OPENVEX_DOCUMENT_FIELDS = {
    "@context", "@id", "author", "role", "timestamp", "last_updated", "version", "tooling",
    "statements",
}  # fmt: skip
OPENVEX_STATEMENT_FIELDS = {
    "@id", "version", "vulnerability", "timestamp", "last_updated", "products", "status",
    "supplier", "status_notes", "justification", "impact_statement", "action_statement",
    "action_statement_timestamp",
}  # fmt: skip
OPENVEX_STATUSES = {"not_affected", "affected", "fixed", "under_investigation"}
OPENVEX_JUSTIFICATIONS = {
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
}


def _is_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_openvex(document: dict[str, Any]) -> None:
    """Fail unless ``document`` meets the OpenVEX 0.2.0 specification's schema rules."""
    assert set(document) <= OPENVEX_DOCUMENT_FIELDS, set(document) - OPENVEX_DOCUMENT_FIELDS
    for name in ("@context", "@id", "author", "timestamp", "version", "statements"):
        assert name in document, name
    assert document["@context"] == "https://openvex.dev/ns/v0.2.0"
    assert isinstance(document["version"], int)
    assert document["version"] >= 1
    assert _is_datetime(document["timestamp"])
    statements = document["statements"]
    assert isinstance(statements, list)
    assert statements, "statements: minItems 1"
    assert len({json.dumps(s, sort_keys=True) for s in statements}) == len(statements)
    for statement in statements:
        assert set(statement) <= OPENVEX_STATEMENT_FIELDS, set(statement) - OPENVEX_STATEMENT_FIELDS
        assert set(statement["vulnerability"]) <= {"@id", "name", "description", "aliases"}
        assert isinstance(statement["vulnerability"]["name"], str)
        assert statement["status"] in OPENVEX_STATUSES
        for product in statement.get("products", []):
            assert set(product) <= {"@id", "identifiers", "hashes", "subcomponents"}
            assert set(product.get("identifiers", {})) <= {"purl", "cpe22", "cpe23"}
        for name in ("timestamp", "last_updated", "action_statement_timestamp"):
            if name in statement:
                assert _is_datetime(statement[name]), name
        if statement["status"] == "not_affected":
            # Exactly one of a justification and an impact statement.
            assert ("justification" in statement) != ("impact_statement" in statement)
            if "justification" in statement:
                assert statement["justification"] in OPENVEX_JUSTIFICATIONS
        if statement["status"] == "affected":
            assert statement.get("action_statement")


def test_check_openvex_catches_broken_documents() -> None:
    good = vex.openvex_document(
        [_entry("AcceptRisk")], author="t", issued_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    check_openvex(good)
    broken = json.loads(json.dumps(good))
    del broken["statements"][0]["action_statement"]
    with pytest.raises(AssertionError):
        check_openvex(broken)


def _entry(justification: str) -> vex.VexEntry:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return vex.VexEntry(
        exception_id=1,
        justification=justification,
        vulnerability_ids=("CVE-2026-1",),
        products=(vex.VexProduct("pkg:npm/left-pad", "left-pad", purl="pkg:npm/left-pad"),),
        context="",
        created_at=moment,
        expires_on=moment.replace(month=3),
        updated_at=moment,
    )


@pytest.fixture(autouse=True)
def _no_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REMEDIUM_EXCEPTIONS_REQUIRE_APPROVAL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def entries(session: Session) -> list[vex.VexEntry]:
    """One exception in effect for each justification (plus an ended one, left out)."""
    org: Org = build(session)
    org.chrome.purl_type, org.chrome.purl_name = "generic", "google/chrome"

    def file(justification: str, group: int, **target: str) -> int:
        return filing.file_exception(
            session,
            ANALYST,
            justification=justification,
            device_group_ids=[group],
            duration_days=90,
            context=f"because {justification}",
            as_of=NOW,
            **(target or {"recommendation_id": CHROME}),
        ).id

    file("FalsePositive", org.alpha.id)
    file("CompensatingControl", org.beta.id)
    file("AcceptRisk", org.alpha.id, vulnerability_id=CVE)
    file("PlannedRemediation", org.beta.id, vulnerability_id=CVE)
    business = file("BusinessNeed", org.gamma.id, vulnerability_id=CVE)
    ended = file("AcceptRisk", org.gamma.id)
    lifecycle.cancel_exception(session, ADMIN, ended, as_of=NOW)
    result = export.vex_entries(session, ADMIN.scope, as_of=NOW)
    assert business in {e.exception_id for e in result}
    assert ended not in {e.exception_id for e in result}
    return result


def test_openvex_export_maps_each_justification(entries: list[vex.VexEntry]) -> None:
    document = vex.openvex_document(entries, author="remedium", issued_at=NOW)
    check_openvex(document)
    by_reason = {
        e.justification: s
        for e in entries
        for s in document["statements"]
        if s["@id"].startswith(f"urn:remedium:exception:{e.exception_id}:")
    }
    assert by_reason["FalsePositive"]["status"] == "not_affected"
    assert by_reason["FalsePositive"]["justification"] == "vulnerable_code_not_present"
    assert by_reason["CompensatingControl"]["status"] == "not_affected"
    assert by_reason["CompensatingControl"]["justification"] == "inline_mitigations_already_exist"
    for reason in ("AcceptRisk", "BusinessNeed", "PlannedRemediation"):
        # Never "not affected" for a risk that is accepted or merely planned away.
        assert by_reason[reason]["status"] == "affected", reason
        assert "justification" not in by_reason[reason]
    assert "update by" in by_reason["PlannedRemediation"]["action_statement"]
    assert by_reason["FalsePositive"]["vulnerability"] == {"name": CVE}
    assert by_reason["FalsePositive"]["products"] == [
        {"@id": "pkg:generic/google/chrome", "identifiers": {"purl": "pkg:generic/google/chrome"}}
    ]
    assert "because FalsePositive" in by_reason["FalsePositive"]["status_notes"]


@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_cyclonedx_export_is_valid_against_the_official_schema(
    entries: list[vex.VexEntry], version: str
) -> None:
    document = vex.cyclonedx_vex(entries, issued_at=NOW, spec_version=version, tool_version="0.1")
    schema = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}[version]
    error = JsonStrictValidator(schema).validate_str(json.dumps(document))
    assert error is None, str(error)[:800]
    analyses = {
        e.justification: v["analysis"]
        for e in entries
        for v in document["vulnerabilities"]
        if v["bom-ref"].startswith(f"exception-{e.exception_id}-")
    }
    assert analyses["FalsePositive"]["state"] == "false_positive"
    assert analyses["CompensatingControl"] | {"detail": ""} == {
        "state": "not_affected",
        "justification": "protected_by_mitigating_control",
        "detail": "",
        "firstIssued": "2026-11-20T12:00:00Z",
        "lastUpdated": "2026-11-20T12:00:00Z",
    }
    assert analyses["AcceptRisk"]["state"] == "exploitable"
    assert analyses["AcceptRisk"]["response"] == ["will_not_fix"]
    assert analyses["BusinessNeed"]["response"] == ["will_not_fix"]
    assert analyses["PlannedRemediation"]["response"] == ["update"]
    assert all(
        a["state"] != "not_affected" for r, a in analyses.items() if r != "CompensatingControl"
    )
    refs = {c["bom-ref"] for c in document["components"]}
    assert all(a["ref"] in refs for v in document["vulnerabilities"] for a in v["affects"])


def test_a_broken_bom_fails_the_official_schema(entries: list[vex.VexEntry]) -> None:
    document = vex.cyclonedx_vex(entries, issued_at=NOW)
    document["vulnerabilities"][0]["analysis"]["state"] = "accepted"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is not None


def test_a_scoped_export_shows_only_visible_exceptions(
    session: Session, entries: list[vex.VexEntry]
) -> None:
    alpha = session.scalars(select(DeviceGroup).where(DeviceGroup.name == "Alpha")).one()
    scoped = export.vex_entries(session, Scope(frozenset({alpha.id})), as_of=NOW)
    assert {e.justification for e in scoped} == {"FalsePositive", "AcceptRisk"}
    assert all("Beta" not in e.scope_note for e in scoped)
