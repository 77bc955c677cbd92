"""The audit history's tamper evidence: a hash chain, the triggers that refuse rewrites, and
``verify`` (``remedium audit verify``).

Each event stores ``prev_hash`` (the ``event_hash`` of the event before it, by id; ``""`` for the
first) and ``event_hash`` = SHA-256 of ``prev_hash`` and the event's content in canonical JSON
(every column but ``id`` and ``device_group_id``, which the foreign key may set to NULL when a
group is deleted; the group stays in ``device_group_ids``). Appending is serialised so that
concurrent writers still form one chain: a transaction-scoped advisory lock on PostgreSQL, the
database's write lock on SQLite; both are held until the transaction ends.

The triggers refuse UPDATE of any column (except the foreign key's SET NULL), DELETE, TRUNCATE
(PostgreSQL), ``INSERT OR REPLACE`` (SQLite: the replaced row's DELETE fires no trigger, so an
INSERT trigger refuses an existing id) and ``INSERT ... ON CONFLICT DO UPDATE`` (an UPDATE). A
database owner can still drop a trigger or write rows directly; ``verify`` then names the missing
trigger or the first broken link.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from remedium.audit.models import AuditEvent

# pg_advisory_xact_lock key of the audit chain ("audit" in ASCII).
CHAIN_LOCK_KEY = 0x6175646974
APPEND_ONLY_MESSAGE = "audit_event is append-only"

# Every column the UPDATE trigger compares: all but device_group_id (the foreign key's SET NULL).
_UNCHANGEABLE = (
    "id",
    "occurred_at",
    "actor_user_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "client_address",
    "device_group_ids",
    "prev_hash",
    "event_hash",
)

SQLITE_TRIGGERS: dict[str, str] = {
    "audit_event_no_update": (
        "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
        "WHEN NOT (NEW.device_group_id IS NULL AND OLD.device_group_id IS NOT NULL AND "
        + " AND ".join(f'NEW."{name}" IS OLD."{name}"' for name in _UNCHANGEABLE)
        + f") BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    ),
    "audit_event_no_delete": (
        "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    ),
    # INSERT OR REPLACE deletes the old row without firing the DELETE trigger.
    "audit_event_no_replace": (
        "CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event "
        "WHEN EXISTS (SELECT 1 FROM audit_event WHERE id = NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    ),
}

# Migration 0002's function and triggers already compare the whole row (to_jsonb); 0003 makes
# the triggers fire also under session_replication_role = replica (ENABLE ALWAYS).
POSTGRESQL_TRIGGERS = ("audit_event_no_update_delete", "audit_event_no_truncate")
POSTGRESQL_DDL: tuple[str, ...] = tuple(
    f"ALTER TABLE audit_event ENABLE ALWAYS TRIGGER {name}" for name in POSTGRESQL_TRIGGERS
)


def sqlite_ddl() -> tuple[str, ...]:
    """Drop the 0002 triggers and create the strict ones (SQLite)."""
    return (
        "DROP TRIGGER IF EXISTS audit_event_no_update",
        "DROP TRIGGER IF EXISTS audit_event_no_delete",
        "DROP TRIGGER IF EXISTS audit_event_no_replace",
        *SQLITE_TRIGGERS.values(),
    )


# --- scope ---------------------------------------------------------------------------------------


def encode_groups(group_ids: Iterable[int]) -> str:
    """``{7, 3}`` -> ``",3,7,"``; no group -> ``""``."""
    ids = sorted(set(group_ids))
    return "," + ",".join(str(i) for i in ids) + "," if ids else ""


def decode_groups(value: str) -> list[int]:
    """The inverse of :func:`encode_groups`."""
    return [int(part) for part in value.split(",") if part]


# --- the chain ---------------------------------------------------------------------------------


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


HASHED_COLUMNS = (
    "occurred_at",
    "actor_user_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "device_group_ids",
    "before",
    "after",
    "reason",
    "client_address",
)


def content_hash(prev_hash: str, event: AuditEvent) -> str:
    """SHA-256 of ``prev_hash`` and ``event``'s content (canonical JSON)."""
    return hash_of(prev_hash, {name: getattr(event, name) for name in HASHED_COLUMNS})


def hash_of(prev_hash: str, values: Mapping[str, Any]) -> str:
    """SHA-256 of ``prev_hash`` and the :data:`HASHED_COLUMNS` of ``values``."""
    content = {name: values[name] for name in HASHED_COLUMNS}
    content["occurred_at"] = _timestamp(values["occurred_at"])
    content["prev"] = prev_hash
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_chain(session: Session) -> None:
    """Serialise appends until the transaction ends (advisory lock / SQLite's write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(text(f"pg_advisory_xact_lock({CHAIN_LOCK_KEY})")))
    else:
        # A write that changes nothing: the driver opens the transaction and SQLite takes its
        # write lock, so no other connection can append before this one commits.
        session.execute(text("UPDATE audit_event SET id = id WHERE 0"))


def chain_head(session: Session) -> str:
    """The ``event_hash`` of the last event (``""`` when the history is empty)."""
    head = session.scalar(select(AuditEvent.event_hash).order_by(AuditEvent.id.desc()).limit(1))
    return head or ""


# --- verify ------------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``remedium audit verify`` found."""

    events: int = 0
    first_broken: int | None = None
    problem: str = ""
    missing_protection: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every link holds and every trigger is in place."""
        return self.first_broken is None and not self.missing_protection


def _normalised(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().lower()


def check_protection(session: Session) -> list[str]:
    """The triggers (or their states) that are missing or altered."""
    missing: list[str] = []
    if session.get_bind().dialect.name == "postgresql":
        rows = {
            str(name): str(state)
            for name, state in session.execute(
                text(
                    "SELECT tgname, tgenabled FROM pg_trigger "
                    "WHERE tgrelid = 'audit_event'::regclass AND NOT tgisinternal"
                )
            )
        }
        for name in POSTGRESQL_TRIGGERS:
            state = rows.get(name)
            if state is None:
                missing.append(f"trigger {name} is missing")
            elif state != "A":
                missing.append(f"trigger {name} is not enabled ALWAYS (state {state!r})")
        body = session.scalar(
            text(
                "SELECT prosrc FROM pg_proc WHERE proname = 'audit_event_append_only' "
                "AND pronamespace = 'public'::regnamespace"
            )
        )
        if body is None or APPEND_ONLY_MESSAGE not in body:
            missing.append("function audit_event_append_only is missing or altered")
        rules = session.scalars(
            text("SELECT rulename FROM pg_rules WHERE tablename = 'audit_event'")
        ).all()
        missing.extend(f"rule {name} rewrites statements on audit_event" for name in rules)
        return missing
    rows = {
        str(name): str(sql)
        for name, sql in session.execute(
            text(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = 'audit_event'"
            )
        )
    }
    for name, sql in SQLITE_TRIGGERS.items():
        found = rows.get(name)
        if found is None:
            missing.append(f"trigger {name} is missing")
        elif _normalised(found) != _normalised(sql):
            missing.append(f"trigger {name} was altered")
    missing.extend(
        f"unexpected trigger {name} on audit_event" for name in rows if name not in SQLITE_TRIGGERS
    )
    return missing


def verify(session: Session, *, batch: int = 5_000) -> Verification:
    """Walk the chain in id order; stop at the first broken link. Checks the triggers too."""
    result = Verification(missing_protection=check_protection(session))
    expected_prev = ""
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            break
        for event in rows:
            result.events += 1
            if event.prev_hash != expected_prev:
                result.first_broken = event.id
                result.problem = (
                    f"event {event.id} does not follow the event before it "
                    "(an event was removed, inserted or rewritten)"
                )
                return result
            if content_hash(event.prev_hash, event) != event.event_hash:
                result.first_broken = event.id
                result.problem = f"event {event.id} was changed after it was written"
                return result
            expected_prev = event.event_hash
            last_id = event.id
        session.expunge_all()
    return result
