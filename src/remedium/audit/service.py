"""Writing and reading the audit history.

:func:`record` is the one way in: it adds an :class:`AuditEvent` to the caller's session, so the
event commits (or rolls back) together with the change it describes. Nothing here updates or
deletes an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from remedium.audit.chain import chain_head, content_hash, encode_groups, lock_chain
from remedium.audit.models import AuditEvent
from remedium.auth.principal import Principal, Right, Scope
from remedium.db.base import utcnow

SYSTEM_ACTOR = "system"

# Events about accounts and credentials: only administrators read other people's.
PRIVATE_ACTION_PREFIXES = ("auth.", "user.", "token.")

# object_type -> the device groups an object of that type belongs to (its scope). Feature packages
# register theirs (e.g. remediation activities), so every event carries its object's scope even
# when the caller names no group.
ScopeResolver = Callable[[Session, str], Iterable[int]]
_SCOPE_RESOLVERS: dict[str, ScopeResolver] = {}


def register_scope(object_type: str, resolver: ScopeResolver) -> None:
    """Say how to find the device groups of objects of ``object_type``."""
    _SCOPE_RESOLVERS[object_type] = resolver


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    object_type: str = "",
    object_id: str | int | None = None,
    device_group_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    client_address: str = "",
    actor_name: str | None = None,
    device_group_ids: Iterable[int] | None = None,
) -> AuditEvent:
    """Append one event to the history in the caller's transaction (flushes, never commits).

    ``actor`` is the principal that made the change, or ``None`` for the system (jobs, the
    demo). ``actor_name`` overrides the name, e.g. for a failed sign-in by an unknown name.
    ``before``/``after`` must be JSON-serialisable and must never hold secrets.

    ``device_group_ids`` is the object's scope (who may read the event); by default the
    registered resolver of ``object_type`` (:func:`register_scope`), else ``device_group_id``.
    The event joins the hash chain (audit/chain.py): appends are serialised until the caller's
    transaction ends.
    """
    if device_group_ids is None:
        resolver = _SCOPE_RESOLVERS.get(object_type)
        if resolver is not None and object_id is not None:
            session.flush()  # the object's group rows may still be pending
            device_group_ids = resolver(session, str(object_id))
        else:
            device_group_ids = () if device_group_id is None else (device_group_id,)
    groups = set(device_group_ids)
    if device_group_id is not None:
        groups.add(device_group_id)
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_user_id=actor.user_id if actor is not None else None,
        actor_name=actor_name or (actor.name if actor is not None else SYSTEM_ACTOR),
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        device_group_id=device_group_id,
        before=before,
        after=after,
        reason=reason,
        client_address=client_address[:64],
        device_group_ids=encode_groups(groups),
    )
    lock_chain(session)
    event.prev_hash = chain_head(session)
    event.event_hash = content_hash(event.prev_hash, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the audit page and ``GET /api/v1/audit-events`` filter on (all optional)."""

    action: str | None = None
    actor: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    device_group_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def _visible(query: Select[Any], principal: Principal, scope: Scope) -> Select[Any]:
    """Limit ``query`` to the events ``principal`` may read (see docs/security.md)."""
    if scope.device_group_ids is not None:
        # An event of no group is everyone's; else one of its object's groups must be in scope.
        query = query.where(
            or_(
                and_(AuditEvent.device_group_ids == "", AuditEvent.device_group_id.is_(None)),
                *(
                    AuditEvent.device_group_ids.contains(f",{group_id},")
                    for group_id in sorted(scope.device_group_ids)
                ),
            )
        )
    if not principal.has(Right.ADMIN):
        private = or_(*(AuditEvent.action.startswith(p) for p in PRIVATE_ACTION_PREFIXES))
        mine = (
            AuditEvent.actor_user_id == principal.user_id
            if principal.user_id is not None
            else false()
        )
        query = query.where(or_(~private, mine))
    return query


def _filtered(query: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.action:
        # "exception" matches every exception.* action; "exception.cancel" only that one.
        query = query.where(
            or_(
                AuditEvent.action == filters.action,
                AuditEvent.action.startswith(filters.action + "."),
            )
        )
    if filters.actor:
        query = query.where(AuditEvent.actor_name == filters.actor)
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.device_group_id is not None:
        query = query.where(AuditEvent.device_group_ids.contains(f",{filters.device_group_id},"))
    if filters.since is not None:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.occurred_at < filters.until)
    return query


def list_events(
    session: Session,
    *,
    principal: Principal,
    scope: Scope,
    filters: AuditFilter | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[AuditEvent], int]:
    """The events ``principal`` may read in ``scope``, newest first, and how many match."""
    base = _filtered(_visible(select(AuditEvent), principal, scope), filters or AuditFilter())
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(
        base.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, total


def get_event(
    session: Session, event_id: int, *, principal: Principal, scope: Scope
) -> AuditEvent | None:
    """One event, or ``None`` when it does not exist or is not visible to ``principal``."""
    query = _visible(select(AuditEvent).where(AuditEvent.id == event_id), principal, scope)
    return session.scalars(query).first()
