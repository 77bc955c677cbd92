"""What a bulk load on SQLite sets aside for its transaction: foreign key checks, and secondary
indexes (built once after it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Index, Table
from sqlalchemy.orm import Session

from remedium.db.session import FOREIGN_KEYS_OFF


def stop_foreign_key_checks(session: Session) -> bool:
    """SQLite, before the bulk load's transaction opens: stop checking foreign keys on this
    connection until the transaction ends (the next checkout turns them on again: see
    ``db/session.py``). Returns whether they were stopped: SQLite ignores the switch inside a
    transaction, so a load that comes after other writes of the same transaction keeps them.

    The rows of a bulk load reference devices, products and vulnerabilities the import itself
    looked up or created; looking each reference up again costs about a tenth of the import.
    The tests check the references of bulk loads (``PRAGMA foreign_key_check``).
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    pooled = session.connection().connection
    raw: Any = pooled.dbapi_connection
    if raw.in_transaction:
        return False
    pooled.info[FOREIGN_KEYS_OFF] = True  # the next checkout turns them on again
    raw.execute("PRAGMA foreign_keys=OFF")
    return True


def defer_indexes(session: Session, tables: Sequence[Table]) -> list[Index]:
    """Drop the secondary indexes of ``tables`` for a bulk load, SQLite only; returns them.

    Keeping an index up to date costs a B-tree insert at a random place per row; building it
    once after the load sorts the rows instead, several times cheaper when the load adds at
    least as many rows as the table held. The unique constraints stay (lookups and checks need
    them). Inside the transaction: a rollback brings the indexes back, readers of the database
    keep seeing them meanwhile (WAL). PostgreSQL is left alone, where ``DROP INDEX`` would lock
    readers out of the table until the import commits.
    """
    if session.get_bind().dialect.name != "sqlite":
        return []
    dropped: list[Index] = []
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    if not raw.in_transaction:
        # Python's sqlite3 opens the transaction at the first INSERT/UPDATE/DELETE only, so DDL
        # before one would commit by itself: open it with an update that changes nothing.
        connection.exec_driver_sql(f"UPDATE {tables[0].name} SET rowid = rowid WHERE 1 = 0")
    for table in tables:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if not index.unique:
                index.drop(connection)
                dropped.append(index)
    return dropped


def restore_indexes(session: Session, indexes: Sequence[Index]) -> None:
    """Build again the indexes :func:`defer_indexes` dropped."""
    connection = session.connection()
    for index in indexes:
        index.create(connection)
