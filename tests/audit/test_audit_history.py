"""The audit history: recorded with the change, append-only in the database, scoped when read."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from remedium.audit.models import AuditEvent
from remedium.audit.service import record
from remedium.auth.principal import Right
from remedium.db.session import transaction
from tests.support.orgs.builder import make_group
from tests.support.signin import client_for, make_user


def test_triggers_refuse_update_and_delete(engine: Engine) -> None:
    # The migrations install the triggers (revision 0002): nothing to set up here.
    with transaction(engine) as session:
        record(session, actor=None, action="import.create", object_type="import", object_id=1)
    for statement in ("UPDATE audit_event SET reason = 'rewritten'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with transaction(engine) as session:
        event = session.scalars(select(AuditEvent)).one()
        assert event.reason == ""


def test_event_rolls_back_with_the_change(engine: Engine) -> None:
    def failing_change() -> None:
        with transaction(engine) as session:
            make_user(session, "ghost")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with transaction(engine) as session:
        assert session.scalars(select(AuditEvent)).all() == []


def test_scoped_users_read_only_their_groups_and_not_others_sign_ins(engine: Engine) -> None:
    with transaction(engine) as session:
        alpha, beta = make_group(session, "Alpha"), make_group(session, "Beta")
        record(session, actor=None, action="exception.create", device_group_id=alpha.id)
        record(session, actor=None, action="exception.create", device_group_id=beta.id)
        record(session, actor=None, action="exception.create", reason="global")
        alpha_id = alpha.id
    admin = client_for(engine, "boss")
    scoped = client_for(engine, "ann", rights=[Right.VIEW], group_ids=[alpha_id])
    everything = admin.get("/api/v1/audit-events").json()
    actions = [item["action"] for item in everything["items"]]
    assert actions.count("exception.create") == 3
    assert "user.create" in actions
    assert "token.create" in actions
    mine = scoped.get("/api/v1/audit-events").json()
    assert sorted(
        (item["device_group_id"] or 0)
        for item in mine["items"]
        if item["action"] == "exception.create"
    ) == [0, alpha_id]
    # Other people's accounts and tokens are administrators' business.
    assert all(
        item["actor_name"] != "boss" for item in mine["items"] if item["action"].startswith("token")
    )
    filtered = admin.get("/api/v1/audit-events", params={"action": "user", "limit": 1}).json()
    assert filtered["total"] == 2
    assert len(filtered["items"]) == 1
    assert filtered["items"][0]["action"] == "user.create"
    beta_event = next(
        i for i in everything["items"] if i["device_group_id"] not in (None, alpha_id)
    )
    assert scoped.get(f"/api/v1/audit-events/{beta_event['id']}").status_code == 404
    page = admin.get("/audit", params={"action": "exception"})
    assert page.status_code == 200
    assert "3 events" in page.text
