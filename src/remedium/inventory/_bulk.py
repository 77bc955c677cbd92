"""Bulk statements of the import pipeline: plain tuples in the driver's types, ``COPY`` on
PostgreSQL, ``executemany`` elsewhere, and the read-back of inserted rows by key."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Column, Table, select
from sqlalchemy.orm import Session

from remedium.importers.chunks import chunks


def bound(session: Session, column: Any, value: Any) -> Any:
    """``value`` as the driver takes it for ``column`` (e.g. a UTC timestamp in SQLite's shape).

    Lets a constant (the scan time) be converted once for a whole batch of raw DBAPI rows.
    """
    processor = column.type._cached_bind_processor(session.get_bind().dialect)
    return processor(value) if processor is not None else value


def bulk_insert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    constants: tuple[Any, ...] = (),
) -> None:
    """Insert plain tuples (already in the driver's types, see :func:`bound`) as fast as the
    database allows: ``COPY`` on PostgreSQL, the DBAPI cursor's ``executemany`` elsewhere.

    ``constants`` are the values of the last columns, the same for every row (the scan time, the
    source): rows then carry only the leading columns. SQLite takes them once, as literals of
    the statement, instead of binding them again for every row (a third of the cost of a
    million-row insert).

    SQLAlchemy's executemany of dictionaries costs several times the database's own work here
    (per-row parameter processing); these rows are built by the pipeline, so none is needed.
    """
    if not rows:
        return
    connection = session.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor: Any = raw.cursor()  # psycopg's cursor: COPY is not in the DBAPI protocol
        with cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            if constants:
                for row in rows:
                    copy.write_row(row + constants)
            else:
                for row in rows:
                    copy.write_row(row)
        return
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    literals = _sql_literals(connection.dialect, constants)
    if literals is None:  # not expressible as literals: bound with every row
        rows, literals = [row + constants for row in rows], [mark] * len(constants)
    marks = ", ".join([mark] * (len(columns) - len(constants)) + literals)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def _sql_literals(dialect: Any, values: tuple[Any, ...]) -> list[str] | None:
    """``values`` as SQLite literals, or None (bind them) for another database or a value
    that is not a plain string, integer or NULL. A SQLite string literal escapes nothing but
    its quote, which is doubled; a NUL character could not be written in the statement."""
    if dialect.name != "sqlite":
        return None
    literals: list[str] = []
    for value in values:
        if value is None:
            literals.append("NULL")
        elif type(value) is int:
            literals.append(str(value))
        elif type(value) is str and "\x00" not in value:
            literals.append("'" + value.replace("'", "''") + "'")
        else:
            return None
    return literals


def bulk_update(
    session: Session,
    table: Table,
    columns: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """``UPDATE table SET columns WHERE keys`` for plain tuples (``columns`` values, then ``keys``).

    Through the DBAPI cursor's ``executemany`` (see :func:`bulk_insert` for why not SQLAlchemy's).
    """
    if not rows:
        return
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    where = " AND ".join(f"{k} = {mark}" for k in keys)
    connection.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {where}", rows)


def rows_by_key(
    session: Session,
    table: Table,
    columns: Sequence[Column[Any]],
    key: Column[Any],
    keys: Sequence[Any],
) -> Iterator[Sequence[Any]]:
    """``columns`` of the rows of ``table`` whose ``key`` is one of ``keys`` (rows just
    inserted, read back for their ids).

    PostgreSQL takes the keys as one array parameter, in a statement never prepared. psycopg
    prepares a statement run five times, and PostgreSQL may then keep a generic plan for it: one
    chosen while the table was small (a sequential scan) stayed chosen as the import grew it,
    and a 150,000-product CycloneDX import spent 105 of its 114 s in that look-up
    (docs/imports.md). An unprepared statement is planned for its own parameters every time.
    """
    if session.get_bind().dialect.name == "postgresql":
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        names = ", ".join(column.name for column in columns)
        cursor: Any = raw.cursor()  # psycopg's cursor: ``prepare`` is not in the DBAPI protocol
        try:
            cursor.execute(
                f"SELECT {names} FROM {table.name} WHERE {key.name} = ANY(%s)",
                (list(keys),),
                prepare=False,
            )
            found = cursor.fetchall()
        finally:
            cursor.close()
        yield from found
        return
    for part in chunks(keys):
        yield from session.execute(select(*columns).where(key.in_(part)))


def new_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` unused ids for new rows of ``table`` (an integer ``id`` primary key), so that
    rows can be inserted by :func:`bulk_insert` with their ids, not read back by key.

    PostgreSQL draws them from the column's sequence (safe with concurrent writers). SQLite
    gives a new row the largest id plus one, as it would itself: call it only in a transaction
    that holds SQLite's write lock (``db.session.take_writer_lock``), so no other writer can
    take the same ids.
    """
    if count <= 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        drawn = connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            "FROM generate_series(1, %(count)s)",
            {"count": count},
        )
        return [int(value) for (value,) in drawn]
    largest = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}")
    start = int(largest.scalar_one()) + 1
    return list(range(start, start + count))
