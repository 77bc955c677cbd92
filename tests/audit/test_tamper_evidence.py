"""The audit history cannot be rewritten, and ``remedium audit verify`` finds what was.

Every statement an attacker with SQL access could try is run on both databases; then the
protection is removed as a database owner could, the history rewritten, and the verifier must
name the first broken link. Concurrent writers (several processes) must still form one chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import DBAPIError

from remedium.audit.chain import verify
from remedium.audit.models import AuditEvent
from remedium.audit.service import record
from remedium.db.migrate import alembic_config
from remedium.db.session import session_factory, transaction
from remedium.inventory.models import DeviceGroup
from tests.support.orgs.builder import make_group

REMEDIUM = Path(sys.executable).with_name("remedium")

# Every column of audit_event but device_group_id, with a value to set it to.
REWRITES = {
    "id": "999",
    "occurred_at": "'2020-01-01 00:00:00'",
    "actor_user_id": "99",
    "actor_name": "'mallory'",
    "action": "'user.create'",
    "object_type": "'x'",
    "object_id": "'x'",
    "before": "'{}'",
    "after": """'{"status": "rejected"}'""",
    "reason": "'rewritten'",
    "client_address": "'10.0.0.1'",
    "device_group_ids": "''",
    "prev_hash": "''",
    "event_hash": "'0'",
}


def _seed(engine: Engine) -> int:
    with transaction(engine) as session:
        group = make_group(session, "Alpha")
        record(session, actor=None, action="import.create", object_type="import", object_id=1)
        event = record(
            session,
            actor=None,
            action="exception.approve",
            object_type="exception",
            object_id=7,
            device_group_id=group.id,
            after={"status": "approved"},
            reason="ok",
        )
        return event.id


def _refused(engine: Engine, *statements: str) -> None:
    def run() -> None:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))

    with pytest.raises(DBAPIError, match="append-only"):
        run()


def _snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT * FROM audit_event"))]


def test_every_rewrite_is_refused(engine: Engine) -> None:
    event_id = _seed(engine)
    before = _snapshot(engine)
    for column, value in REWRITES.items():
        _refused(engine, f'UPDATE audit_event SET "{column}" = {value} WHERE id = {event_id}')
        # The old trigger let any change through together with the foreign key's SET NULL.
        _refused(
            engine,
            f'UPDATE audit_event SET "{column}" = {value}, device_group_id = NULL '
            f"WHERE id = {event_id}",
        )
    _refused(engine, "DELETE FROM audit_event")
    _refused(
        engine,
        "INSERT INTO audit_event (id, occurred_at, actor_name, action, object_type, object_id,"
        " reason, client_address, device_group_ids, prev_hash, event_hash)"
        f" VALUES ({event_id}, '2020-01-01 00:00:00', 'm', 'a', '', '', '', '', '', '', '')"
        " ON CONFLICT (id) DO UPDATE SET reason = 'rewritten'",
    )
    if engine.dialect.name == "sqlite":
        _refused(
            engine,
            "INSERT OR REPLACE INTO audit_event (id, occurred_at, actor_name, action,"
            " object_type, object_id, reason, client_address, device_group_ids, prev_hash,"
            f" event_hash) VALUES ({event_id}, '2020-01-01 00:00:00', 'mallory', 'user.create',"
            " '', '', 'rewritten', '', '', '', '')",
        )
        _refused(engine, f"REPLACE INTO audit_event (id, actor_name) VALUES ({event_id}, 'm')")
    else:
        _refused(engine, "TRUNCATE audit_event")
        # Ordinary triggers do not fire for replication sessions; these fire ALWAYS.
        _refused(
            engine,
            "SET LOCAL session_replication_role = replica",
            "UPDATE audit_event SET reason = 'rewritten'",
        )
    assert _snapshot(engine) == before
    with session_factory(engine)() as session:
        assert verify(session).ok


def test_deleting_a_group_keeps_the_chain_and_the_scope(engine: Engine) -> None:
    event_id = _seed(engine)
    with transaction(engine) as session:
        session.execute(delete(DeviceGroup))
    with session_factory(engine)() as session:
        event = session.get(AuditEvent, event_id)
        assert event is not None
        assert event.device_group_id is None
        assert event.device_group_ids != ""
        assert verify(session).ok


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMEDIUM_DATABASE_URL": database_url}
    return subprocess.run(
        [str(REMEDIUM), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _drop_protection(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_event_no_update"))
        else:
            connection.execute(
                text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete")
            )


def test_verify_names_the_missing_trigger_and_the_first_broken_link(
    database_url: str, engine: Engine
) -> None:
    event_id = _seed(engine)
    with transaction(engine) as session:
        for n in range(3):
            record(session, actor=None, action="import.create", object_type="import", object_id=n)
    intact = _cli(database_url, "audit", "verify", "--json")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert json.loads(intact.stdout)["events"] == 5

    _drop_protection(engine)
    dropped = _cli(database_url, "audit", "verify", "--json")
    assert dropped.returncode == 1
    assert "audit_event_no_update" in " ".join(json.loads(dropped.stdout)["missing_protection"])
    assert json.loads(dropped.stdout)["first_broken_event_id"] is None

    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET reason = 'nothing to see' WHERE id = :id"),
            {"id": event_id},
        )
    rewritten = _cli(database_url, "audit", "verify")
    assert rewritten.returncode == 1
    assert f"event {event_id} was changed" in rewritten.stderr


def test_verify_finds_a_removed_event(database_url: str, engine: Engine) -> None:
    _seed(engine)
    with transaction(engine) as session:
        ids = [
            record(session, actor=None, action="import.create", object_id=n).id for n in range(3)
        ]
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_event_no_delete"))
        else:
            connection.execute(
                text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete")
            )
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[1]})
    result = _cli(database_url, "audit", "verify", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["first_broken_event_id"] == ids[2]


WRITER = """
import sys
import remedium.db.registry
from remedium.audit.service import record
from remedium.db.session import make_engine, transaction
engine = make_engine(sys.argv[1])
for n in range(int(sys.argv[2])):
    with transaction(engine) as session:
        record(session, actor=None, action="import.create", object_type="import", object_id=n)
"""


def test_concurrent_writers_form_one_chain(database_url: str, engine: Engine) -> None:
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, database_url, "40"]) for _ in range(4)
    ]
    assert [process.wait(timeout=300) for process in processes] == [0, 0, 0, 0]
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 160
        result = verify(session)
    assert result.ok, result.problem
    assert result.events == 160


def test_migration_chains_the_existing_history(engine: Engine) -> None:
    """Revision 0003 gives events written before it their scope and hashes (down and up)."""

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO device_group (name, description, created_at)"
                " VALUES ('Alpha', '', '2026-01-01 00:00:00')"
            )
        )
        group_id = connection.scalar(text("SELECT id FROM device_group"))
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO audit_event (occurred_at, actor_name, action, object_type,"
                    " object_id, device_group_id, reason, client_address, after)"
                    " VALUES (:at, 'system', 'exception.create', 'exception', :n, :group,"
                    " '', '', :after)"
                ),
                {
                    "at": f"2026-01-0{n + 1} 10:00:00",
                    "n": str(n),
                    "group": group_id if n else None,
                    "after": json.dumps({"n": n}),
                },
            )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with session_factory(engine)() as session:
        result = verify(session)
        assert result.ok, (result.problem, result.missing_protection)
        assert result.events == 3
        scopes = session.scalars(select(AuditEvent.device_group_ids).order_by(AuditEvent.id))
        assert list(scopes) == ["", f",{group_id},", f",{group_id},"]
